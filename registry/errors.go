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
	"slices"
	"strings"
	"syscall"

	"github.com/ocisign/ocisign/internal/errcode"
	"github.com/ocisign/ocisign/internal/retry"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// codeForStatus classifies an HTTP status.
func codeForStatus(status int) (string, bool) {
	switch {
	case status == http.StatusUnauthorized:
		return errcode.CodeUnauthorized, false
	case status == http.StatusForbidden:
		return errcode.CodeDenied, false
	case status == http.StatusNotFound:
		return errcode.CodeNotFound, false
	case retry.Status(status):
		return errcode.CodeUnavailable, true
	}
	return errcode.CodeRegistryError, false
}

// registryErrors parses a registry's error JSON body into
// go-containerregistry's typed form (codes such as BLOB_UNKNOWN); nil when
// the body has none.
func registryErrors(status int, body []byte) *transport.Error {
	terr := &transport.Error{StatusCode: status}
	if json.Unmarshal(body, terr) != nil || len(terr.Errors) == 0 {
		return nil
	}
	return terr
}

// registryDetail is "CODE: message; …" for the errors of terr.
func registryDetail(terr *transport.Error) string {
	if terr == nil {
		return ""
	}
	parts := make([]string, 0, len(terr.Errors))
	for _, e := range terr.Errors {
		s := string(e.Code)
		if e.Message != "" {
			s += ": " + e.Message
		}
		parts = append(parts, errcode.Clip(s, 300))
	}
	return strings.Join(parts, "; ")
}

// hasRegistryCode reports whether err carries a registry error with one of codes.
func hasRegistryCode(err error, codes ...transport.ErrorCode) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	for _, e := range terr.Errors {
		if slices.Contains(codes, e.Code) {
			return true
		}
	}
	return false
}

// statusError builds the Error for an unexpected HTTP response.
func statusError(op, ref string, resp *http.Response, body []byte, tries int) *errcode.Error {
	code, retry := codeForStatus(resp.StatusCode)
	e := &errcode.Error{Op: op, Ref: ref, Status: resp.StatusCode, Code: code, Retryable: retry,
		Tries: tries, Err: fmt.Errorf("unexpected status %d", resp.StatusCode)}
	if terr := registryErrors(resp.StatusCode, body); terr != nil {
		e.Detail, e.Err = registryDetail(terr), terr
	}
	return e
}

// transportError classifies a failure without an HTTP response: the
// context's deadline or cancellation, a TLS/HTTP mismatch, a network error,
// or an error from go-containerregistry's auth handshake.
func transportError(ctx context.Context, op, ref string, err error, tries int, allowHTTP bool, timeoutDesc string) *errcode.Error {
	e := &errcode.Error{Op: op, Ref: ref, Err: err, Tries: tries}
	var refusal *insecureRefusal
	var terr *transport.Error
	var fallback *tlsFallbackError
	switch {
	case ctx.Err() == context.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded):
		e.Code, e.Retryable = errcode.CodeTimeout, true
		e.Err = context.DeadlineExceeded
		e.Detail = "timed out" + timeoutDesc
	case ctx.Err() == context.Canceled || errors.Is(err, context.Canceled):
		e.Code = errcode.CodeCancelled
		e.Err = context.Canceled
		e.Detail = "cancelled"
	case errors.As(err, &refusal) && refusal.other != "":
		e.Code = errcode.CodeInsecureRegistry
		e.Detail = fmt.Sprintf("the registry %s sends its token requests to %s over plain HTTP, which would put the "+
			"registry credentials on the wire in cleartext; use an https token service, or list %s in "+
			"insecure_registries if that host is trusted", refusal.host, refusal.other, refusal.other)
		e.Err = errors.New("plain HTTP refused")
	case errors.As(err, &refusal) || (!allowHTTP && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")):
		e.Code = errcode.CodeInsecureRegistry
		e.Detail = "the registry speaks plain HTTP; pass --allow-insecure-registry (or list it in insecure_registries) to allow that"
		e.Err = errors.New("plain HTTP refused")
	case errors.As(err, &fallback):
		e.Code = errcode.CodeRegistryError
		e.Err = errors.New("TLS failed")
		e.Detail = fmt.Sprintf("https://%s failed on TLS (%s), and the plain-HTTP fallback got %s; trust the "+
			"registry's CA (SSL_CERT_FILE) or pass --allow-insecure-registry to skip verification",
			fallback.host, errcode.Clip(fallback.tls.Error(), 300), fallbackAnswer(fallback.fallback))
	case errors.As(err, &terr):
		// Never render terr.Error(): its raw body may echo anything.
		e.Status = terr.StatusCode
		e.Code, e.Retryable = codeForStatus(terr.StatusCode)
		var parts []string
		for _, d := range terr.Errors {
			parts = append(parts, errcode.Clip(fmt.Sprintf("%s: %s", d.Code, d.Message), 300))
		}
		e.Detail = strings.Join(parts, "; ")
		if r := terr.Request; r != nil && r.URL != nil {
			// Usually the token server, which may not be the registry. The
			// query (scopes) is left out.
			e.Detail = strings.TrimSpace(fmt.Sprintf("%s (%s %s://%s%s)", e.Detail, r.Method, r.URL.Scheme, r.URL.Host, r.URL.Path))
		}
		e.Err = fmt.Errorf("registry answered %d", terr.StatusCode)
	case isTLSError(err):
		e.Code = errcode.CodeRegistryError
		e.Detail = "TLS certificate not trusted (--allow-insecure-registry skips verification)"
	case retryableNetError(err):
		e.Code, e.Retryable = errcode.CodeUnavailable, true
	default:
		e.Code = errcode.CodeRegistryError
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
	return errcode.Clip(err.Error(), 200)
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
