package port

import (
	"context"
	"reflect"
	"testing"

	"github.com/ocisign/ocisign/internal/settings"
	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/signing"
)

// The port applies the config file's annotations and recursive exactly as
// the CLI does (both through internal/settings): it used to ignore them.
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
	s.sendFrame([]byte(`{"id":1,"op":"sign","reference":"r/x","sign_key":"k","annotations":{"env":"req"}}`))
	if r := s.next(); !*r.OK {
		t.Fatalf("reply %s", r.raw)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	want := settings.Resolve(settings.Values{SignKey: "k", Annotations: map[string]string{"env": "req"}},
		func(string) string { return "" }, cfg.Defaults, settings.Sign)
	if !got.Recursive || !reflect.DeepEqual(got.Annotations, want.Annotations) ||
		!reflect.DeepEqual(got.Annotations, map[string]string{"team": "erlang", "env": "req"}) {
		t.Fatalf("sign request %+v, want annotations %v and recursive", got, want.Annotations)
	}
}
