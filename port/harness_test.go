package port

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"testing"

	"github.com/ocisign/ocisign/signing"
)

// session runs Serve on pipes the way an Erlang port would.
type session struct {
	t       *testing.T
	stdin   *io.PipeWriter
	replies chan []byte
	done    chan error
}

// reply is a decoded reply frame.
type reply struct {
	ID    json.RawMessage `json:"id"`
	OK    *bool           `json:"ok"`
	Error *struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		Retryable *bool  `json:"retryable"`
	} `json:"error"`
	Version   string          `json:"version"`
	Protocol  int             `json:"protocol"`
	PublicKey string          `json:"public_key"`
	Digest    string          `json:"digest"`
	Valid     int             `json:"valid"`
	SigDigest string          `json:"signature_digest"`
	Signed    json.RawMessage `json:"signed"`
	raw       []byte
}

// testConfig keeps the real environment (OCIBUILD_SIGN_KEY, …) out of tests.
func testConfig(env map[string]string) Config {
	return Config{
		Version: "9.9.9-test",
		Getenv:  func(k string) string { return env[k] },
	}
}

func startSession(t *testing.T, cfg Config) *session {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &session{t: t, stdin: inW, replies: make(chan []byte, 256), done: make(chan error, 1)}
	go func() {
		err := Serve(context.Background(), inR, outW, cfg)
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

// sendRaw writes bytes exactly as given (headers included).
func (s *session) sendRaw(b []byte) {
	s.t.Helper()
	if _, err := s.stdin.Write(b); err != nil {
		s.t.Fatalf("writing to the port: %v", err)
	}
}

// sendFrame writes one length-prefixed frame.
func (s *session) sendFrame(payload []byte) { s.t.Helper(); s.sendRaw(appendFrame(nil, payload)) }

// send encodes v as one request frame.
func (s *session) send(v any) {
	s.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		s.t.Fatal(err)
	}
	s.sendFrame(b)
}

// next returns the next reply; the port must have produced one.
func (s *session) next() reply {
	s.t.Helper()
	frame, ok := <-s.replies
	if !ok {
		s.t.Fatalf("the port closed stdout instead of replying")
	}
	var r reply
	if err := json.Unmarshal(frame, &r); err != nil {
		s.t.Fatalf("reply is not JSON: %v: %q", err, frame)
	}
	if r.OK == nil {
		s.t.Fatalf("reply has no ok field: %s", frame)
	}
	r.raw = frame
	return r
}

// close ends stdin and returns Serve's result.
func (s *session) close() error {
	s.stdin.Close()
	return <-s.done
}

// expectVersion sends a version request and checks its reply, proving the
// port is still in sync and serving.
func (s *session) expectVersion(id string) {
	s.t.Helper()
	s.sendFrame([]byte(`{"id":"` + id + `","op":"version"}`))
	r := s.next()
	if !*r.OK || string(r.ID) != `"`+id+`"` || r.Version != "9.9.9-test" || r.Protocol != ProtocolVersion {
		s.t.Fatalf("version reply after bad input: %s", r.raw)
	}
}

func header(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

// ephemeralSigner is a loader for tests that do not care about key files.
func ephemeralSigner(t *testing.T) func(string) (*signing.Signer, error) {
	signer, err := signing.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	return func(string) (*signing.Signer, error) { return signer, nil }
}
