package keyless

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/ocisign/ocisign/internal/bounded"
	"github.com/ocisign/ocisign/internal/errcode"
	"github.com/ocisign/ocisign/internal/loopback"
)

// TokenSources say where an identity token may come from; FindToken tries
// them in this order.
type TokenSources struct {
	// Token is a token given directly (the port's identity_token field).
	Token string
	// File is --identity-token: a file holding the token, or "-" for Stdin.
	File  string
	Stdin io.Reader
	// Getenv reads SIGSTORE_ID_TOKEN and GitHub Actions' variables.
	Getenv func(string) string
	// HTTP fetches GitHub Actions' token (nil: http.DefaultClient).
	HTTP *http.Client
	Now  func() time.Time
}

// Environment variables of the token sources.
const (
	EnvIDToken             = "SIGSTORE_ID_TOKEN"
	EnvActionsRequestURL   = "ACTIONS_ID_TOKEN_REQUEST_URL"
	EnvActionsRequestToken = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
)

// Available reports whether some source is set up, without reading it:
// keyless signing is chosen, with a notice, when no key is configured and
// a token is available.
func (s TokenSources) Available() bool {
	return s.Token != "" || s.File != "" || s.Getenv(EnvIDToken) != "" ||
		(s.Getenv(EnvActionsRequestURL) != "" && s.Getenv(EnvActionsRequestToken) != "")
}

// FindToken reads the first source that is set up and parses its token.
func (s TokenSources) FindToken(ctx context.Context) (*Token, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	switch {
	case s.Token != "":
		return ParseToken(s.Token, "identity_token", now())
	case s.File == "-":
		b, err := io.ReadAll(io.LimitReader(s.Stdin, MaxTokenBytes+1))
		if err != nil {
			return nil, identityError("--identity-token -", "reading standard input: "+err.Error())
		}
		return ParseToken(string(b), "--identity-token -", now())
	case s.File != "":
		b, err := bounded.ReadFile(s.File, MaxTokenBytes)
		if err != nil {
			return nil, identityError("--identity-token "+s.File, err.Error())
		}
		return ParseToken(string(b), "--identity-token "+s.File, now())
	case s.Getenv(EnvIDToken) != "":
		return ParseToken(s.Getenv(EnvIDToken), EnvIDToken, now())
	case s.Getenv(EnvActionsRequestURL) != "" && s.Getenv(EnvActionsRequestToken) != "":
		raw, err := s.actionsToken(ctx)
		if err != nil {
			return nil, err
		}
		return ParseToken(raw, "GitHub Actions", now())
	}
	return nil, identityError("keyless", "no identity token: pass --identity-token FILE (or -), set "+EnvIDToken+
		", or in GitHub Actions grant `permissions: id-token: write`")
}

// actionsToken asks GitHub Actions' token endpoint for a token with
// Fulcio's audience. The request token is a secret and the URL carries a
// signed query: neither appears in an error.
func (s TokenSources) actionsToken(ctx context.Context) (string, error) {
	const source = "GitHub Actions"
	u, err := url.Parse(s.Getenv(EnvActionsRequestURL))
	if err != nil || u.Host == "" {
		return "", identityError(source, EnvActionsRequestURL+" is not a URL")
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback.Host(u.Host)) {
		return "", identityError(source, EnvActionsRequestURL+" must be https (plain HTTP only to a loopback address)")
	}
	q := u.Query()
	q.Set("audience", Audience)
	u.RawQuery = q.Encode()
	where := u.Scheme + "://" + u.Host + u.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", identityError(source, "building the token request failed")
	}
	req.Header.Set("Authorization", "Bearer "+s.Getenv(EnvActionsRequestToken))
	req.Header.Set("Accept", "application/json")
	client := s.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", &errcode.Error{Op: "identity token", Ref: where, Code: errcode.CodeTimeout, Detail: "the token endpoint did not answer in time"}
		}
		return "", &errcode.Error{Op: "identity token", Ref: where, Code: errcode.CodeIdentityError, Retryable: true,
			Detail: "the token endpoint is unreachable: " + withoutURL(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxTokenBytes+1024))
	if err != nil {
		return "", identityError(where, "reading the token endpoint's answer failed")
	}
	if resp.StatusCode != http.StatusOK {
		return "", &errcode.Error{Op: "identity token", Ref: where, Status: resp.StatusCode, Code: errcode.CodeIdentityError,
			Retryable: resp.StatusCode >= 500, Detail: "the token endpoint refused (does the workflow have `permissions: id-token: write`?)"}
	}
	var doc struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Value == "" {
		return "", identityError(where, fmt.Sprintf("the token endpoint answered %d bytes without a token (want JSON with \"value\")", len(body)))
	}
	return doc.Value, nil
}

// withoutURL is a client error without the URL it was for (which may
// carry a signed query): the caller names the host instead.
func withoutURL(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err.Error()
	}
	return err.Error()
}
