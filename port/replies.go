// Replies: their shapes, the failure wording, and the writer of frames.

package port

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ocisign/ocisign/internal/errcode"

	"github.com/ocisign/ocisign/registry"
)

// deadlineKey carries the description of a request's deadline.
type deadlineKey struct{}

// replyFailure sends err with its stable code. When the request's own
// deadline passed, the message says which limit applied; when the port
// abandoned it, the message says why.
func (s *server) replyFailure(ctx context.Context, req *request, err error) {
	code, retryable := errcode.Of(err)
	message := err.Error()
	switch {
	case code == errcode.CodeTimeout && errors.Is(ctx.Err(), context.DeadlineExceeded):
		limit, _ := ctx.Value(deadlineKey{}).(string)
		message = failureSubject(req, err) + ": timed out after " + limit + whileLoadingKey(err)
	case code == errcode.CodeCancelled && errors.Is(ctx.Err(), context.Canceled):
		message = failureSubject(req, err) + ": request abandoned: " + abandonReason(context.Cause(ctx)) + whileLoadingKey(err)
	}
	s.logFailure(req, code, message)
	s.replyError(req.id, code, message, retryable)
}

// failureSubject names what failed: the registry step and its reference
// when the error has them, else the op and the request's reference.
func failureSubject(req *request, err error) string {
	var re *errcode.Error
	if errors.As(err, &re) && re.Op != "" {
		return strings.TrimSpace(re.Op + " " + re.Ref)
	}
	return strings.TrimSpace(req.op + " " + req.reference)
}

func whileLoadingKey(err error) string {
	var kw *keyWaitError
	if errors.As(err, &kw) {
		return " while loading key " + kw.path
	}
	return ""
}

// abandonCause is why the port cancelled the requests in flight.
type abandonCause struct {
	reason string
	err    error // the underlying failure, if any
}

func (c *abandonCause) Error() string { return c.reason }
func (c *abandonCause) Unwrap() error { return c.err }

// abandonReason words the cause of a cancelled request: the port's own
// (stdin EOF, a broken stdout) or its caller's (a signal in the CLI).
func abandonReason(cause error) string {
	var ac *abandonCause
	switch {
	case errors.As(cause, &ac):
		return ac.reason
	case cause == nil || cause == context.Canceled:
		return "the port is shutting down"
	}
	return "the port is shutting down: " + cause.Error()
}

func (s *server) logFailure(req *request, code, message string) {
	s.cfg.Logf("request %s (%s) failed: %s: %s", idText(req.id), req.op, code, message)
}

// Reply shapes. Every reply starts with id and ok.
type replyHead struct {
	ID json.RawMessage `json:"id"`
	OK bool            `json:"ok"`
}

func okHead(id json.RawMessage) replyHead { return replyHead{ID: id, OK: true} }

type errorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
}

type errorReply struct {
	replyHead
	Error errorBody `json:"error"`
}

type versionReply struct {
	replyHead
	Version  string `json:"version"`
	Protocol int    `json:"protocol"`
	// MaxFrameBytes is the largest request frame this port reads, so a
	// client never has to guess it (a larger frame gets a null-id reply).
	MaxFrameBytes int `json:"max_frame_bytes"`
}

type signReply struct {
	replyHead
	// Its warnings include the key's (verifiers need extra flags for
	// P-384/P-521 keys).
	*registry.SignResult
	// Keyless names whom a keyless signature was made as.
	Keyless *keylessReply `json:"keyless,omitempty"`
}

// identityReply is what the identity op found.
type identityReply struct {
	replyHead
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
	Source  string `json:"source"`
	Expires string `json:"expires"`
}

// keylessReply is the certificate's identity, issuer and expiry.
type keylessReply struct {
	Identities []string `json:"identities"`
	Issuer     string   `json:"issuer"`
	NotAfter   string   `json:"certificate_not_after"`
}

type verifyReply struct {
	replyHead
	*registry.VerifyResult
}

type publicKeyReply struct {
	replyHead
	PublicKey string `json:"public_key"`
	Algorithm string `json:"algorithm"`
}

func (s *server) replyError(id json.RawMessage, code, message string, retryable bool) {
	s.reply(id, errorReply{replyHead: replyHead{ID: id}, Error: errorBody{Code: code, Message: message, Retryable: retryable}})
}

// reply writes v, the reply to the request with this id; should v not
// encode, an internal error for that id goes out instead.
func (s *server) reply(id json.RawMessage, v any) {
	payload, err := json.Marshal(v)
	if err != nil {
		s.cfg.Logf("encoding a reply: %v", err)
		payload, _ = json.Marshal(errorReply{replyHead: replyHead{ID: id}, Error: errorBody{Code: CodeInternal, Message: "could not encode the reply"}})
	}
	s.out.write(payload)
}

// idText renders an id for logs.
func idText(id json.RawMessage) string {
	if id == nil {
		return "null"
	}
	return string(id)
}

// frameWriter serialises reply frames: one Write per frame under a mutex,
// so frames from concurrent handlers never interleave.
type frameWriter struct {
	mu      sync.Mutex
	w       io.Writer
	buf     []byte
	failed  bool
	closed  atomic.Bool
	onError func(error)
}

func (f *frameWriter) write(payload []byte) {
	if f.closed.Load() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failed || f.closed.Load() {
		return
	}
	f.buf = appendFrame(f.buf[:0], payload)
	if _, err := f.w.Write(f.buf); err != nil {
		f.failed = true
		f.onError(err)
	}
	if cap(f.buf) > 1<<20 {
		f.buf = nil // do not pin one huge reply's buffer
	}
}

// close drops later replies: Serve has returned and out is the caller's again.
func (f *frameWriter) close() { f.closed.Store(true) }
