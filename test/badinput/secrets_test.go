package badinput

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ocisign/ocisign/signing"
	th "github.com/ocisign/ocisign/test/internal/harness"
)

// Distinct markers: any of them in any output is a leak.
const (
	passwordMarker     = "CosignPw-Marker-7f3a91e2"
	pushPasswordMarker = "PushPw-Marker-c41d0b77"
	pushTokenMarker    = "PushToken-Marker-9be25a13"
	pushUser           = "ocibuild-bot"
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

	proxy, err := th.StartProxy(env.reg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	var deny atomic.Bool
	proxy.SetHook(authFront(&deny))
	digest, err := th.PushImage(env.reg.Addr + "/secrets/app:1")
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
	portEnv := th.IsolatedEnv(env.home, env.tuf, basicEnv...)
	p, err := th.StartPort(env.ocisign, portEnv)
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
	p2, err := th.StartPort(env.ocisign, th.IsolatedEnv(env.home, env.tuf, "COSIGN_PASSWORD=wrong-"+passwordMarker))
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

	regLog, err := os.ReadFile(env.reg.LogPath)
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
