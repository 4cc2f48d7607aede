package badinput

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ocisign/ocisign/internal/memregistry"
	"github.com/ocisign/ocisign/internal/rekortest"
	"github.com/ocisign/ocisign/signing"
	th "github.com/ocisign/ocisign/test/internal/harness"
)

// Distinct markers: any of them in any output is a leak.
const (
	passwordMarker     = "CosignPw-Marker-7f3a91e2"
	pushPasswordMarker = "PushPw-Marker-c41d0b77"
	pushTokenMarker    = "PushToken-Marker-9be25a13"
	pushUser           = "ocibuild-bot"
	// rekorTokenMarker is the password in the user-info of Rekor URLs.
	rekorTokenMarker = "RekorTok-Marker-5d2e8c40"
)

// authFront requires the push credentials; when deny is set it refuses
// what reads or writes signatures and echoes the Authorization header
// back, as a badly behaved registry might.
func authFront(deny *atomic.Bool) th.Hook {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(pushUser+":"+pushPasswordMarker))
	bearer := "Bearer " + pushTokenMarker
	return func(w http.ResponseWriter, r *http.Request, _ int) bool {
		got := r.Header.Get("Authorization")
		valid := got == basic || got == bearer
		// Denying: the ping and HEAD pass, so the error comes from a
		// request whose 401 has a body (HEAD answers have none).
		passes := !deny.Load() || r.Method == http.MethodHead || r.URL.Path == "/v2/"
		if valid && passes {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="ocisign-secrets-test"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials: %s"}]}`, got)
		return true
	}
}

