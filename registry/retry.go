package registry

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ocisign/ocisign/internal/retryafter"
)

// retryPolicy bounds retries of one HTTP request.
type retryPolicy struct {
	maxRetries int           // retries after the first attempt
	baseDelay  time.Duration // first backoff; doubles each retry, with jitter
	maxDelay   time.Duration // cap for one wait, Retry-After included
}

var defaultRetryPolicy = retryPolicy{maxRetries: 3, baseDelay: 250 * time.Millisecond, maxDelay: 20 * time.Second}

// retryTransport retries 408/429/5xx and transient network errors with
// exponential backoff and jitter, honouring Retry-After within the request's
// deadline. Bodies are replayed through GetBody; a body without GetBody is
// sent once.
type retryTransport struct {
	inner  http.RoundTripper
	policy retryPolicy
}

type attemptsKey struct{}

// withAttemptCounter lets the caller learn how many HTTP attempts one
// logical request took (for "(after N tries)" in errors).
func withAttemptCounter(ctx context.Context) (context.Context, *atomic.Int32) {
	n := new(atomic.Int32)
	return context.WithValue(ctx, attemptsKey{}, n), n
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	counter, _ := ctx.Value(attemptsKey{}).(*atomic.Int32)
	hasBody := req.Body != nil && req.Body != http.NoBody
	for attempt := 0; ; attempt++ {
		r := req
		// Always take a fresh body: layers above (the bearer transport's
		// 401 refresh) may re-send a request whose body was consumed.
		if hasBody && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(ctx)
			r.Body = body
		}
		if counter != nil {
			counter.Add(1)
		}
		resp, err := t.inner.RoundTrip(r)
		if attempt >= t.policy.maxRetries || (hasBody && req.GetBody == nil) {
			return resp, err
		}
		wait, retry := t.backoff(attempt, resp, err)
		if !retry {
			return resp, err
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			// Waiting would outlive the operation: report what we have.
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
}

// backoff decides whether to retry and how long to wait first.
func (t *retryTransport) backoff(attempt int, resp *http.Response, err error) (time.Duration, bool) {
	if err != nil {
		if !retryableNetError(err) {
			return 0, false
		}
	} else if !retryableStatus(resp.StatusCode) {
		return 0, false
	}
	d := t.policy.baseDelay << attempt
	// Full jitter in [d/2, d): concurrent signers do not retry in lockstep.
	d = d/2 + rand.N(d/2+1)
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if ra, ok := retryafter.Parse(resp.Header.Get("Retry-After"), time.Now(), t.policy.maxDelay); ok && ra > d {
			d = ra
		}
	}
	if d > t.policy.maxDelay {
		d = t.policy.maxDelay
	}
	return d, true
}

func retryableStatus(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}
