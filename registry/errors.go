package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ocisign/ocisign/signing"
)

// Error codes shared with the CLI's JSON output and the port protocol
// (docs/design.md).
const (
	CodeInvalidRequest     = "invalid_request"
	CodeInvalidReference   = "invalid_reference"
	CodeNotFound           = "not_found"
	CodeUnauthorized       = "unauthorized"
	CodeDenied             = "denied"
	CodeInsecureRegistry   = "insecure_registry"
	CodeUnavailable        = "registry_unavailable"
	CodeRegistryError      = "registry_error"
	CodeTimeout            = "timeout"
	CodeCancelled          = "cancelled"
	CodeTlogError          = "tlog_error"
	CodeVerificationFailed = "verification_failed"
	CodeInternal           = "internal"
)

// Error is a failed registry operation. Its message names the operation, the
// reference and the HTTP status; it never contains credentials.
type Error struct {
	Op        string // "resolve", "read signatures", "upload blob", ...
	Ref       string // the reference the operation was about
	Status    int    // HTTP status, 0 when there was no response
	Code      string // one of the codes in docs/design.md
	Retryable bool
	Err       error

	detail string // registry error JSON code/message or a hint
	tries  int    // HTTP attempts made, for "(after N tries)"
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Ref != "" {
		b.WriteString(" ")
		b.WriteString(e.Ref)
	}
	b.WriteString(": ")
	switch {
	case e.Status != 0:
		fmt.Fprintf(&b, "%d %s", e.Status, http.StatusText(e.Status))
		if e.detail != "" {
			b.WriteString(": ")
			b.WriteString(e.detail)
		}
	case e.detail != "" && e.Err != nil:
		b.WriteString(e.detail)
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	case e.detail != "":
		b.WriteString(e.detail)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString(e.Code)
	}
	if e.tries > 1 {
		fmt.Fprintf(&b, " (after %d tries)", e.tries)
	}
	return redactSecrets(b.String())
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorCode maps any error from this package or the signing package to the
// design.md code table and says whether retrying may help.
func ErrorCode(err error) (code string, retryable bool) {
	if err == nil {
		return "", false
	}
	var re *Error
	if errors.As(err, &re) {
		return re.Code, re.Retryable
	}
	var ke *signing.KeyError
	if errors.As(err, &ke) {
		return ke.Code, false
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout, true
	case errors.Is(err, context.Canceled):
		return CodeCancelled, false
	}
	return CodeInternal, false
}

// codeForStatus classifies an HTTP status.
func codeForStatus(status int) (string, bool) {
	switch {
	case status == http.StatusUnauthorized:
		return CodeUnauthorized, false
	case status == http.StatusForbidden:
		return CodeDenied, false
	case status == http.StatusNotFound:
		return CodeNotFound, false
	case retryableStatus(status):
		return CodeUnavailable, true
	}
	return CodeRegistryError, false
}

// registryDetail extracts "CODE: message" from a registry's error JSON body.
func registryDetail(body []byte) string {
	var doc struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &doc) != nil || len(doc.Errors) == 0 {
		return ""
	}
	parts := make([]string, 0, len(doc.Errors))
	for _, e := range doc.Errors {
		s := e.Code
		if e.Message != "" {
			s += ": " + e.Message
		}
		parts = append(parts, clip(s, 300))
	}
	return strings.Join(parts, "; ")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// statusError builds the Error for an unexpected HTTP response.
func statusError(op, ref string, resp *http.Response, body []byte, tries int) *Error {
	code, retry := codeForStatus(resp.StatusCode)
	return &Error{Op: op, Ref: ref, Status: resp.StatusCode, Code: code, Retryable: retry,
		detail: registryDetail(body), tries: tries,
		Err: fmt.Errorf("unexpected status %d", resp.StatusCode)}
}

// transportError classifies a failure without an HTTP response: the
// context's deadline or cancellation, a TLS/HTTP mismatch, a network error,
// or an error from go-containerregistry's auth handshake.
func transportError(ctx context.Context, op, ref string, err error, tries int, allowHTTP bool, timeoutDesc string) *Error {
	e := &Error{Op: op, Ref: ref, Err: err, tries: tries}
	var refusal *insecureRefusal
	var terr *transport.Error
	var fallback *tlsFallbackError
	switch {
	case ctx.Err() == context.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded):
		e.Code, e.Retryable = CodeTimeout, true
		e.Err = context.DeadlineExceeded
		e.detail = "timed out" + timeoutDesc
	case ctx.Err() == context.Canceled || errors.Is(err, context.Canceled):
		e.Code = CodeCancelled
		e.Err = context.Canceled
		e.detail = "cancelled"
	case errors.As(err, &refusal) && refusal.other != "":
		e.Code = CodeInsecureRegistry
		e.detail = fmt.Sprintf("the registry %s sends its token requests to %s over plain HTTP, which would put the "+
			"registry credentials on the wire in cleartext; use an https token service, or list %s in "+
			"insecure_registries if that host is trusted", refusal.host, refusal.other, refusal.other)
		e.Err = errors.New("plain HTTP refused")
	case errors.As(err, &refusal) || (!allowHTTP && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")):
		e.Code = CodeInsecureRegistry
		e.detail = "the registry speaks plain HTTP; pass --allow-insecure-registry (or list it in insecure_registries) to allow that"
		e.Err = errors.New("plain HTTP refused")
	case errors.As(err, &fallback):
		e.Code = CodeRegistryError
		e.Err = errors.New("TLS failed")
		e.detail = fmt.Sprintf("https://%s failed on TLS (%s), and the plain-HTTP fallback got %s; trust the "+
			"registry's CA (SSL_CERT_FILE) or pass --allow-insecure-registry to skip verification",
			fallback.host, clip(fallback.tls.Error(), 300), fallbackAnswer(fallback.fallback))
	case errors.As(err, &terr):
		// Never render terr.Error(): its raw body may echo anything.
		e.Status = terr.StatusCode
		e.Code, e.Retryable = codeForStatus(terr.StatusCode)
		var parts []string
		for _, d := range terr.Errors {
			parts = append(parts, clip(fmt.Sprintf("%s: %s", d.Code, d.Message), 300))
		}
		e.detail = strings.Join(parts, "; ")
		if r := terr.Request; r != nil && r.URL != nil {
			// Usually the token server, which may not be the registry. The
			// query (scopes) is left out.
			e.detail = strings.TrimSpace(fmt.Sprintf("%s (%s %s://%s%s)", e.detail, r.Method, r.URL.Scheme, r.URL.Host, r.URL.Path))
		}
		e.Err = fmt.Errorf("registry answered %d", terr.StatusCode)
	case isTLSError(err):
		e.Code = CodeRegistryError
		e.detail = "TLS certificate not trusted (--allow-insecure-registry skips verification)"
	case retryableNetError(err):
		e.Code, e.Retryable = CodeUnavailable, true
	default:
		e.Code = CodeRegistryError
	}
	return e
}

// isTLSError reports a certificate the client does not trust.
func isTLSError(err error) bool {
	var uerr x509.UnknownAuthorityError
	var herr x509.HostnameError
	var cerr x509.CertificateInvalidError
	var verr *tls.CertificateVerificationError
	return errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr) || errors.As(err, &verr)
}

// fallbackAnswer names what the plain-HTTP attempt got, without echoing a body.
func fallbackAnswer(err error) string {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return fmt.Sprintf("%d %s", terr.StatusCode, http.StatusText(terr.StatusCode))
	}
	return clip(err.Error(), 200)
}

// retryableNetError reports transient network failures worth another try.
// TLS and certificate errors are not transient.
func retryableNetError(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) {
		return true
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return true
	}
	var oerr *net.OpError
	if errors.As(err, &oerr) && oerr.Op == "dial" {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			return dnsErr.IsTemporary
		}
		return true
	}
	return false
}

// redactSecrets is a last line of defence: the values of ocibuild's
// credential variables never appear in an error string, whatever a server
// echoed back.
func redactSecrets(s string) string {
	for _, name := range []string{"OCIBUILD_PUSH_PASSWORD", "OCIBUILD_PUSH_TOKEN"} {
		if v := os.Getenv(name); len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "[REDACTED]")
		}
	}
	return authHeaderValue.ReplaceAllString(s, "$1 [REDACTED]")
}

// authHeaderValue matches an echoed Authorization value (Basic carries the
// password in base64).
var authHeaderValue = regexp.MustCompile(`(?i)\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]{8,}`)