func TestNoSecretInAnyOutput(t *testing.T) {
	dir := t.TempDir()
	keyPrefix := filepath.Join(dir, "cosign")
	var outputs []string // every stdout, stderr, reply and log
	record := func(r th.Result) th.Result {
		outputs = append(outputs, r.Cmd+"\n"+r.Stdout+"\n"+r.Stderr)
		return r
	}
	baseEnv := []string{"COSIGN_PASSWORD=" + passwordMarker}
	basicEnv := append(baseEnv, "OCIBUILD_PUSH_USERNAME="+pushUser, "OCIBUILD_PUSH_PASSWORD="+pushPasswordMarker)
	tokenEnv := append(baseEnv, "OCIBUILD_PUSH_TOKEN="+pushTokenMarker, "OCIBUILD_PUSH_PASSWORD="+pushPasswordMarker)

	if r := record(ocisign(t, dir, baseEnv, "generate-key-pair", "--output-key-prefix", keyPrefix)); r.Code != 0 {
		t.Fatalf("generate-key-pair:\n%s", r)
	}
	keyFile, pubFile := keyPrefix+".key", keyPrefix+".pub"
	secrets := keyMaterial(t, keyFile)
	secrets = append(secrets, passwordMarker, pushPasswordMarker, pushTokenMarker,
		base64.StdEncoding.EncodeToString([]byte(pushUser+":"+pushPasswordMarker)))

	proxy, err := th.StartProxy(env.Reg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	var deny atomic.Bool
	proxy.SetHook(authFront(&deny))
	digest, err := memregistry.PushImage(env.Reg.Addr + "/secrets/app:1")
	if err != nil {
		t.Fatal(err)
	}
	ref := proxy.Addr + "/secrets/app@" + digest

	expect := func(r th.Result, code int) {
		t.Helper()
		record(r)
		if r.Code != code {
			t.Fatalf("want exit %d:\n%s", code, r)
		}
	}
	// CLI, successes and failures.
	expect(ocisign(t, dir, baseEnv, "public-key", "--key", keyFile), 0)
	expect(ocisign(t, dir, basicEnv, "sign", "--key", keyFile, ref), 0)
	expect(ocisign(t, dir, tokenEnv, "sign", "--key", keyFile, "-a", "via=token", "--output", "json", ref), 0)
	expect(ocisign(t, dir, basicEnv, "verify", "--key", pubFile, "--output", "json", ref), 0)
	expect(ocisign(t, dir, baseEnv, "sign", "--key", keyFile, ref), 1) // no credentials: 401
	expect(ocisign(t, dir, []string{"COSIGN_PASSWORD=" + passwordMarker + "x"}, "sign", "--key", keyFile, ref), 1)
	expect(ocisign(t, dir, []string{"COSIGN_PASSWORD=" + passwordMarker + "x"}, "public-key", "--key", keyFile), 1)
	deny.Store(true)
	expect(ocisign(t, dir, basicEnv, "sign", "--key", keyFile, "--output", "json", ref), 1)
	expect(ocisign(t, dir, tokenEnv, "sign", "--key", keyFile, "--output", "json", ref), 1)
	expect(ocisign(t, dir, basicEnv, "verify", "--key", pubFile, ref), 1)
	deny.Store(false)

	// The port, successes and failures, in one process.
	portEnv := th.IsolatedEnv(env.Home, env.TUF, basicEnv...)
	p, err := th.StartPort(env.Ocisign, portEnv)
	if err != nil {
		t.Fatal(err)
	}
	call := func(req map[string]any, ok bool) {
		t.Helper()
		r, err := p.Call(req)
		if err != nil {
			t.Fatalf("port: %v\n%s", err, p.Stderr)
		}
		outputs = append(outputs, string(r.Raw))
		if r.OK != ok {
			t.Fatalf("reply ok=%v, want %v: %s", r.OK, ok, r.Raw)
		}
	}
	call(map[string]any{"id": 1, "op": "public_key", "sign_key": keyFile}, true)
	call(map[string]any{"id": 2, "op": "sign", "reference": ref, "sign_key": keyFile, "annotations": map[string]string{"via": "port"}}, true)
	call(map[string]any{"id": 3, "op": "verify", "reference": ref, "public_key": pubFile}, true)
	call(map[string]any{"id": 4, "op": "sign", "reference": ref, "sign_key": filepath.Join(dir, "missing.key")}, false)
	deny.Store(true)
	call(map[string]any{"id": 5, "op": "sign", "reference": ref, "sign_key": keyFile, "annotations": map[string]string{"via": "denied"}}, false)
	call(map[string]any{"id": 6, "op": "verify", "reference": ref, "public_key": pubFile}, false)
	deny.Store(false)
	if err := p.Close(); err != nil {
		t.Errorf("port exit: %v", err)
	}
	outputs = append(outputs, "port log\n"+p.Stderr.String())
	// A port whose key does not decrypt.
	p2, err := th.StartPort(env.Ocisign, th.IsolatedEnv(env.Home, env.TUF, "COSIGN_PASSWORD=wrong-"+passwordMarker))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p2.Call(map[string]any{"id": 1, "op": "sign", "reference": ref, "sign_key": keyFile})
	if err != nil || r.OK || r.Error == nil || r.Error.Code != "wrong_password" {
		t.Fatalf("sign with the wrong password: %v %s", err, r.Raw)
	}
	outputs = append(outputs, string(r.Raw))
	p2.Close()
	outputs = append(outputs, "port log\n"+p2.Stderr.String())

	regLog, err := os.ReadFile(env.Reg.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, "registry log\n"+string(regLog))

	if len(outputs) < 20 {
		t.Fatalf("only %d outputs captured", len(outputs))
	}
	for _, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("secret %q leaked into:\n%s", clip(s), clip(out))
			}
		}
	}
	// The check can fail: the echoed header really reached the client.
	if !strings.Contains(strings.Join(outputs, "\n"), "[REDACTED]") {
		t.Error("no redaction seen: the echoing registry was not exercised")
	}
}

// rekorStandIn is a stand-in Rekor v1 log (real SETs by its own key) that
// also counts the requests that carried the Basic credentials of the URL
// they were sent to.
type rekorStandIn struct {
	*rekortest.Log
	withAuth atomic.Int32
}

func newRekorStandIn(t *testing.T, wantAuth string) *rekorStandIn {
	t.Helper()
	f := &rekorStandIn{}
	f.Log = rekortest.Start(t, rekortest.Options{Observe: func(r *http.Request) {
		if r.Header.Get("Authorization") == wantAuth {
			f.withAuth.Add(1)
		}
	}})
	return f
}

