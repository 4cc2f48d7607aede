package retry

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// waits runs Do over the outcomes given, recording the waits.
func waits(t *testing.T, p Policy, ctx context.Context, outcomes ...Outcome) ([]time.Duration, int, error) {
	t.Helper()
	var got []time.Duration
	p.Sleep = func(ctx context.Context, d time.Duration) error { got = append(got, d); return ctx.Err() }
	calls := 0
	err := p.Do(ctx, func(attempt int) Outcome {
		if attempt != calls {
			t.Fatalf("attempt %d on call %d", attempt, calls)
		}
		calls++
		return outcomes[min(attempt, len(outcomes)-1)]
	})
	return got, calls, err
}

func TestDo(t *testing.T) {
	p := Policy{MaxRetries: 3, BaseDelay: 100 * time.Millisecond, MaxDelay: 10 * time.Second}
	bg := context.Background()
	busy := Outcome{Retryable: true}

	w, calls, err := waits(t, p, bg, Outcome{})
	if err != nil || calls != 1 || len(w) != 0 {
		t.Fatalf("a final outcome: %v waits, %d calls, %v", w, calls, err)
	}
	// Backoff doubles, with jitter in [d/2, d]; the retries run out.
	w, calls, err = waits(t, p, bg, busy)
	if err != nil || calls != 4 || len(w) != 3 {
		t.Fatalf("always retryable: %v waits, %d calls, %v", w, calls, err)
	}
	for i, d := range w {
		base := p.BaseDelay << i
		if d < base/2 || d > base {
			t.Errorf("wait %d is %v, want within [%v, %v]", i, d, base/2, base)
		}
	}
	// Retry-After wins when longer, capped; an HTTP date counts too.
	w, _, _ = waits(t, p, bg, Outcome{Retryable: true, RetryAfter: "3"}, Outcome{})
	if len(w) != 1 || w[0] != 3*time.Second {
		t.Errorf("Retry-After 3: waits %v", w)
	}
	w, _, _ = waits(t, p, bg, Outcome{Retryable: true, RetryAfter: time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}, Outcome{})
	if len(w) != 1 || w[0] != p.MaxDelay {
		t.Errorf("Retry-After an hour away: waits %v, want the %v cap", w, p.MaxDelay)
	}
	// A wait past the deadline is not started.
	ctx, cancel := context.WithTimeout(bg, time.Second)
	defer cancel()
	w, calls, err = waits(t, p, ctx, Outcome{Retryable: true, RetryAfter: "5"})
	var past *PastDeadlineError
	if !errors.As(err, &past) || past.Wait != 5*time.Second || calls != 1 || len(w) != 0 {
		t.Fatalf("Retry-After past the deadline: %v waits, %d calls, %v", w, calls, err)
	}
	// A context that ends during a wait ends the attempts with its error.
	ctx, cancel = context.WithCancel(bg)
	cancel()
	if _, calls, err = waits(t, p, ctx, busy); !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("cancelled: %d calls, %v", calls, err)
	}
}

func TestStatus(t *testing.T) {
	for code, want := range map[int]bool{408: true, 429: true, 500: true, 502: true, 503: true, 504: true,
		400: false, 401: false, 404: false, 501: false, 505: false} {
		if Status(code) != want {
			t.Errorf("Status(%d) = %v", code, !want)
		}
	}
}
