// Package rekortest is a stand-in Rekor v1 log for tests: it answers entry
// uploads with real signed entry timestamps made with its own key. Only
// tests import it (the real log is exercised in test/rekor).
package rekortest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocisign/ocisign/signing"
)

// Log is a running stand-in log.
type Log struct {
	Srv     *httptest.Server
	KeyFile string       // the log's public key (PEM)
	Posts   atomic.Int32 // entry uploads
	KeyGets atomic.Int32 // public key fetches
	Down    atomic.Bool  // when set, every request gets a 500

	nextIndex atomic.Int64
}

// Options change how the log answers.
type Options struct {
	// IntegratedTime is every entry's integratedTime; 0 means the current time.
	IntegratedTime int64
	// Observe, when set, sees every request first.
	Observe func(r *http.Request)
}

// Start starts a log with a fresh P-256 key; it stops when t ends.
func Start(t testing.TB, opts Options) *Log {
	t.Helper()
	f, err := Serve(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Srv.Close)
	return f
}

// Serve starts a log with a fresh P-256 key, its public key in dir, until
// f.Srv.Close (for test programs that have no testing.TB).
func Serve(dir string, opts Options) (*Log, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	f := &Log{KeyFile: filepath.Join(dir, "rekor.pub")}
	if err := os.WriteFile(f.KeyFile, pubPEM, 0o644); err != nil {
		return nil, err
	}
	logID, _ := signing.RekorLogID(&k.PublicKey)
	f.Srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if opts.Observe != nil {
			opts.Observe(r)
		}
		if f.Down.Load() {
			http.Error(w, `{"code":500,"message":"error communicating with backend"}`, http.StatusInternalServerError)
			return
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/log/publicKey":
			f.KeyGets.Add(1)
			w.Write(pubPEM)
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/log/entries":
			f.Posts.Add(1)
			body, _ := io.ReadAll(r.Body)
			integrated := opts.IntegratedTime
			if integrated == 0 {
				integrated = time.Now().Unix()
			}
			p := signing.RekorPayload{Body: base64.StdEncoding.EncodeToString(body), IntegratedTime: integrated,
				LogIndex: f.nextIndex.Add(1) - 1, LogID: logID}
			sum := sha256.Sum256(signing.CanonicalSETPayload(p))
			set, _ := ecdsa.SignASN1(rand.Reader, k, sum[:])
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(map[string]any{signing.RekorEntryUUID(body): map[string]any{
				"body": p.Body, "integratedTime": p.IntegratedTime, "logID": p.LogID, "logIndex": p.LogIndex,
				"verification": map[string]any{"signedEntryTimestamp": set}}})
		default:
			http.Error(w, `{"code":404,"message":"not here"}`, http.StatusNotFound)
		}
	}))
	return f, nil
}
