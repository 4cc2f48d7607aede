//go:build unix

package port

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/signing"
)

// hangLimit only catches a port that never answers; nothing asserts how
// fast the answers come.
const hangLimit = time.Minute

// nextReply is session.next that fails the test instead of hanging.
func (s *session) nextReply() reply {
	s.t.Helper()
	select {
	case frame, ok := <-s.replies:
		if !ok {
			s.t.Fatalf("the port closed stdout instead of replying")
		}
		var r reply
		if err := json.Unmarshal(frame, &r); err != nil || r.OK == nil {
			s.t.Fatalf("bad reply %q: %v", frame, err)
		}
		r.raw = frame
		return r
	case <-time.After(hangLimit):
		s.t.Fatalf("no reply within %s", hangLimit)
	}
	return reply{}
}

// closeInput ends stdin and returns Serve's result, failing on a hang.
func (s *session) closeInput() error {
	s.t.Helper()
	s.stdin.Close()
	select {
	case err := <-s.done:
		return err
	case <-time.After(hangLimit):
		s.t.Fatalf("Serve did not return within %s of stdin EOF", hangLimit)
	}
	return nil
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("cannot make a FIFO here: %v", err)
	}
}

// fifoGate is a key loader that blocks opening a FIFO nobody writes to
// (as a key on a hung mount would) until open is called, then loads the
// real key file.
type fifoGate struct {
	fifo  string
	loads atomic.Int32
}

func newFIFOGate(t *testing.T) *fifoGate {
	g := &fifoGate{fifo: filepath.Join(t.TempDir(), "gate")}
	mkfifo(t, g.fifo)
	t.Cleanup(g.open) // never leave a loader blocked
	return g
}

func (g *fifoGate) load(path string) (*signing.Signer, error) {
	g.loads.Add(1)
	f, err := os.Open(g.fifo) // blocks until the gate opens
	if err != nil {
		return nil, err
	}
	f.Close()
	return signing.LoadPrivateKey(path, nil)
}

// open lets blocked loaders through: on Linux and the BSDs opening a FIFO
// read-write never blocks and counts as its writer.
func (g *fifoGate) open() {
	if f, err := os.OpenFile(g.fifo, os.O_RDWR|syscall.O_NONBLOCK, 0); err == nil {
		f.Close()
	}
}

// A sign_key, OCIBUILD_SIGN_KEY or public_key naming a FIFO without a
// writer is refused at once instead of blocking the request.
func TestKeyFromAFIFOIsRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "cosign.key")
	mkfifo(t, fifo)
	s := startSession(t, testConfig(map[string]string{"OCIBUILD_SIGN_KEY": fifo})) // the real loaders
	for _, req := range []string{
		fmt.Sprintf(`{"id":1,"op":"public_key","sign_key":%q}`, fifo),
		fmt.Sprintf(`{"id":2,"op":"sign","reference":"r/x","sign_key":%q,"timeout_ms":2000}`, fifo),
		`{"id":3,"op":"public_key"}`,
		fmt.Sprintf(`{"id":4,"op":"verify","reference":"r/x","public_key":%q,"timeout_ms":2000}`, fifo),
	} {
		r := s.nextReplyTo(req)
		if *r.OK || r.Error.Code != "invalid_key" || *r.Error.Retryable ||
			!strings.Contains(r.Error.Message, fifo+": not a regular file (a named pipe (FIFO))") {
			t.Errorf("%s: got %s", req, r.raw)
		}
	}
	if err := s.closeInput(); err != nil {
		t.Fatal(err)
	}
}

func (s *session) nextReplyTo(req string) reply {
	s.t.Helper()
	s.sendFrame([]byte(req))
	return s.nextReply()
}

