package keyless

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocisign/ocisign/internal/errcode"
)

// jwt is an unsigned token with claims (ParseToken does not verify; Fulcio does).
func jwt(t *testing.T, claims map[string]any) string {
	t.Helper()
	body, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(body) + ".c2lnbmF0dXJlLXNlY3JldA"
}

func claims(extra map[string]any) map[string]any {
	c := map[string]any{"iss": "https://issuer.test", "sub": "repo:org/app", "aud": "sigstore", "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func TestParseTokenErrors(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name, raw, want string
	}{
		{"empty", "  ", "empty"},
		{"not a JWT", "abc.def", "not a JWT"},
		{"bad base64", "a.@@@.c", "base64url"},
		{"expired", jwt(t, claims(map[string]any{"exp": now.Add(-time.Minute).Unix()})), "expired"},
		{"wrong audience", jwt(t, claims(map[string]any{"aud": []string{"https://github.com/org"}})), `audience ["https://github.com/org"]`},
		{"no subject", jwt(t, claims(map[string]any{"sub": ""})), "no issuer (iss) or subject"},
		{"no expiry", jwt(t, claims(map[string]any{"exp": nil})), "no expiry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseToken(tc.raw, "SIGSTORE_ID_TOKEN", now)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
			if code, _ := errcode.Of(err); code != errcode.CodeIdentityError {
				t.Fatalf("code %q, want %q", code, errcode.CodeIdentityError)
			}
			if strings.TrimSpace(tc.raw) != "" && strings.Contains(err.Error(), tc.raw) {
				t.Fatalf("the error repeats the token: %v", err)
			}
		})
	}
	tok, err := ParseToken(jwt(t, claims(map[string]any{"email": "dev@example.test", "aud": []string{"x", "sigstore"}})), "f", now)
	if err != nil || tok.Principal() != "dev@example.test" || tok.Issuer != "https://issuer.test" {
		t.Fatalf("good token: %+v %v", tok, err)
	}
}

func TestTokenSourcesInOrder(t *testing.T) {
	fileTok, envTok := jwt(t, claims(map[string]any{"sub": "from-file"})), jwt(t, claims(map[string]any{"sub": "from-env"}))
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(fileTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{EnvIDToken: envTok}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct {
		src  TokenSources
		want string
	}{
		{TokenSources{File: path, Getenv: getenv}, "from-file"},
		{TokenSources{File: "-", Stdin: strings.NewReader(fileTok), Getenv: getenv}, "from-file"},
		{TokenSources{Getenv: getenv}, "from-env"},
	} {
		tok, err := tc.src.FindToken(context.Background())
		if err != nil || tok.Subject != tc.want {
			t.Fatalf("%+v: %+v %v", tc.src, tok, err)
		}
	}
	none := TokenSources{Getenv: func(string) string { return "" }}
	if none.Available() {
		t.Fatal("no source, yet Available")
	}
	if _, err := none.FindToken(context.Background()); err == nil || !strings.Contains(err.Error(), "id-token: write") {
		t.Fatalf("no source: %v", err)
	}
}

// The GitHub Actions endpoint gets the request token as a bearer and the
// audience sigstore; neither the request token nor the signed URL query
// shows up in an error.
func TestGitHubActionsToken(t *testing.T) {
	const bearer = "actions-request-secret"
	issued := jwt(t, claims(map[string]any{"sub": "repo:org/app:ref:refs/heads/main"}))
	var audience string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+bearer {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		audience = r.URL.Query().Get("audience")
		json.NewEncoder(w).Encode(map[string]string{"value": issued})
	}))
	defer srv.Close()
	env := map[string]string{EnvActionsRequestURL: srv.URL + "/token?api-version=2.0&sig=SIGNEDQUERY", EnvActionsRequestToken: bearer}
	src := TokenSources{Getenv: func(k string) string { return env[k] }}
	if !src.Available() {
		t.Fatal("GitHub Actions variables set, yet not Available")
	}
	tok, err := src.FindToken(context.Background())
	if err != nil || tok.Subject != "repo:org/app:ref:refs/heads/main" || audience != Audience {
		t.Fatalf("token %+v, audience %q, err %v", tok, audience, err)
	}
	env[EnvActionsRequestToken] = "wrong-secret"
	_, err = src.FindToken(context.Background())
	if err == nil || strings.Contains(err.Error(), "wrong-secret") || strings.Contains(err.Error(), "SIGNEDQUERY") ||
		!strings.Contains(err.Error(), "id-token: write") {
		t.Fatalf("refused request: %v", err)
	}
	env[EnvActionsRequestURL] = "http://actions.example.test/token"
	if _, err := src.FindToken(context.Background()); err == nil || !strings.Contains(err.Error(), "must be https") {
		t.Fatalf("plain HTTP to a remote host: %v", err)
	}
}
