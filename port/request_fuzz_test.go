package port

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ocisign/ocisign/internal/errcode"

	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/signing"
)

var requestSeeds = []string{
	`{"id":1,"op":"version"}`,
	`{"id":"a","op":"sign","reference":"localhost:5000/app:1","digest":"` + digestA + `","sign_key":"k","annotations":{"a":"b"},"recursive":true,"allow_insecure_registry":false,"timeout_ms":1000}`,
	`{"id":2,"op":"verify","reference":"r/x","public_key":"p.pub","digest":null,"annotations":null,"timeout_ms":null}`,
	`{"id":3,"op":"public_key","sign_key":"k"}`,
	`{"id":1,"id":2,"op":"version"}`,
	`{"id":1.5e3,"op":"sign","reference":"","timeout_ms":-1}`,
	`{"id":[1],"op":"version"}`,
	`{"id":1,"op":"sign","reference":"x","annotations":{"":"v","k":1}}`,
	`[{"id":1}]`, `"str"`, `null`, `{"id":1,"op":"version"} x`, "{\"id\":\"\xff\"}",
}

// FuzzParseRequest: every frame is either a valid request or a refusal with
// a known code; an id that is echoed is a JSON number or string taken from
// the frame; a valid request satisfies the schema.
func FuzzParseRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	codes := map[string]bool{CodeInvalidJSON: true, CodeInvalidRequest: true, CodeUnknownOp: true}
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, perr := parseRequest(frame, time.Hour)
		if (req == nil) == (perr == nil) {
			t.Fatalf("want exactly one of request and error, got %+v and %v", req, perr)
		}
		if perr != nil {
			if !codes[perr.code] || perr.message == "" {
				t.Fatalf("refusal with code %q message %q", perr.code, perr.message)
			}
			if perr.id != nil {
				checkID(t, perr.id, frame)
			}
			return
		}
		checkID(t, req.id, frame)
		if _, ok := opFields[req.op]; !ok {
			t.Fatalf("accepted unknown op %q", req.op)
		}
		if (req.op == "sign" || req.op == "verify") && req.reference == "" {
			t.Fatal("accepted a sign/verify without reference")
		}
		if req.op == "verify" && req.publicKey == "" {
			t.Fatal("accepted a verify without public_key")
		}
		if req.digest != "" && !digestPattern.MatchString(req.digest) {
			t.Fatalf("accepted digest %q", req.digest)
		}
		if req.timeout < 0 || req.timeout > time.Hour {
			t.Fatalf("accepted timeout %s", req.timeout)
		}
		for k := range req.annotations {
			if k == "" {
				t.Fatal("accepted an empty annotation key")
			}
		}
	})
}

func checkID(t *testing.T, id json.RawMessage, frame []byte) {
	t.Helper()
	if k := jsonKind(id); k != "number" && k != "string" {
		t.Fatalf("id %s is a %s", id, k)
	}
	if !json.Valid(id) || !bytes.Contains(frame, bytes.TrimSpace(id)) {
		t.Fatalf("id %s is not taken byte for byte from the frame", id)
	}
}

// refusingBackend fails every call; the fuzzer checks the protocol, not signing.
type refusingBackend struct{}

func (refusingBackend) Sign(context.Context, registry.SignRequest) (*registry.SignResult, error) {
	return nil, &errcode.Error{Op: "sign", Code: errcode.CodeUnavailable, Err: errors.New("fuzz backend")}
}

func (refusingBackend) Verify(context.Context, registry.VerifyRequest) (*registry.VerifyResult, error) {
	return nil, &errcode.Error{Op: "verify", Code: errcode.CodeUnavailable, Err: errors.New("fuzz backend")}
}

func (refusingBackend) Connect(context.Context, string) error {
	return &errcode.Error{Op: "connect", Code: errcode.CodeUnavailable, Err: errors.New("fuzz backend")}
}

// FuzzServe: whatever bytes arrive on stdin, Serve returns, and every reply
// is one JSON object with id and ok (and an error code when ok is false).
func FuzzServe(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add(appendFrame(nil, []byte(s)))
	}
	f.Add(append(appendFrame(nil, []byte(requestSeeds[0])), 0, 0, 0, 9, '{'))
	f.Add(append([]byte{0, 0, 1, 0}, appendFrame(nil, []byte(requestSeeds[3]))...))
	f.Fuzz(func(t *testing.T, input []byte) {
		var out bytes.Buffer
		cfg := Config{
			MaxFrameBytes: 256,
			Version:       "fuzz",
			Getenv:        func(string) string { return "" },
			NewBackend:    func(registry.Options) Backend { return refusingBackend{} },
			LoadPrivateKey: func(path string) (*signing.Signer, error) {
				return nil, signing.ErrKeyNotFound
			},
			LoadPublicKey: func(path string) (*signing.Verifier, error) {
				return nil, signing.ErrKeyNotFound
			},
			ShutdownGrace: 5 * time.Second,
		}
		err := Serve(context.Background(), bytes.NewReader(input), &out, cfg)
		if err != nil && !errors.Is(err, ErrTruncatedFrame) {
			t.Fatalf("Serve: %v", err)
		}
		r := newFrameReader(&out, 1<<30)
		for {
			frame, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("reply stream: %v", err)
			}
			var reply struct {
				ID    json.RawMessage `json:"id"`
				OK    *bool           `json:"ok"`
				Error *struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(frame, &reply); err != nil || reply.OK == nil || reply.ID == nil {
				t.Fatalf("bad reply %q: %v", frame, err)
			}
			if !*reply.OK && (reply.Error == nil || reply.Error.Code == "") {
				t.Fatalf("failure without an error code: %q", frame)
			}
		}
	})
}
