// The log's HTTP requests: attempts, Retry-After, and errors that name the
// log without its credentials.

package tlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ocisign/ocisign/internal/errcode"
	"github.com/ocisign/ocisign/internal/retry"
)

type reply struct {
	status     int
	body       []byte
	location   string
	retryAfter string
}

// statusError is an unexpected HTTP status from the log.
type statusError struct {
	method, path string
	status       int
	message      string
}

func (e *statusError) Error() string {
	s := fmt.Sprintf("%s %s: HTTP %d %s", e.method, e.path, e.status, http.StatusText(e.status))
	if e.message != "" {
		s += ": " + e.message
	}
	return s
}

// do sends one request, retrying network errors and what retry.Status
// calls transient as c.retry says (backoff, the log's Retry-After, no wait
// past ctx's deadline).
func (c *Client) do(ctx context.Context, method, path string, body []byte, ok ...int) (*reply, error) {
	var r *reply
	var last error
	stop := c.retry.Do(ctx, func(int) retry.Outcome {
		var err error
		if r, err = c.once(ctx, method, path, body); err != nil {
			last = err
			return retry.Outcome{Retryable: ctx.Err() == nil}
		}
		if slices.Contains(ok, r.status) {
			last = nil
			return retry.Outcome{}
		}
		last = &statusError{method: method, path: path, status: r.status, message: rekorMessage(r.body)}
		return retry.Outcome{Retryable: retry.Status(r.status), RetryAfter: r.retryAfter}
	})
	var past *retry.PastDeadlineError
	switch {
	case last == nil:
		return r, nil
	case errors.As(stop, &past):
		return nil, fmt.Errorf("%w (not retrying: %v)", last, past)
	}
	return nil, last
}

func (c *Client) once(ctx context.Context, method, path string, body []byte) (*reply, error) {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", c.userAgent)
	if path == publicKeyPath {
		req.Header.Set("Accept", "application/x-pem-file")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its URL could carry credentials; we name the log ourselves
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the reply: %w", method, path, err)
	}
	if len(b) > maxReplyBytes {
		return nil, &statusError{method: method, path: path, status: resp.StatusCode,
			message: fmt.Sprintf("reply larger than %d bytes", maxReplyBytes)}
	}
	return &reply{status: resp.StatusCode, body: b, location: resp.Header.Get("Location"),
		retryAfter: resp.Header.Get("Retry-After")}, nil
}

// rekorMessage extracts Rekor's {"code":..,"message":".."} error text.
func rekorMessage(body []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return errcode.Clip(e.Message, maxQuoted)
	}
	return ""
}

func (c *Client) fail(op string, retryable bool, err error) error {
	return &errcode.Error{Op: "transparency log " + op, Ref: c.name, Code: ErrorCode, Retryable: retryable, Err: err}
}

// ctxFail classifies a failure that may come from a deadline: the caller's
// own deadline or cancellation keeps its code; our per-upload timeout and
// network errors are retryable log errors.
func (c *Client) ctxFail(parent context.Context, op string, err error) error {
	var re *errcode.Error
	if errors.As(err, &re) {
		return err
	}
	switch {
	case errors.Is(parent.Err(), context.Canceled):
		return &errcode.Error{Op: "transparency log " + op, Ref: c.name, Code: errcode.CodeCancelled, Err: context.Canceled}
	case errors.Is(parent.Err(), context.DeadlineExceeded):
		return &errcode.Error{Op: "transparency log " + op, Ref: c.name, Code: errcode.CodeTimeout, Retryable: true,
			Err: fmt.Errorf("the operation's deadline passed: %w", err)}
	case errors.Is(err, context.DeadlineExceeded):
		return c.fail(op, true, fmt.Errorf("no answer within %s: %w", c.timeout, err))
	}
	var se *statusError
	if errors.As(err, &se) {
		return c.fail(op, retry.Status(se.status), err)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return c.fail(op, true, fmt.Errorf("the log is unreachable: %w", err))
	}
	return c.fail(op, false, err)
}
