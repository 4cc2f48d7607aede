// Package errcode is the error every layer reports failures with and the
// code table of docs/design.md, shared by the CLI's JSON output and the port
// protocol. A leaf: registry, tlog, port and cmd all use it, none of them
// through another.
package errcode

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
)

// The codes (docs/design.md).
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
	CodeIdentityError      = "identity_error" // keyless: no usable OIDC identity token
	CodeCAError            = "ca_error"       // keyless: the certificate authority (Fulcio) failed or is not trusted
	CodeVerificationFailed = "verification_failed"
	CodeInternal           = "internal"
)

// Error is a failed operation. Its message names the operation, the
// reference and the HTTP status; it never contains credentials.
type Error struct {
	Op        string // "resolve", "read signatures", "transparency log upload", ...
	Ref       string // what the operation was about (a reference, a log URL without credentials)
	Status    int    // HTTP status, 0 when there was no response
	Code      string // one of the codes above
	Retryable bool
	Err       error
	Detail    string // the server's error code/message, or a hint
	Tries     int    // HTTP attempts made, for "(after N tries)"
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
		if e.Detail != "" {
			b.WriteString(": ")
			b.WriteString(e.Detail)
		}
	case e.Detail != "" && e.Err != nil:
		b.WriteString(e.Detail)
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	case e.Detail != "":
		b.WriteString(e.Detail)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString(e.Code)
	}
	if e.Tries > 1 {
		fmt.Fprintf(&b, " (after %d tries)", e.Tries)
	}
	return redactSecrets(b.String())
}

func (e *Error) Unwrap() error { return e.Err }

// Coded is an error that knows its code without being an *Error
// (signing.KeyError).
type Coded interface {
	error
	ErrorCode() (code string, retryable bool)
}

// Of maps any error to the code table and says whether retrying may help.
func Of(err error) (code string, retryable bool) {
	if err == nil {
		return "", false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code, e.Retryable
	}
	var c Coded
	if errors.As(err, &c) {
		return c.ErrorCode()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout, true
	case errors.Is(err, context.Canceled):
		return CodeCancelled, false
	}
	return CodeInternal, false
}

// authHeaderValue is a credential in an Authorization header's form.
var authHeaderValue = regexp.MustCompile(`(?i)\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]{8,}`)

// redactSecrets keeps registry credentials out of any message: the values
// of ocibuild's push variables and anything shaped like an auth header.
func redactSecrets(s string) string {
	for _, name := range []string{"OCIBUILD_PUSH_PASSWORD", "OCIBUILD_PUSH_TOKEN"} {
		if v := os.Getenv(name); len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "[REDACTED]")
		}
	}
	return authHeaderValue.ReplaceAllString(s, "$1 [REDACTED]")
}
