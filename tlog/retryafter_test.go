package tlog

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// throttledLog answers the first `throttle` POSTs with 429 and retryAfter,
// then lets the fake log answer.
func throttledLog(t *testing.T, throttle int32, retryAfter string) (*fakeLog, *httptest.Server, *atomic.Int32) {
	f := newFakeLog(t)
	var throttled atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && throttled.Load() < throttle {
			throttled.Add(1)
			w.Header().Set("Retry-After", retryAfter)
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"code":429,"message":"slow down"}`))
			return
		}
		f.serve(w, r)
	}))
	t.Cleanup(srv.Close)
	return f, srv, &throttled
}

// recordSleeps replaces c's wait between attempts with one that records it.
func recordSleeps(c *Client) *[]time.Duration {
	var mu sync.Mutex
	waits := &[]time.Duration{}
	c.retry.Sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		*waits = append(*waits, d)
		return ctx.Err()
	}
	return waits
}

func TestRekorClientHonoursRetryAfter(t *testing.T) {
	f, srv, throttled := throttledLog(t, 1, "3")
	c, err := New(srv.URL, Options{PublicKey: &f.key.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	waits := recordSleeps(c)
	s := newSigned(t, "app")
	entry, err := c.Upload(context.Background(), s.payload, s.signature, s.pub)
	if err != nil {
		t.Fatal(err)
	}
	if entry.UUID == "" || throttled.Load() != 1 || f.posts.Load() != 1 {
		t.Errorf("entry %+v, %d throttled, %d reached the log", entry, throttled.Load(), f.posts.Load())
	}
	if len(*waits) != 1 || (*waits)[0] != 3*time.Second {
		t.Errorf("waits %v, want [3s] (the log's Retry-After)", *waits)
	}
}

func TestRekorClientRetryAfterCapped(t *testing.T) {
	f, srv, _ := throttledLog(t, 1, "3600")
	c, err := New(srv.URL, Options{PublicKey: &f.key.PublicKey, Timeout: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	waits := recordSleeps(c)
	s := newSigned(t, "app")
	if _, err := c.Upload(context.Background(), s.payload, s.signature, s.pub); err != nil {
		t.Fatal(err)
	}
	if len(*waits) != 1 || (*waits)[0] != maxRetryAfter {
		t.Errorf("waits %v, want [%s]", *waits, maxRetryAfter)
	}
}

// A Retry-After past the upload's deadline fails at once (retryable)
// instead of sleeping into the deadline.
func TestRekorClientRetryAfterBeyondDeadline(t *testing.T) {
	f, srv, throttled := throttledLog(t, 5, "8")
	c, err := New(srv.URL, Options{PublicKey: &f.key.PublicKey, Timeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	waits := recordSleeps(c)
	s := newSigned(t, "app")
	_, err = c.Upload(context.Background(), s.payload, s.signature, s.pub)
	wantTlogError(t, err, true, "HTTP 429")
	wantTlogError(t, err, true, "after the deadline")
	if len(*waits) != 0 || throttled.Load() != 1 {
		t.Errorf("waits %v, %d POSTs; want no wait and 1 POST", *waits, throttled.Load())
	}
}

// Without Retry-After the backoff is 250ms, 500ms, ..., each jittered to
// [d/2, d] (internal/retry).
func TestRekorClientBackoffWithoutRetryAfter(t *testing.T) {
	f, srv, _ := throttledLog(t, 2, "")
	c, err := New(srv.URL, Options{PublicKey: &f.key.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	waits := recordSleeps(c)
	s := newSigned(t, "app")
	if _, err := c.Upload(context.Background(), s.payload, s.signature, s.pub); err != nil {
		t.Fatal(err)
	}
	if len(*waits) != 2 {
		t.Fatalf("waits %v, want 2", *waits)
	}
	for i, d := range *waits {
		base := 250 * time.Millisecond << i
		if d < base/2 || d > base {
			t.Errorf("wait %d is %v, want within [%v, %v]", i, d, base/2, base)
		}
	}
}
