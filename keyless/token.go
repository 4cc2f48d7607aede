// Package keyless gets what a keyless signature needs from the network: an
// OIDC identity token (a file, SIGSTORE_ID_TOKEN, or GitHub Actions' token
// endpoint) and a short-lived certificate from Fulcio for a key made for one
// signing. The token is a secret: it is never logged, echoed or put in an
// error. Offline checks of the certificate are in package signing.
package keyless

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ocisign/ocisign/internal/errcode"
)

// Audience is the audience Fulcio accepts tokens for.
const Audience = "sigstore"

// MaxTokenBytes bounds an identity token from any source.
const MaxTokenBytes = 64 << 10

// Token is an OIDC identity token and the claims ocisign reads from it
// (not verified here: Fulcio verifies the token; these are for clear errors
// before asking it, and for the proof of possession).
type Token struct {
	raw      string
	Issuer   string
	Subject  string
	Email    string
	Audience []string
	Expiry   time.Time
	Source   string // where it came from, for messages: "--identity-token", "SIGSTORE_ID_TOKEN", …
}

// Raw is the token itself, for the request to Fulcio only.
func (t *Token) Raw() string { return t.raw }

// Principal is what the proof of possession signs: the email when the
// token has one, else the subject (as cosign does).
func (t *Token) Principal() string {
	if t.Email != "" {
		return t.Email
	}
	return t.Subject
}

func identityError(source, detail string) error {
	return &errcode.Error{Op: "identity token", Ref: source, Code: errcode.CodeIdentityError, Detail: detail}
}

// ParseToken reads the claims of a JWT from source and refuses one that is
// expired (at now) or not for Fulcio's audience. The message never contains
// the token.
func ParseToken(raw, source string, now time.Time) (*Token, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, identityError(source, "the identity token is empty")
	}
	if len(raw) > MaxTokenBytes {
		return nil, identityError(source, fmt.Sprintf("the identity token is larger than %d bytes", MaxTokenBytes))
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, identityError(source, "the identity token is not a JWT (three dot-separated parts)")
	}
	body, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, identityError(source, "the identity token's claims are not base64url")
	}
	var claims struct {
		Iss   string          `json:"iss"`
		Sub   string          `json:"sub"`
		Email string          `json:"email"`
		Aud   json.RawMessage `json:"aud"`
		Exp   json.Number     `json:"exp"`
	}
	if err := json.Unmarshal(body, &claims); err != nil {
		return nil, identityError(source, "the identity token's claims are not a JSON object")
	}
	t := &Token{raw: raw, Issuer: claims.Iss, Subject: claims.Sub, Email: claims.Email, Source: source}
	var one string
	if json.Unmarshal(claims.Aud, &one) == nil {
		t.Audience = []string{one}
	} else if json.Unmarshal(claims.Aud, &t.Audience) != nil {
		return nil, identityError(source, "the identity token has no audience (aud)")
	}
	if t.Issuer == "" || t.Principal() == "" {
		return nil, identityError(source, "the identity token names no issuer (iss) or subject (sub)")
	}
	exp, err := claims.Exp.Int64()
	if err != nil {
		return nil, identityError(source, "the identity token has no expiry (exp)")
	}
	t.Expiry = time.Unix(exp, 0)
	if !now.Before(t.Expiry) {
		return nil, identityError(source, fmt.Sprintf("the identity token from %s expired at %s; get a fresh one",
			t.Issuer, t.Expiry.UTC().Format(time.RFC3339)))
	}
	if !slices.Contains(t.Audience, Audience) {
		return nil, identityError(source, fmt.Sprintf("the identity token is for audience %q, Fulcio needs %q "+
			"(GitHub Actions: ocisign asks for it; GitLab CI: id_tokens with aud: sigstore)", t.Audience, Audience))
	}
	return t, nil
}
