package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	th "github.com/ocisign/ocisign/test/internal/harness"
)

// tokenFront makes the recording proxy a registry with bearer-token auth, as
// registries with a token server behave: every /v2/ request without a token
// it issued gets 401 and a Bearer challenge; GET /token hands out an
// anonymous token. docker-registry itself only does htpasswd basic auth.
type tokenFront struct {
	realm  string
	mu     sync.Mutex
	tokens map[string]bool
}

func newTokenFront(proxyAddr string) *tokenFront {
	return &tokenFront{realm: "http://" + proxyAddr + "/token", tokens: map[string]bool{}}
}

func (f *tokenFront) hook() th.Hook {
	return func(w http.ResponseWriter, r *http.Request, _ int) bool {
		if r.URL.Path == "/token" {
			f.issue(w, r)
			return true
		}
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && f.valid(tok) {
			return false
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="bench-registry"`, f.realm))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		return true
	}
}

func (f *tokenFront) issue(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	buf := make([]byte, 16)
	rand.Read(buf)
	tok := hex.EncodeToString(buf)
	f.mu.Lock()
	f.tokens[tok] = true
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 3600})
}

func (f *tokenFront) valid(tok string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens[tok]
}
