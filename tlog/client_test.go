package tlog

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocisign/ocisign/internal/errcode"

	"github.com/ocisign/ocisign/signing"
)

// These are protocol tests against an httptest server that answers the way
// Rekor v1 does; test/rekor runs the same client against a real Rekor.

type fakeLog struct {
	t      *testing.T
	key    *ecdsa.PrivateKey
	logID  string
	srv    *httptest.Server
	mu     sync.Mutex
	leaves [][]byte // canonical bodies, index = log index
	posts  atomic.Int32
	gets   atomic.Int32
	keyGet atomic.Int32

	// Knobs for failure cases.
	postStatus  int // answer every POST with this status
	mangleEntry func(id string, e map[string]any) (string, map[string]any)
	block       chan struct{} // when set, POST waits on it or the request's end
	noLocation  bool
	jsonKey     bool // serve the public key as a JSON string
}

func newFakeLog(t *testing.T) *fakeLog {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeLog{t: t, key: k}
	f.logID, _ = signing.RekorLogID(&k.PublicKey)
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		if f.block != nil {
			close(f.block)
		}
		f.srv.Close()
	})
	return f
}

func (f *fakeLog) publicKeyPEM() []byte {
	der, _ := x509.MarshalPKIXPublicKey(&f.key.PublicKey)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func (f *fakeLog) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == publicKeyPath:
		f.keyGet.Add(1)
		// Rekor's go-swagger server answers a JSON string unless asked for PEM.
		if f.jsonKey || r.Header.Get("Accept") != "application/x-pem-file" {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(string(f.publicKeyPEM()))
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(f.publicKeyPEM())
	case r.Method == http.MethodPost && r.URL.Path == entriesPath:
		f.posts.Add(1)
		if f.block != nil {
			select {
			case <-f.block:
			case <-r.Context().Done():
			}
			return
		}
		if f.postStatus != 0 {
			w.WriteHeader(f.postStatus)
			fmt.Fprintf(w, `{"code":%d,"message":"fake log says no"}`, f.postStatus)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var e signing.HashedRekord
		if err := json.Unmarshal(body, &e); err != nil {
			http.Error(w, `{"code":400,"message":"bad entry"}`, http.StatusBadRequest)
			return
		}
		leaf, _ := json.Marshal(e) // stands in for Rekor's canonicalisation
		f.mu.Lock()
		idx := -1
		for i, l := range f.leaves {
			if string(l) == string(leaf) {
				idx = i
			}
		}
		if idx >= 0 {
			f.mu.Unlock()
			if !f.noLocation {
				w.Header().Set("Location", entriesPath+"/"+f.entryID(leaf))
			}
			w.WriteHeader(http.StatusConflict)
			fmt.Fprintf(w, `{"code":409,"message":"an equivalent entry already exists in the transparency log with UUID %s"}`, f.entryID(leaf))
			return
		}
		f.leaves = append(f.leaves, leaf)
		idx = len(f.leaves) - 1
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write(f.entryJSON(idx, leaf))
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, entriesPath+"/"):
		f.gets.Add(1)
		id := strings.TrimPrefix(r.URL.Path, entriesPath+"/")
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, l := range f.leaves {
			if f.entryID(l) == id {
				w.Write(f.entryJSON(i, l))
				return
			}
		}
		http.NotFound(w, r)
	case r.Method == http.MethodPost && r.URL.Path == entriesPath+"/retrieve":
		f.gets.Add(1)
		var q struct{ Entries []signing.HashedRekord }
		json.NewDecoder(r.Body).Decode(&q)
		f.mu.Lock()
		defer f.mu.Unlock()
		out := []json.RawMessage{}
		for _, e := range q.Entries {
			want, _ := json.Marshal(e)
			for i, l := range f.leaves {
				if string(l) == string(want) {
					out = append(out, f.entryJSON(i, l))
				}
			}
		}
		json.NewEncoder(w).Encode(out)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeLog) entryID(leaf []byte) string {
	return "0123456789abcdef" + signing.RekorEntryUUID(leaf)
}

func (f *fakeLog) entryJSON(idx int, leaf []byte) []byte {
	p := signing.RekorPayload{Body: base64.StdEncoding.EncodeToString(leaf), IntegratedTime: 1795557292,
		LogIndex: int64(idx), LogID: f.logID}
	sum := sha256.Sum256(signing.CanonicalSETPayload(p))
	set, err := ecdsa.SignASN1(rand.Reader, f.key, sum[:])
	if err != nil {
		f.t.Error(err)
	}
	e := map[string]any{"body": p.Body, "integratedTime": p.IntegratedTime, "logID": p.LogID, "logIndex": p.LogIndex,
		"verification": map[string]any{"signedEntryTimestamp": base64.StdEncoding.EncodeToString(set),
			"inclusionProof": map[string]any{"treeSize": idx + 1}}}
	id := f.entryID(leaf)
	if f.mangleEntry != nil {
		id, e = f.mangleEntry(id, e)
	}
	out, _ := json.Marshal(map[string]any{id: e})
	return out
}

type signed struct {
	signer    *signing.Signer
	payload   []byte
	signature []byte
	pub       []byte
}

func newSigned(t *testing.T, name string) signed {
	t.Helper()
	s, err := signing.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	payload, err := signing.Payload("registry.example/"+name, "sha256:"+strings.Repeat("cd", 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := s.Verifier().PublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return signed{s, payload, sig, pub}
}

func (f *fakeLog) client(t *testing.T, opts Options) *Client {
	t.Helper()
	if opts.PublicKey == nil && opts.PublicKeyFile == "" {
		opts.PublicKey = &f.key.PublicKey
	}
	c, err := New(f.srv.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantTlogError(t *testing.T, err error, retryable bool, contains string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	code, retry := errcode.Of(err)
	if code != ErrorCode || retry != retryable {
		t.Errorf("ErrorCode = %q retryable=%v, want %q retryable=%v (err: %v)", code, retry, ErrorCode, retryable, err)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Errorf("error %q does not contain %q", err, contains)
	}
}

func TestRekorClientUploadAndReuse(t *testing.T) {
	f := newFakeLog(t)
	c := f.client(t, Options{})
	s := newSigned(t, "app")
	e1, err := c.Upload(context.Background(), s.payload, s.signature, s.pub)
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if e1.LogIndex != 0 || len(e1.UUID) != 64 {
		t.Errorf("entry = %+v", e1)
	}
	keys, _ := signing.NewRekorKeys(&f.key.PublicKey)
	check := BundleCheck(s.signer.Verifier(), keys)
	if got, err := check(e1.BundleAnnotation, s.payload, s.signature); err != nil || got.UUID != e1.UUID || got.LogIndex != 0 {
		t.Errorf("BundleCheck = %+v, %v", got, err)
	}

	// Same entry again: 409, Location, GET, the same log entry.
	e2, err := c.Upload(context.Background(), s.payload, s.signature, s.pub)
	if err != nil {
		t.Fatalf("second Upload: %v", err)
	}
	if e2.UUID != e1.UUID || e2.LogIndex != e1.LogIndex || f.gets.Load() != 1 {
		t.Errorf("second upload = %+v (first %+v), GETs %d", e2, e1, f.gets.Load())
	}

	// 409 without Location: found by searching.
	f.noLocation = true
	e3, err := c.Upload(context.Background(), s.payload, s.signature, s.pub)
	if err != nil || e3.UUID != e1.UUID {
		t.Fatalf("409 without Location: %+v, %v", e3, err)
	}
}

func TestRekorClientFetchesLogKeyOnce(t *testing.T) {
	for _, jsonKey := range []bool{false, true} {
		t.Run(fmt.Sprintf("jsonKey=%v", jsonKey), func(t *testing.T) { testFetchesLogKeyOnce(t, jsonKey) })
	}
}

func testFetchesLogKeyOnce(t *testing.T, jsonKey bool) {
	f := newFakeLog(t)
	f.jsonKey = jsonKey
	t.Setenv(EnvPublicKey, "")
	c, err := New(f.srv.URL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		s := newSigned(t, fmt.Sprintf("app%d", i))
		if _, err := c.Upload(context.Background(), s.payload, s.signature, s.pub); err != nil {
			t.Fatalf("Upload %d: %v", i, err)
		}
	}
	if n := f.keyGet.Load(); n != 1 {
		t.Errorf("public key fetched %d times, want 1", n)
	}
}

func TestRekorClientKeyFromEnvAndFile(t *testing.T) {
	f := newFakeLog(t)
	path := filepath.Join(t.TempDir(), "rekor.pub")
	if err := os.WriteFile(path, f.publicKeyPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvPublicKey, path)
	c, err := New(f.srv.URL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := newSigned(t, "app")
	if _, err := c.Upload(context.Background(), s.payload, s.signature, s.pub); err != nil {
		t.Fatal(err)
	}
	if f.keyGet.Load() != 0 {
		t.Error("fetched the log key although SIGSTORE_REKOR_PUBLIC_KEY was set")
	}

	// A key for another log: the reply's SET is not trusted.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c2 := f.client(t, Options{PublicKey: &other.PublicKey})
	s2 := newSigned(t, "app2")
	_, err = c2.Upload(context.Background(), s2.payload, s2.signature, s2.pub)
	wantTlogError(t, err, false, "not trusted")

	t.Setenv(EnvPublicKey, filepath.Join(t.TempDir(), "missing.pub"))
	if _, err := New(f.srv.URL, Options{}); !errors.Is(err, signing.ErrKeyNotFound) {
		t.Errorf("missing key file: %v", err)
	}
}

func TestRekorClientErrors(t *testing.T) {
	cases := []struct {
		name      string
		setup     func(f *fakeLog)
		opts      Options
		retryable bool
		contains  string
	}{
		{"500", func(f *fakeLog) { f.postStatus = 500 }, Options{}, true, "HTTP 500 Internal Server Error: fake log says no"},
		{"400", func(f *fakeLog) { f.postStatus = 400 }, Options{}, false, "HTTP 400 Bad Request: fake log says no"},
		{"malformed JSON", func(f *fakeLog) {
			f.mangleEntry = func(id string, e map[string]any) (string, map[string]any) { return id, map[string]any{"body": 7} }
		}, Options{}, false, "not a Rekor log entry"},
		{"entry for another signature", func(f *fakeLog) {
			f.mangleEntry = func(id string, e map[string]any) (string, map[string]any) {
				other := newSigned(f.t, "other")
				leaf, _ := json.Marshal(signing.NewHashedRekord(other.payload, other.signature, other.pub))
				p := signing.RekorPayload{Body: base64.StdEncoding.EncodeToString(leaf), IntegratedTime: 1, LogIndex: 9, LogID: f.logID}
				sum := sha256.Sum256(signing.CanonicalSETPayload(p))
				set, _ := ecdsa.SignASN1(rand.Reader, f.key, sum[:])
				return f.entryID(leaf), map[string]any{"body": p.Body, "integratedTime": 1, "logID": f.logID, "logIndex": 9,
					"verification": map[string]any{"signedEntryTimestamp": set}}
			}
		}, Options{}, false, "different signature"},
		{"bad SET", func(f *fakeLog) {
			f.mangleEntry = func(id string, e map[string]any) (string, map[string]any) {
				e["logIndex"] = e["logIndex"].(int64) + 1
				return id, e
			}
		}, Options{}, false, "signed entry timestamp does not verify"},
		{"no SET", func(f *fakeLog) {
			f.mangleEntry = func(id string, e map[string]any) (string, map[string]any) {
				delete(e, "verification")
				return id, e
			}
		}, Options{}, false, "no signed entry timestamp"},
		{"reply keyed by another UUID", func(f *fakeLog) {
			f.mangleEntry = func(id string, e map[string]any) (string, map[string]any) {
				return strings.Repeat("0", 80), e
			}
		}, Options{}, false, "names entry 0000"},
		{"two entries", func(f *fakeLog) {
			f.mangleEntry = func(id string, e map[string]any) (string, map[string]any) {
				return id, e
			}
			f.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusCreated)
				w.Write([]byte(`{"a":{},"b":{}}`))
			})
		}, Options{}, false, "has 2 entries"},
		{"slow log", func(f *fakeLog) { f.block = make(chan struct{}) },
			Options{Timeout: 100 * time.Millisecond}, true, "no answer within 100ms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeLog(t)
			c.setup(f)
			cl := f.client(t, c.opts)
			s := newSigned(t, "app")
			entry, err := cl.Upload(context.Background(), s.payload, s.signature, s.pub)
			if entry != nil {
				t.Errorf("got an entry: %+v", entry)
			}
			wantTlogError(t, err, c.retryable, c.contains)
			if !strings.Contains(err.Error(), f.srv.URL) {
				t.Errorf("error %q does not name the log", err)
			}
		})
	}
}

func TestRekorClientRetries5xx(t *testing.T) {
	f := newFakeLog(t)
	f.postStatus = 503
	c := f.client(t, Options{MaxAttempts: 2})
	s := newSigned(t, "app")
	_, err := c.Upload(context.Background(), s.payload, s.signature, s.pub)
	wantTlogError(t, err, true, "HTTP 503")
	if n := f.posts.Load(); n != 2 {
		t.Errorf("%d POSTs, want 2", n)
	}
}

func TestRekorClientLogDown(t *testing.T) {
	f := newFakeLog(t)
	c := f.client(t, Options{MaxAttempts: 1})
	f.srv.Close()
	s := newSigned(t, "app")
	_, err := c.Upload(context.Background(), s.payload, s.signature, s.pub)
	wantTlogError(t, err, true, "unreachable")
}

func TestRekorClientCallerCancelled(t *testing.T) {
	f := newFakeLog(t)
	f.block = make(chan struct{})
	c := f.client(t, Options{})
	s := newSigned(t, "app")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for f.posts.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := c.Upload(ctx, s.payload, s.signature, s.pub)
	if code, _ := errcode.Of(err); code != errcode.CodeCancelled {
		t.Errorf("code %q, err %v", code, err)
	}
}

func TestRekorClientRefusesBeforeSending(t *testing.T) {
	f := newFakeLog(t)
	c := f.client(t, Options{})
	s := newSigned(t, "app")

	_, err := c.Upload(context.Background(), s.payload, s.signature[:len(s.signature)-1], s.pub)
	wantTlogError(t, err, false, "does not verify")

	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	signer, _ := signing.NewSigner(p384)
	sig, _ := signer.Sign(s.payload)
	pub, _ := signer.Verifier().PublicKeyPEM()
	_, err = c.Upload(context.Background(), s.payload, sig, pub)
	if !errors.Is(err, signing.ErrUnsupportedKey) {
		t.Errorf("P-384: %v", err)
	}
	if n := f.posts.Load(); n != 0 {
		t.Errorf("%d POSTs for refused uploads", n)
	}
}

func TestRekorClientPlainHTTPKeyFetchRefused(t *testing.T) {
	t.Setenv(EnvPublicKey, "")
	c, err := New("http://rekor.example:3000", Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := newSigned(t, "app")
	_, err = c.Upload(context.Background(), s.payload, s.signature, s.pub)
	wantTlogError(t, err, false, "refusing to trust a log key fetched over plain HTTP")
}

func TestRekorClientURLValidation(t *testing.T) {
	for _, u := range []string{"", "rekor.example", "ftp://x", "http://", "http://h/?a=b"} {
		if _, err := New(u, Options{}); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	_, err := New("https://user:secret@rekor.example/?x", Options{})
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("credentials in error: %v", err)
	}
}