// A key load that does not finish ends with the request's timeout_ms: every
// request waiting on it gets a timeout reply naming its reference and the
// key, and the load, once it finishes, is cached for later requests.
func TestKeyLoadIsBoundedByTimeoutMS(t *testing.T) {
	keyPath := filepath.Join(t.TempDir(), "cosign.key")
	pubPEM := plainKey(t, keyPath)
	gate := newFIFOGate(t)
	cfg := testConfig(nil)
	cfg.LoadPrivateKey = gate.load
	s := startSession(t, cfg)

	s.sendFrame([]byte(fmt.Sprintf(`{"id":1,"op":"sign","reference":"r/x:1","sign_key":%q,"timeout_ms":50}`, keyPath)))
	s.sendFrame([]byte(fmt.Sprintf(`{"id":2,"op":"sign","reference":"r/x:2","sign_key":%q,"timeout_ms":60}`, keyPath)))
	want := map[string]string{
		"1": "sign r/x:1: timed out after 50ms (timeout_ms) while loading key " + keyPath,
		"2": "sign r/x:2: timed out after 60ms (timeout_ms) while loading key " + keyPath,
	}
	for range 2 {
		r := s.nextReply()
		if *r.OK || r.Error.Code != "timeout" || !*r.Error.Retryable || r.Error.Message != want[string(r.ID)] {
			t.Fatalf("got %s, want message %q", r.raw, want[string(r.ID)])
		}
		delete(want, string(r.ID))
	}
	s.expectVersion("serving")

	gate.open()
	// The default timeout (5 minutes) applies: only a hang fails this.
	r := s.nextReplyTo(fmt.Sprintf(`{"id":3,"op":"public_key","sign_key":%q}`, keyPath))
	if !*r.OK || r.PublicKey != pubPEM {
		t.Fatalf("after the load finished: %s", r.raw)
	}
	if n := gate.loads.Load(); n != 1 {
		t.Fatalf("the key was loaded %d times, want once (waiters share the load in flight)", n)
	}
	if err := s.closeInput(); err != nil {
		t.Fatal(err)
	}
}

// Without timeout_ms (public_key has none) the default timeout bounds the
// key load, and the reply names that limit.
func TestKeyLoadIsBoundedByTheDefaultTimeout(t *testing.T) {
	keyPath := filepath.Join(t.TempDir(), "cosign.key")
	plainKey(t, keyPath)
	gate := newFIFOGate(t)
	cfg := testConfig(nil)
	cfg.LoadPrivateKey = gate.load
	cfg.Registry.Timeout = 40 * time.Millisecond
	s := startSession(t, cfg)
	r := s.nextReplyTo(fmt.Sprintf(`{"id":1,"op":"public_key","sign_key":%q}`, keyPath))
	want := "public_key: timed out after 40ms (the default timeout) while loading key " + keyPath
	if *r.OK || r.Error.Code != "timeout" || !*r.Error.Retryable || r.Error.Message != want {
		t.Fatalf("got %s, want message %q", r.raw, want)
	}
	if err := s.closeInput(); err != nil {
		t.Fatal(err)
	}
}

// stdin EOF while a key load hangs: the request is answered cancelled with
// the reason, and Serve returns without waiting out its shutdown grace
// (set far beyond the test's hang limit).
func TestEOFAbandonsAKeyLoad(t *testing.T) {
	keyPath := filepath.Join(t.TempDir(), "cosign.key")
	plainKey(t, keyPath)
	gate := newFIFOGate(t)
	cfg := testConfig(nil)
	cfg.LoadPrivateKey = gate.load
	cfg.ShutdownGrace = time.Hour
	s := startSession(t, cfg)
	s.sendFrame([]byte(fmt.Sprintf(`{"id":"k","op":"sign","reference":"r/x:1","sign_key":%q}`, keyPath)))
	s.expectVersion("admitted") // the sign request was read before EOF
	for gate.loads.Load() == 0 {
		time.Sleep(time.Millisecond) // until the load is under way
	}
	if err := s.closeInput(); err != nil {
		t.Fatalf("Serve at EOF: %v", err)
	}
	r := s.nextReply()
	want := "sign r/x:1: request abandoned: the port's input closed (stdin EOF) while loading key " + keyPath
	if *r.OK || string(r.ID) != `"k"` || r.Error.Code != "cancelled" || *r.Error.Retryable || r.Error.Message != want {
		t.Fatalf("got %s, want message %q", r.raw, want)
	}
}

