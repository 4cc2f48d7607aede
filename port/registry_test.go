package port

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocisign/ocisign/internal/memregistry/memtest"
	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/signing"
)

type signedEntry struct {
	Digest          string `json:"digest"`
	SignatureRef    string `json:"signature_ref"`
	SignatureDigest string `json:"signature_digest"`
	Deduplicated    bool   `json:"deduplicated"`
}

// sign and verify through the port with the real registry client.
func TestSignAndVerifyAgainstARealRegistry(t *testing.T) {
	host := memtest.Start(t, nil)
	image := host + "/team/app"
	digest := memtest.PushImage(t, image+":1.0")
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "cosign.key")
	pubPEM := plainKey(t, keyPath)
	pubPath := filepath.Join(dir, "cosign.pub")
	writeFile(t, pubPath, pubPEM)
	otherKey := filepath.Join(dir, "other.key")
	otherPub := filepath.Join(dir, "other.pub")
	writeFile(t, otherPub, plainKey(t, otherKey))

	s := startSession(t, testConfig(map[string]string{"OCIBUILD_SIGN_KEY": keyPath}))
	request := func(format string, args ...any) reply {
		t.Helper()
		s.sendFrame([]byte(fmt.Sprintf(format, args...)))
		return s.next()
	}

	r := request(`{"id":1,"op":"sign","reference":%q,"annotations":{"team":"erlang"}}`, image+":1.0")
	var signed []signedEntry
	if !*r.OK || json.Unmarshal(r.Signed, &signed) != nil || len(signed) != 1 {
		t.Fatalf("sign: %s", r.raw)
	}
	wantSigRef := image + ":" + strings.Replace(digest, ":", "-", 1) + ".sig"
	if signed[0].Digest != digest || signed[0].SignatureRef != wantSigRef || signed[0].Deduplicated ||
		signed[0].SignatureDigest != r.SigDigest || !digestPattern.MatchString(r.SigDigest) {
		t.Fatalf("sign: %s (want signature ref %s)", r.raw, wantSigRef)
	}
	// The .sig manifest the reply names is really in the registry.
	sigRef, _ := name.ParseReference(wantSigRef)
	desc, err := remote.Head(sigRef)
	if err != nil || desc.Digest.String() != r.SigDigest {
		t.Fatalf("registry has %v (%v), reply said %s", desc, err, r.SigDigest)
	}

	// Signing the same digest with the same annotations again adds nothing.
	r = request(`{"id":2,"op":"sign","reference":%q,"digest":%q,"sign_key":%q,"annotations":{"team":"erlang"}}`, image, digest, keyPath)
	if !*r.OK || json.Unmarshal(r.Signed, &signed) != nil || !signed[0].Deduplicated {
		t.Fatalf("second sign: %s", r.raw)
	}

	r = request(`{"id":3,"op":"verify","reference":%q,"public_key":%q,"annotations":{"team":"erlang"}}`, image+":1.0", pubPath)
	if !*r.OK || r.Valid != 1 || r.Digest != digest || !strings.Contains(string(r.raw), `"signature_ref":"`+wantSigRef+`"`) {
		t.Fatalf("verify: %s", r.raw)
	}

	r = request(`{"id":4,"op":"verify","reference":%q,"public_key":%q}`, image+"@"+digest, otherPub)
	if *r.OK || r.Error.Code != CodeVerifyFailed || !strings.Contains(r.Error.Message, "layer 0") {
		t.Fatalf("verify with another key: %s", r.raw)
	}
	t.Logf("verify with another key: %s", r.Error.Message)
	r = request(`{"id":5,"op":"verify","reference":%q,"public_key":%q,"annotations":{"team":"elixir"}}`, image+":1.0", pubPath)
	if *r.OK || r.Error.Code != CodeVerifyFailed || !strings.Contains(r.Error.Message, "team") {
		t.Fatalf("verify with other annotations: %s", r.raw)
	}
	t.Logf("verify with other annotations: %s", r.Error.Message)

	r = request(`{"id":6,"op":"public_key","sign_key":%q}`, keyPath)
	if !*r.OK || r.PublicKey != pubPEM {
		t.Fatalf("public_key: %s", r.raw)
	}

	missing := fakeDigest("not pushed")
	r = request(`{"id":7,"op":"sign","reference":%q,"digest":%q}`, image, missing)
	if *r.OK || r.Error.Code != "not_found" || !strings.Contains(r.Error.Message, missing) {
		t.Fatalf("sign of a missing digest: %s", r.raw)
	}
	r = request(`{"id":8,"op":"sign","reference":"UPPER/Case::bad"}`)
	if *r.OK || r.Error.Code != "invalid_reference" {
		t.Fatalf("bad reference: %s", r.raw)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
}

