// Package oidctest is an OpenID Connect issuer on 127.0.0.1 for keyless
// tests: a discovery document, a JWKS, tokens it signs (RS256) with the
// claims a test asks for, and a stand-in for GitHub Actions' token endpoint
// (ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN).
package oidctest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Issuer is a running OIDC issuer.
type Issuer struct {
	URL string // "http://127.0.0.1:PORT", the tokens' iss
	key *rsa.PrivateKey
	srv *http.Server
	// ActionsRequests counts requests to the GitHub Actions stand-in.
	ActionsRequests atomic.Int32
	actions         atomic.Value // actionsConfig
}

type actionsConfig struct {
	bearer string
	claims map[string]any
}

const keyID = "oidctest"

// Start serves a new issuer until Close.
func Start() (*Issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	i := &Issuer{URL: "http://" + ln.Addr().String(), key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", i.discovery)
	mux.HandleFunc("/jwks", i.jwks)
	mux.HandleFunc("/actions/token", i.actionsToken)
	i.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go i.srv.Serve(ln)
	return i, nil
}

// Close stops the issuer.
func (i *Issuer) Close() { i.srv.Close() }

func (i *Issuer) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"issuer":                                i.URL,
		"jwks_uri":                              i.URL + "/jwks",
		"authorization_endpoint":                i.URL + "/auth",
		"token_endpoint":                        i.URL + "/token",
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

func (i *Issuer) jwks(w http.ResponseWriter, _ *http.Request) {
	pub := i.key.PublicKey
	writeJSON(w, map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": keyID,
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

// Token signs a JWT with claims; iss, iat and (unless given) exp, an hour
// from now, and aud "sigstore" are filled in.
func (i *Issuer) Token(claims map[string]any) string {
	c := map[string]any{"iss": i.URL, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "aud": "sigstore"}
	for k, v := range claims {
		c[k] = v
	}
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": keyID})
	body, _ := json.Marshal(c)
	signed := b64(header) + "." + b64(body)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, i.key, crypto.SHA256, sum[:])
	if err != nil {
		panic(err) // a 2048-bit key always signs
	}
	return signed + "." + b64(sig)
}

// Email is the identity tests sign as; EmailClaims are its token's claims.
const Email = "ci@ocisign.test"

// EmailClaims are the claims of a token for Email (Fulcio's email issuer type).
func EmailClaims() map[string]any {
	return map[string]any{"sub": "ci-user", "email": Email, "email_verified": true}
}

// ActionsEndpoint makes the GitHub Actions stand-in answer requests that
// carry bearer with a token holding claims (plus the audience the request
// asks for), and returns the ACTIONS_ID_TOKEN_REQUEST_URL to use.
func (i *Issuer) ActionsEndpoint(bearer string, claims map[string]any) string {
	i.actions.Store(actionsConfig{bearer: bearer, claims: claims})
	return i.URL + "/actions/token?api-version=2.0"
}

func (i *Issuer) actionsToken(w http.ResponseWriter, r *http.Request) {
	i.ActionsRequests.Add(1)
	cfg, _ := i.actions.Load().(actionsConfig)
	if cfg.bearer == "" || r.Header.Get("Authorization") != "Bearer "+cfg.bearer {
		http.Error(w, `{"message":"bad request token"}`, http.StatusUnauthorized)
		return
	}
	claims := map[string]any{}
	for k, v := range cfg.claims {
		claims[k] = v
	}
	if aud := r.URL.Query().Get("audience"); aud != "" {
		claims["aud"] = aud
	} else {
		claims["aud"] = "https://github.com/ocisign"
	}
	writeJSON(w, map[string]any{"count": 1, "value": i.Token(claims)})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func b64(b []byte) string { return strings.TrimRight(base64.URLEncoding.EncodeToString(b), "=") }
