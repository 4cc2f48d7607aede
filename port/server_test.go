package port

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ocisign/ocisign/internal/errcode"

	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/signing"
)

// funcBackend lets dispatch tests control when and how operations finish.
// Sign and verify against a real registry are in registry_test.go.
type funcBackend struct {
	sign    func(context.Context, registry.SignRequest) (*registry.SignResult, error)
	verify  func(context.Context, registry.VerifyRequest) (*registry.VerifyResult, error)
	connect func(context.Context, string) error
}

func (b *funcBackend) Sign(ctx context.Context, req registry.SignRequest) (*registry.SignResult, error) {
	return b.sign(ctx, req)
}

func (b *funcBackend) Verify(ctx context.Context, req registry.VerifyRequest) (*registry.VerifyResult, error) {
	return b.verify(ctx, req)
}

func (b *funcBackend) Connect(ctx context.Context, reference string) error {
	if b.connect == nil {
		return nil
	}
	return b.connect(ctx, reference)
}

func fakeDigest(s string) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s))) }

// 20 requests are in flight at once (the backend only lets any finish once
// all 20 have arrived) and every reply carries its own request's id.
func TestTwentyConcurrentRequestsAllAnsweredWithTheirIDs(t *testing.T) {
	const n = 20
	var arrived atomic.Int32
	allIn := make(chan struct{})
	cfg := testConfig(map[string]string{"OCIBUILD_SIGN_KEY": "/unused/env.key"})
	cfg.MaxConcurrent = n
	cfg.LoadPrivateKey = ephemeralSigner(t)
	cfg.NewBackend = func(registry.Options) Backend {
		return &funcBackend{sign: func(ctx context.Context, req registry.SignRequest) (*registry.SignResult, error) {
			if arrived.Add(1) == n {
				close(allIn)
			}
			select {
			case <-allIn:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return &registry.SignResult{SignatureDigest: fakeDigest("sig" + req.Digest), Signed: []registry.SignedEntry{{Digest: req.Digest}}}, nil
		}}
	}
	s := startSession(t, cfg)
	want := map[string]string{} // id -> signature digest
	for i := range n {
		id := fmt.Sprint(i)
		if i%2 == 1 {
			id = fmt.Sprintf(`"req-%d"`, i)
		}
		d := fakeDigest(id)
		want[id] = fakeDigest("sig" + d)
		s.sendFrame([]byte(fmt.Sprintf(`{"id":%s,"op":"sign","reference":"127.0.0.1:1/app","digest":"%s"}`, id, d)))
	}
	for range n {
		r := s.next()
		if !*r.OK {
			t.Fatalf("error reply: %s", r.raw)
		}
		sig, ok := want[string(r.ID)]
		if !ok {
			t.Fatalf("reply for an unknown or repeated id: %s", r.raw)
		}
		if r.SigDigest != sig {
			t.Fatalf("reply for id %s carries another request's result: %s", r.ID, r.raw)
		}
		delete(want, string(r.ID))
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
}

// No more than MaxConcurrent operations run at once; the rest wait.
func TestConcurrencyIsBounded(t *testing.T) {
	const limit, n = 3, 12
	var running, most atomic.Int32
	started := make(chan struct{}, n)
	release := make(chan struct{})
	cfg := testConfig(nil)
	cfg.MaxConcurrent = limit
	cfg.LoadPublicKey = func(string) (*signing.Verifier, error) { return nil, nil }
	cfg.NewBackend = func(registry.Options) Backend {
		return &funcBackend{verify: func(ctx context.Context, req registry.VerifyRequest) (*registry.VerifyResult, error) {
			now := running.Add(1)
			for {
				m := most.Load()
				if now <= m || most.CompareAndSwap(m, now) {
					break
				}
			}
			started <- struct{}{}
			<-release
			running.Add(-1)
			return &registry.VerifyResult{Digest: req.Digest, Valid: 1}, nil
		}}
	}
	s := startSession(t, cfg)
	for i := range n {
		s.sendFrame([]byte(fmt.Sprintf(`{"id":%d,"op":"verify","reference":"r/x","public_key":"p","digest":"%s"}`, i, digestA)))
	}
	// Let them through one at a time once the first batch is running.
	for range limit {
		<-started
	}
	for i := range n {
		release <- struct{}{}
		if i+limit < n {
			<-started
		}
		if r := s.next(); !*r.OK {
			t.Fatalf("reply %s", r.raw)
		}
	}
	if m := most.Load(); m != limit {
		t.Fatalf("%d operations ran at once, limit %d", m, limit)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
}

// Closing stdin cancels the work in flight: Serve returns and the blocked
// operation sees its context cancelled.
func TestEOFCancelsWorkInFlight(t *testing.T) {
	entered := make(chan struct{})
	observed := make(chan error, 1)
	cfg := testConfig(nil)
	cfg.LoadPrivateKey = ephemeralSigner(t)
	cfg.NewBackend = func(registry.Options) Backend {
		return &funcBackend{sign: func(ctx context.Context, req registry.SignRequest) (*registry.SignResult, error) {
			close(entered)
			<-ctx.Done()
			observed <- ctx.Err()
			return nil, ctx.Err()
		}}
	}
	s := startSession(t, cfg)
	s.sendFrame([]byte(`{"id":"slow","op":"sign","reference":"r/x","sign_key":"k"}`))
	<-entered
	if err := s.close(); err != nil {
		t.Fatalf("Serve at EOF: %v", err)
	}
	if err := <-observed; !errors.Is(err, context.Canceled) {
		t.Fatalf("the operation saw %v", err)
	}
	r := s.next()
	if *r.OK || string(r.ID) != `"slow"` || r.Error.Code != "cancelled" {
		t.Fatalf("reply of the cancelled request: %s", r.raw)
	}
}

// timeout_ms bounds one request; the reply says timeout and retryable.
func TestTimeoutMS(t *testing.T) {
	cfg := testConfig(nil)
	cfg.LoadPrivateKey = ephemeralSigner(t)
	cfg.NewBackend = func(registry.Options) Backend {
		return &funcBackend{sign: func(ctx context.Context, req registry.SignRequest) (*registry.SignResult, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}}
	}
	s := startSession(t, cfg)
	s.sendFrame([]byte(`{"id":1,"op":"sign","reference":"r/x","sign_key":"k","timeout_ms":20}`))
	r := s.next()
	if *r.OK || r.Error.Code != "timeout" || !*r.Error.Retryable || r.Error.Message != "sign r/x: timed out after 20ms (timeout_ms)" {
		t.Fatalf("got %s", r.raw)
	}
	s.expectVersion("after-timeout")
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
}

// A panicking handler answers internal and the port goes on.
func TestPanicBecomesInternalError(t *testing.T) {
	var logs strings.Builder
	var logMu sync.Mutex
	cfg := testConfig(nil)
	cfg.Logf = func(f string, a ...any) { logMu.Lock(); fmt.Fprintf(&logs, f+"\n", a...); logMu.Unlock() }
	cfg.LoadPrivateKey = ephemeralSigner(t)
	cfg.NewBackend = func(registry.Options) Backend {
		return &funcBackend{sign: func(context.Context, registry.SignRequest) (*registry.SignResult, error) {
			panic("boom")
		}}
	}
	s := startSession(t, cfg)
	s.sendFrame([]byte(`{"id":4,"op":"sign","reference":"r/x","sign_key":"k"}`))
	r := s.next()
	if *r.OK || string(r.ID) != "4" || r.Error.Code != CodeInternal || !strings.Contains(r.Error.Message, "internal error while handling sign") {
		t.Fatalf("got %s", r.raw)
	}
	s.expectVersion("after-panic")
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "panicked: boom") {
		t.Fatalf("panic not logged: %s", logs.String())
	}
}

// One backend per allow_insecure_registry setting, reused; the options
// carry COSIGN_REPOSITORY and the base settings; the request's fields reach
// the backend unchanged.
func TestBackendPerInsecureSettingAndRequestMapping(t *testing.T) {
	var mu sync.Mutex
	var built []registry.Options
	var seen []registry.SignRequest
	cfg := testConfig(map[string]string{"COSIGN_REPOSITORY": "127.0.0.1:5000/sigs", "OCIBUILD_SIGN_KEY": "/env/cosign.key"})
	cfg.Registry.InsecureRegistries = []string{"reg.internal:5000"}
	var loaded []string
	signer := ephemeralSigner(t)
	cfg.LoadPrivateKey = func(p string) (*signing.Signer, error) {
		mu.Lock()
		loaded = append(loaded, p)
		mu.Unlock()
		return signer(p)
	}
	cfg.NewBackend = func(o registry.Options) Backend {
		mu.Lock()
		built = append(built, o)
		mu.Unlock()
		return &funcBackend{sign: func(_ context.Context, req registry.SignRequest) (*registry.SignResult, error) {
			mu.Lock()
			seen = append(seen, req)
			mu.Unlock()
			return &registry.SignResult{SignatureDigest: digestA, Signed: []registry.SignedEntry{{Digest: digestA, SignatureRef: "r/x:sha256-0123.sig", SignatureDigest: digestA, Deduplicated: true}}}, nil
		}}
	}
	s := startSession(t, cfg)
	for i, insecure := range []bool{false, true, false, true, true} {
		s.sendFrame([]byte(fmt.Sprintf(`{"id":%d,"op":"sign","reference":"reg.internal:5000/app:1","allow_insecure_registry":%t,"annotations":{"a":"b"},"recursive":true}`, i, insecure)))
		r := s.next()
		want := fmt.Sprintf(`{"id":%d,"ok":true,"signature_digest":"%s","signed":[{"digest":"%s","signature_ref":"r/x:sha256-0123.sig","signature_digest":"%s","deduplicated":true}]}`, i, digestA, digestA, digestA)
		if string(r.raw) != want {
			t.Fatalf("got  %s\nwant %s", r.raw, want)
		}
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if len(built) != 2 || built[0].AllowInsecure || !built[1].AllowInsecure {
		t.Fatalf("backends built: %+v", built)
	}
	for _, o := range built {
		if o.SignatureRepository != "127.0.0.1:5000/sigs" || o.InsecureRegistries[0] != "reg.internal:5000" || o.Logf == nil {
			t.Fatalf("options %+v", o)
		}
	}
	for _, req := range seen {
		if req.Reference != "reg.internal:5000/app:1" || req.Digest != "" || !req.Recursive || req.Annotations["a"] != "b" || req.Signer == nil {
			t.Fatalf("backend got %+v", req)
		}
	}
	// OCIBUILD_SIGN_KEY applied. That file does not exist, so there is no
	// identity to cache on and every request asked the loader.
	if len(loaded) != 5 || loaded[0] != "/env/cosign.key" {
		t.Fatalf("loaded %v", loaded)
	}
}

// verify: a result without a valid layer is verification_failed, and the
// message says why each layer was refused.
func TestVerifyFailureListsLayerReasons(t *testing.T) {
	cfg := testConfig(nil)
	cfg.LoadPublicKey = func(string) (*signing.Verifier, error) { return nil, nil }
	cfg.NewBackend = func(registry.Options) Backend {
		return &funcBackend{verify: func(context.Context, registry.VerifyRequest) (*registry.VerifyResult, error) {
			return &registry.VerifyResult{Digest: digestA, Signatures: []registry.SignatureCheck{
				{Layer: 0, Digest: "sha256:aaa", Error: "signature does not verify with this key"},
				{Layer: 1, Digest: "sha256:bbb", Error: `annotation "team" is "x", want "y"`},
			}}, &errcode.Error{Op: "verify", Ref: "r/x", Code: CodeVerifyFailed, Err: errors.New("no valid signature among 2")}
		}}
	}
	s := startSession(t, cfg)
	s.sendFrame([]byte(`{"id":1,"op":"verify","reference":"r/x","public_key":"p.pub"}`))
	r := s.next()
	if *r.OK || r.Error.Code != CodeVerifyFailed || *r.Error.Retryable ||
		!strings.Contains(r.Error.Message, "layer 0 (sha256:aaa): signature does not verify with this key; layer 1 (sha256:bbb): annotation") {
		t.Fatalf("got %s", r.raw)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyPublicKeyErrorsUseKeyCodes(t *testing.T) {
	s := startSession(t, testConfig(nil))
	s.sendFrame([]byte(`{"id":1,"op":"verify","reference":"r/x","public_key":"/nonexistent/cosign.pub"}`))
	r := s.next()
	if *r.OK || r.Error.Code != "key_not_found" || !strings.Contains(r.Error.Message, "/nonexistent/cosign.pub") {
		t.Fatalf("got %s", r.raw)
	}
	s.sendFrame([]byte(`{"id":2,"op":"public_key","sign_key":"testdata-missing.key"}`))
	if r := s.next(); *r.OK || r.Error.Code != "key_not_found" {
		t.Fatalf("got %s", r.raw)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
}

func TestReplyIDsAreEchoedVerbatim(t *testing.T) {
	s := startSession(t, testConfig(nil))
	for _, id := range []string{`0`, `18446744073709551616`, `"ünïcødé"`, `""`, `-1.5E+3`} {
		s.sendFrame([]byte(`{"op":"version","id":` + id + `}`))
		r := s.next()
		var got, want any
		_ = json.Unmarshal(r.ID, &got)
		_ = json.Unmarshal([]byte(id), &want)
		if string(r.ID) != id || got != want {
			t.Fatalf("id %s came back as %s", id, r.ID)
		}
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
}