// A Rekor URL's user-info (https://user:token@host/) is a credential: it
// must not show up in stdout, stderr, replies or the port log, whether the
// URL is refused, the log is down or the upload succeeds. The command lines
// themselves hold the marker, so only what ocisign printed is checked.
func TestNoRekorURLCredentialsInAnyOutput(t *testing.T) {
	dir := t.TempDir()
	keyPrefix := filepath.Join(dir, "cosign")
	baseEnv := []string{"COSIGN_PASSWORD=" + passwordMarker}
	if r := ocisign(t, dir, baseEnv, "generate-key-pair", "--output-key-prefix", keyPrefix); r.Code != 0 {
		t.Fatalf("generate-key-pair:\n%s", r)
	}
	keyFile, pubFile := keyPrefix+".key", keyPrefix+".pub"
	digest, err := memregistry.PushImage(env.Reg.Addr + "/secrets/rekor:1")
	if err != nil {
		t.Fatal(err)
	}
	ref := env.Reg.Addr + "/secrets/rekor@" + digest

	userinfo := "alice:" + rekorTokenMarker
	rekor := newRekorStandIn(t, "Basic "+base64.StdEncoding.EncodeToString([]byte(userinfo)))
	withCreds := func(u string) string { return strings.Replace(u, "://", "://"+userinfo+"@", 1) }
	logURL := withCreds(rekor.Srv.URL)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := withCreds("http://" + l.Addr().String())
	l.Close()
	badURL := withCreds("https://rekor.example/?q=1")
	unparsableURL := "https://alice:" + rekorTokenMarker + " x@rekor.example/"
	// A password with an unencoded "/": Go reads the user as the host.
	slashURL := "http://" + rekorTokenMarker + ":123/" + rekorTokenMarker + "@127.0.0.1:2"
	writeConfig := func(name, rekorURL string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("rekor_url: \""+rekorURL+"\"\nrekor_public_key: "+rekor.KeyFile+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodConfig := writeConfig("good.yml", logURL)
	badConfig := writeConfig("bad.yml", withCreds("ftp://rekor.example/"))

	var outputs []string
	expect := func(r th.Result, code int) {
		t.Helper()
		outputs = append(outputs, r.Stdout+"\n"+r.Stderr)
		if r.Code != code {
			t.Fatalf("want exit %d:\n%s", code, r)
		}
	}
	// CLI: successes (the stand-in log records the entries) and failures.
	expect(ocisign(t, dir, baseEnv, "sign", "--key", keyFile, "--rekor-url", logURL, "--output", "json", ref), 0)
	expect(ocisign(t, dir, baseEnv, "verify", "--key", pubFile, "--require-tlog", "--rekor-url", logURL, ref), 0)
	expect(ocisign(t, dir, baseEnv, "--config", goodConfig, "sign", "--key", keyFile, "-a", "via=config", ref), 0)
	expect(ocisign(t, dir, append(baseEnv, "OCISIGN_REKOR_URL="+logURL), "verify", "--key", pubFile, "--require-tlog", "-o", "json", ref), 0)
	expect(ocisign(t, dir, baseEnv, "sign", "--key", keyFile, "--rekor-url", badURL, ref), 2)
	expect(ocisign(t, dir, baseEnv, "sign", "--key", keyFile, "--rekor-url", unparsableURL, "-o", "json", ref), 2)
	expect(ocisign(t, dir, append(baseEnv, "OCISIGN_REKOR_URL="+unparsableURL), "verify", "--key", pubFile, ref), 2)
	expect(ocisign(t, dir, baseEnv, "--config", badConfig, "sign", "--key", keyFile, ref), 2)
	expect(ocisign(t, dir, baseEnv, "sign", "--key", keyFile, "--rekor-url", slashURL, ref), 2)
	expect(ocisign(t, dir, baseEnv, "verify", "--key", pubFile, "--rekor-url", slashURL, ref), 2)
	expect(ocisign(t, dir, baseEnv, "port", "--config", badConfig), 2)
	expect(ocisign(t, dir, baseEnv, "sign", "--key", keyFile, "-a", "n=down", "--rekor-url", deadURL, "--rekor-public-key", rekor.KeyFile, "-o", "json", ref), 1)
	expect(ocisign(t, dir, baseEnv, "verify", "--key", pubFile, "--require-tlog", "--rekor-url", deadURL, ref), 1)
	expect(ocisign(t, dir, baseEnv, "verify", "--key", pubFile, "--rekor-url", deadURL, ref), 0) // warns: bundles unchecked

	// The port, with the config's log as its default, then per request.
	p, err := th.StartPort(env.Ocisign, th.IsolatedEnv(env.Home, env.TUF, baseEnv...), "--config", goodConfig)
	if err != nil {
		t.Fatal(err)
	}
	call := func(req map[string]any, ok bool) {
		t.Helper()
		r, err := p.Call(req)
		if err != nil {
			t.Fatalf("port: %v\n%s", err, p.Stderr)
		}
		outputs = append(outputs, string(r.Raw))
		if r.OK != ok {
			t.Fatalf("reply ok=%v, want %v: %s", r.OK, ok, r.Raw)
		}
	}
	call(map[string]any{"id": 1, "op": "sign", "reference": ref, "sign_key": keyFile, "annotations": map[string]string{"via": "port-config"}}, true)
	call(map[string]any{"id": 2, "op": "sign", "reference": ref, "sign_key": keyFile, "rekor_url": logURL, "annotations": map[string]string{"via": "port"}}, true)
	call(map[string]any{"id": 3, "op": "verify", "reference": ref, "public_key": pubFile, "require_tlog": true, "rekor_url": logURL}, true)
	call(map[string]any{"id": 4, "op": "sign", "reference": ref, "sign_key": keyFile, "rekor_url": badURL}, false)
	call(map[string]any{"id": 5, "op": "verify", "reference": ref, "public_key": pubFile, "rekor_url": unparsableURL}, false)
	call(map[string]any{"id": 7, "op": "verify", "reference": ref, "public_key": pubFile, "rekor_url": slashURL}, false)
	call(map[string]any{"id": 6, "op": "sign", "reference": ref, "sign_key": keyFile, "rekor_url": deadURL, "annotations": map[string]string{"n": "down"}}, false)
	if err := p.Close(); err != nil {
		t.Errorf("port exit: %v", err)
	}
	outputs = append(outputs, "port log\n"+p.Stderr.String())

	for _, out := range outputs {
		if strings.Contains(out, rekorTokenMarker) {
			t.Errorf("Rekor URL credentials leaked into:\n%s", clip(out))
		}
	}
	// The check can fail: the credentials really were in play, and the
	// messages do name the logs.
	all := strings.Join(outputs, "\n")
	if n := rekor.Posts.Load(); n != 4 {
		t.Errorf("the log recorded %d entries, want 4 (two CLI signs, two port signs)", n)
	}
	if rekor.withAuth.Load() == 0 {
		t.Error("no request reached the log with the URL's credentials")
	}
	for _, want := range []string{"https://rekor.example/?q=1", "[REDACTED]@rekor.example", rekor.Srv.URL, "ftp://rekor.example/"} {
		if !strings.Contains(all, want) {
			t.Errorf("no output names %q", want)
		}
	}
}

// keyMaterial is every base64 line of the key file, the private key as
// PKCS#8 base64 and its scalar in hex.
func keyMaterial(t *testing.T, keyFile string) []string {
	t.Helper()
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if l := strings.TrimSpace(string(line)); l != "" && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	signer, err := signing.LoadPrivateKey(keyFile, func() ([]byte, error) { return []byte(passwordMarker), nil })
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(signer.PrivateKey())
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, base64.StdEncoding.EncodeToString(der)[:40], hex.EncodeToString(der)[:40])
	if k, ok := signer.PrivateKey().(*ecdsa.PrivateKey); ok {
		b, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, hex.EncodeToString(b), base64.StdEncoding.EncodeToString(b))
	}
	return out
}

func clip(s string) string {
	if len(s) > 3000 {
		return s[:3000] + "…"
	}
	return s
}