// Closing stdin while the real client waits on a registry that never
// answers: Serve returns, and the registry sees the request cancelled.
func TestEOFCancelsARegistryRequestInFlight(t *testing.T) {
	entered := make(chan struct{})
	cancelled := make(chan struct{})
	var once sync.Once
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(entered) })
		<-r.Context().Done()
		select {
		case <-cancelled:
		default:
			close(cancelled)
		}
	}))
	defer front.Close()
	keyPath := filepath.Join(t.TempDir(), "cosign.key")
	plainKey(t, keyPath)

	s := startSession(t, testConfig(nil))
	s.sendFrame([]byte(fmt.Sprintf(`{"id":"hang","op":"sign","reference":"%s/app:1","sign_key":%q}`,
		strings.TrimPrefix(front.URL, "http://"), keyPath)))
	<-entered
	if err := s.close(); err != nil {
		t.Fatalf("Serve at EOF: %v", err)
	}
	<-cancelled // the registry handler saw the client give up
	r := s.next()
	if *r.OK || string(r.ID) != `"hang"` || r.Error.Code != "cancelled" {
		t.Fatalf("reply: %s", r.raw)
	}
}

// A registry that never answers: timeout_ms longer than the clients'
// default and the default itself both end the request with a timeout naming
// the limit that applied.
func TestTimeoutAgainstAStuckRegistry(t *testing.T) {
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer front.Close()
	keyPath := filepath.Join(t.TempDir(), "cosign.key")
	plainKey(t, keyPath)
	host := strings.TrimPrefix(front.URL, "http://")

	cfg := testConfig(nil)
	cfg.Registry.Timeout = 30 * time.Millisecond // the default for requests without timeout_ms
	var built []registry.Options
	cfg.NewBackend = func(o registry.Options) Backend { built = append(built, o); return registry.New(o) }
	s := startSession(t, cfg)
	s.sendFrame([]byte(fmt.Sprintf(`{"id":1,"op":"sign","reference":"%s/app:1","sign_key":%q,"timeout_ms":60}`, host, keyPath)))
	r := s.next()
	if *r.OK || r.Error.Code != "timeout" || !*r.Error.Retryable || !strings.HasSuffix(r.Error.Message, ": timed out after 60ms (timeout_ms)") ||
		!strings.Contains(r.Error.Message, host) {
		t.Fatalf("got %s", r.raw)
	}
	s.sendFrame([]byte(fmt.Sprintf(`{"id":2,"op":"verify","reference":"%s/app:1","public_key":"%s"}`, host, writePub(t, keyPath))))
	r = s.next()
	if *r.OK || r.Error.Code != "timeout" || !strings.HasSuffix(r.Error.Message, ": timed out after 30ms (the default timeout)") {
		t.Fatalf("got %s", r.raw)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	// The clients' own timeout is a backstop above every request deadline.
	if len(built) != 1 || built[0].Timeout <= DefaultMaxTimeout {
		t.Fatalf("client options %+v", built)
	}
}

// writePub writes the public key of a private key file next to it.
func writePub(t *testing.T, keyPath string) string {
	t.Helper()
	signer, err := signing.LoadPrivateKey(keyPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := signer.Verifier().PublicKeyPEM()
	path := keyPath + ".pub"
	writeFile(t, path, string(pub))
	return path
}

// A context cancelled by the caller (SIGTERM in the CLI) stops Serve too.
func TestServeReturnsWhenItsContextIsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	inR, inW := io.Pipe()
	defer inW.Close()
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, inR, io.Discard, testConfig(nil)) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

// A reply that cannot be written (the peer closed stdout) stops Serve.
func TestBrokenStdoutStopsServe(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	outR.Close()
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), inR, outW, testConfig(nil)) }()
	inW.Write(appendFrame(nil, []byte(`{"id":1,"op":"version"}`)))
	if err := <-done; !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("got %v", err)
	}
	inW.Close()
}