// stdin EOF while the real client waits on a registry: the message names
// the registry step, its reference and why the port gave up.
func TestEOFAbandonMessageNamesTheRegistryStep(t *testing.T) {
	entered := make(chan struct{}, 1)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	}))
	defer front.Close()
	keyPath := filepath.Join(t.TempDir(), "cosign.key")
	plainKey(t, keyPath)
	repo := strings.TrimPrefix(front.URL, "http://") + "/app"

	s := startSession(t, testConfig(nil))
	s.sendFrame([]byte(fmt.Sprintf(`{"id":1,"op":"sign","reference":%q,"sign_key":%q}`, repo+":1", keyPath)))
	<-entered
	if err := s.closeInput(); err != nil {
		t.Fatalf("Serve at EOF: %v", err)
	}
	r := s.nextReply()
	if *r.OK || r.Error.Code != "cancelled" || !strings.HasSuffix(r.Error.Message, repo+": request abandoned: the port's input closed (stdin EOF)") ||
		strings.Contains(r.Error.Message, "context canceled") {
		t.Fatalf("got %s", r.raw)
	}
}

// SIGTERM caught by SignalContext (as the CLI does): the reply says the
// port received SIGTERM.
func TestSIGTERMAbandonMessage(t *testing.T) {
	ctx, stop := SignalContext(context.Background(), syscall.SIGTERM)
	defer stop()
	entered := make(chan struct{})
	cfg := testConfig(nil)
	cfg.LoadPrivateKey = ephemeralSigner(t)
	cfg.NewBackend = func(registry.Options) Backend {
		return &funcBackend{sign: func(ctx context.Context, req registry.SignRequest) (*registry.SignResult, error) {
			close(entered)
			<-ctx.Done()
			return nil, ctx.Err()
		}}
	}
	s := startSessionContext(t, ctx, cfg)
	s.sendFrame([]byte(`{"id":1,"op":"sign","reference":"r/x:1","sign_key":"k"}`))
	<-entered
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := s.nextReply()
	if *r.OK || r.Error.Code != "cancelled" || r.Error.Message != "sign r/x:1: request abandoned: the port received SIGTERM" {
		t.Fatalf("got %s", r.raw)
	}
	select {
	case err := <-s.done:
		if err == nil {
			t.Fatal("Serve returned nil after its context was cancelled")
		}
	case <-time.After(hangLimit):
		t.Fatal("Serve did not return after SIGTERM")
	}
}

// startSessionContext is startSession with the caller's context.
func startSessionContext(t *testing.T, ctx context.Context, cfg Config) *session {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &session{t: t, stdin: inW, replies: make(chan []byte, 256), done: make(chan error, 1)}
	go func() {
		err := Serve(ctx, inR, outW, cfg)
		outW.Close()
		s.done <- err
	}()
	go func() {
		defer close(s.replies)
		frames := newFrameReader(outR, 64<<20)
		for {
			frame, err := frames.Next()
			if err != nil {
				return
			}
			s.replies <- frame
		}
	}()
	t.Cleanup(func() { inW.Close() })
	return s
}

// A rekor_public_key naming a FIFO is refused at once, for sign and verify,
// and does not wedge the requests after it: the log key used to be read
// while the log clients' lock was held, so one FIFO blocked every later
// request that needed a log.
func TestLogKeyFromAFIFOIsRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "rekor.pub")
	mkfifo(t, fifo)
	key := filepath.Join(dir, "k.key")
	pub := filepath.Join(dir, "k.pub")
	writeFile(t, pub, plainKey(t, key))
	s := startSession(t, testConfig(nil))
	reqs := []string{
		fmt.Sprintf(`{"id":1,"op":"sign","reference":"127.0.0.1:1/x:1","sign_key":%q,"rekor_url":"http://127.0.0.1:1","rekor_public_key":%q,"timeout_ms":30000}`, key, fifo),
		fmt.Sprintf(`{"id":2,"op":"sign","reference":"127.0.0.1:1/x:1","sign_key":%q,"rekor_url":"http://127.0.0.1:1","rekor_public_key":%q,"timeout_ms":30000}`, key, fifo),
		fmt.Sprintf(`{"id":3,"op":"verify","reference":"127.0.0.1:1/x:1","public_key":%q,"require_tlog":true,"rekor_public_key":%q,"timeout_ms":30000}`, pub, fifo),
	}
	for _, req := range reqs {
		s.sendFrame([]byte(req))
	}
	for range reqs {
		r := s.nextReply()
		if *r.OK || r.Error.Code != "invalid_key" || !strings.Contains(r.Error.Message, fifo+": not a regular file (a named pipe (FIFO))") {
			t.Errorf("got %s", r.raw)
		}
	}
	if err := s.closeInput(); err != nil {
		t.Fatal(err)
	}
}
