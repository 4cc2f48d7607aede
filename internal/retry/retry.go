// Package retry is the one retry policy of ocisign's HTTP clients (the
// registry client and the transparency log client): which failures are
// worth another attempt, how long to wait (exponential backoff with jitter,
// or the server's Retry-After, capped), and no wait past the deadline.
package retry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/ocisign/ocisign/internal/bounded"
)

// Policy bounds the attempts of one request.
type Policy struct {
	MaxRetries int           // retries after the first attempt
	BaseDelay  time.Duration // the first wait; it doubles with each retry
	MaxDelay   time.Duration // cap of one wait, a Retry-After included
	// Sleep waits between attempts; nil is bounded.Sleep. Tests record
	// the waits with it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Outcome is what one attempt says about trying again.
type Outcome struct {
	Retryable  bool
	RetryAfter string // the reply's Retry-After header, if any
}

// Status reports whether a reply's HTTP status is worth another attempt:
// 408, 429, and the 5xx that mean "not now" (not 501 or 505).
func Status(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// PastDeadlineError says why the attempts stopped early: the next one
// would have started after the request's deadline.
type PastDeadlineError struct{ Wait time.Duration }

func (e *PastDeadlineError) Error() string {
	return fmt.Sprintf("the next try would be in %s, after the deadline", e.Wait)
}

// Do calls try with attempt 0, 1, … until an attempt is not worth
// retrying or the retries run out (nil), waiting between attempts as the
// policy says. It returns ctx's error when ctx ends during a wait, and a
// *PastDeadlineError, without waiting, when the wait would outlast ctx's
// deadline. Either way the caller keeps the last attempt's result.
func (p Policy) Do(ctx context.Context, try func(attempt int) Outcome) error {
	sleep := p.Sleep
	if sleep == nil {
		sleep = bounded.Sleep
	}
	for attempt := 0; ; attempt++ {
		out := try(attempt)
		if !out.Retryable || attempt >= p.MaxRetries {
			return nil
		}
		wait := p.wait(attempt, out.RetryAfter)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return &PastDeadlineError{Wait: wait}
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// wait is the pause before retry attempt+1: BaseDelay·2^attempt with full
// jitter in [d/2, d], so concurrent signers do not retry in lockstep, or
// the server's longer Retry-After; at most MaxDelay.
func (p Policy) wait(attempt int, retryAfter string) time.Duration {
	d := p.BaseDelay << attempt
	d = d/2 + rand.N(d/2+1)
	if ra, ok := ParseRetryAfter(retryAfter, time.Now(), p.MaxDelay); ok && ra > d {
		d = ra
	}
	return min(d, p.MaxDelay)
}
