package port

import (
	"context"
	"reflect"
	"testing"

	"github.com/ocisign/ocisign/internal/errcode"
	"github.com/ocisign/ocisign/internal/settings"
	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/signing"
)

// The port applies the config file's annotations and recursive exactly as
// the CLI does (both through internal/settings): it used to ignore them.
// The request's own just_pushed reaches the registry too.
func TestConfigDefaultsApplyToPortRequests(t *testing.T) {
	var got registry.SignRequest
	cfg := testConfig(nil)
	cfg.Defaults = settings.Values{Annotations: map[string]string{"team": "erlang", "env": "cfg"}, Recursive: true}
	cfg.LoadPrivateKey = func(string) (*signing.Signer, error) { return signing.GenerateSigner() }
	cfg.NewBackend = func(registry.Options) Backend {
		return &funcBackend{sign: func(ctx context.Context, req registry.SignRequest) (*registry.SignResult, error) {
			got = req
			return &registry.SignResult{Signed: []registry.SignedEntry{{Digest: digestA}}}, nil
		}}
	}
	s := startSession(t, cfg)
	s.sendFrame([]byte(`{"id":1,"op":"sign","reference":"r/x","sign_key":"k","annotations":{"env":"req"},"just_pushed":true}`))
	if r := s.next(); !*r.OK {
		t.Fatalf("reply %s", r.raw)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	want := settings.Resolve(settings.Values{SignKey: "k", Annotations: map[string]string{"env": "req"}},
		func(string) string { return "" }, cfg.Defaults, settings.Sign)
	if !got.Recursive || !got.JustPushed || !reflect.DeepEqual(got.Annotations, want.Annotations) ||
		!reflect.DeepEqual(got.Annotations, map[string]string{"team": "erlang", "env": "req"}) {
		t.Fatalf("sign request %+v, want annotations %v, recursive and just pushed", got, want.Annotations)
	}
}

// connect: ok when the backend connects, the backend's error otherwise.
func TestConnectOp(t *testing.T) {
	var refs []string
	cfg := testConfig(nil)
	cfg.NewBackend = func(registry.Options) Backend {
		return &funcBackend{connect: func(_ context.Context, ref string) error {
			refs = append(refs, ref)
			if ref == "bad/x" {
				return &errcode.Error{Op: "resolve", Ref: ref, Code: errcode.CodeUnauthorized}
			}
			return nil
		}}
	}
	s := startSession(t, cfg)
	s.sendFrame([]byte(`{"id":1,"op":"connect","reference":"r/x"}`))
	if r := s.next(); string(r.raw) != `{"id":1,"ok":true}` {
		t.Fatalf("got %s", r.raw)
	}
	s.sendFrame([]byte(`{"id":2,"op":"connect","reference":"bad/x"}`))
	if r := s.next(); *r.OK || r.Error.Code != "unauthorized" {
		t.Fatalf("got %s", r.raw)
	}
	s.sendFrame([]byte(`{"id":3,"op":"connect"}`))
	if r := s.next(); *r.OK || r.Error.Code != "invalid_request" {
		t.Fatalf("got %s", r.raw)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 {
		t.Fatalf("backend saw %v", refs)
	}
}
