package keyless

import (
	"strings"
	"testing"

	th "github.com/ocisign/ocisign/test/internal/harness"
	"github.com/ocisign/ocisign/test/internal/oidctest"
)

// The port signs and verifies keylessly with the same fields as the CLI's
// flags; the identity token travels in a request and is never echoed.
func TestPortKeyless(t *testing.T) {
	p, err := th.StartPort(env.pkg.Ocisign, th.IsolatedEnv(env.pkg.Home, env.pkg.TUF))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	image := pushImage(t)
	token := env.issuer.Token(oidctest.EmailClaims())
	// identity: the pre-push check the rebar3 plugin makes (no Fulcio call).
	r, err := p.Call(map[string]any{"id": 0, "op": "identity"})
	if err != nil || r.OK || r.Error == nil || r.Error.Code != "identity_error" || !strings.Contains(r.Error.Message, "no identity token") {
		t.Fatalf("identity without a token: %v %s", err, r.Raw)
	}
	r, err = p.Call(map[string]any{"id": 0, "op": "identity", "identity_token": token, "fulcio_url": env.fulcio.URL, "fulcio_root": env.fulcio.RootFile})
	if err != nil || !r.OK || !strings.Contains(string(r.Raw), `"subject":"`+oidctest.Email+`"`) || strings.Contains(string(r.Raw), token) {
		t.Fatalf("identity with a token: %v %s", err, r.Raw)
	}
	sign := map[string]any{"id": 1, "op": "sign", "reference": image, "keyless": true, "identity_token": token,
		"fulcio_url": env.fulcio.URL, "fulcio_root": env.fulcio.RootFile, "insecure_ignore_sct": true,
		"rekor_url": env.rekor.URL, "rekor_public_key": env.rekor.PublicKeyFile}
	r, err = p.Call(sign)
	if err != nil || !r.OK || !strings.Contains(string(r.Raw), `"identities":["`+oidctest.Email+`"]`) {
		t.Fatalf("keyless sign: %v %s\n%s", err, r.Raw, p.Stderr)
	}
	verify := func(id int, identity string) *th.Reply {
		t.Helper()
		r, err := p.Call(map[string]any{"id": id, "op": "verify", "reference": image,
			"certificate_identity": identity, "certificate_oidc_issuer": env.issuer.URL,
			"fulcio_root": env.fulcio.RootFile, "rekor_public_key": env.rekor.PublicKeyFile})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := verify(2, oidctest.Email); !r.OK {
		t.Fatalf("keyless verify: %s", r.Raw)
	}
	if r := verify(3, "someone-else@ocisign.test"); r.OK || r.Error == nil || r.Error.Code != "verification_failed" {
		t.Fatalf("verify as someone else: %s", r.Raw)
	}
	expired := oidctest.EmailClaims()
	expired["exp"] = 1
	sign["id"], sign["identity_token"] = 4, env.issuer.Token(expired)
	r, err = p.Call(sign)
	if err != nil || r.OK || r.Error == nil || r.Error.Code != "identity_error" {
		t.Fatalf("expired token: %v %s", err, r.Raw)
	}
	for _, secret := range []string{token, sign["identity_token"].(string)} {
		if strings.Contains(string(r.Raw), secret) || strings.Contains(p.Stderr.String(), secret) {
			t.Fatalf("the port echoed an identity token:\n%s\n%s", r.Raw, p.Stderr)
		}
	}
}
