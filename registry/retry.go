package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ocisign/ocisign/internal/retry"
)

var defaultRetryPolicy = retry.Policy{MaxRetries: 3, BaseDelay: 250 * time.Millisecond, MaxDelay: 20 * time.Second}

// retryTransport retries what retry.Status and retryableNetError call
// transient, as its policy says (backoff with jitter, Retry-After, nothing
// past the request's deadline). Bodies are replayed through GetBody; a
// body without GetBody is sent once.
type retryTransport struct {
	inner  http.RoundTripper
	policy retry.Policy
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
	var resp *http.Response
	var err error
	stop := t.policy.Do(ctx, func(int) retry.Outcome {
		if resp != nil { // the reply of the attempt being retried
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		r := req
		// Always take a fresh body: layers above (the bearer transport's
		// 401 refresh) may re-send a request whose body was consumed.
		if hasBody && req.GetBody != nil {
			body, bodyErr := req.GetBody()
			if bodyErr != nil {
				resp, err = nil, bodyErr
				return retry.Outcome{}
			}
			r = req.Clone(ctx)
			r.Body = body
		}
		if counter != nil {
			counter.Add(1)
		}
		resp, err = t.inner.RoundTrip(r)
		switch {
		case hasBody && req.GetBody == nil: // the body cannot be sent again
			return retry.Outcome{}
		case err != nil:
			return retry.Outcome{Retryable: retryableNetError(err)}
		}
		return retry.Outcome{Retryable: retry.Status(resp.StatusCode), RetryAfter: resp.Header.Get("Retry-After")}
	})
	var past *retry.PastDeadlineError
	if stop != nil && !errors.As(stop, &past) {
		if resp != nil {
			resp.Body.Close()
		}
		return nil, stop
	}
	// Retries exhausted, or the next wait would outlive the operation:
	// report what we have.
	return resp, err
}
