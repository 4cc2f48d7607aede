package badinput

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocisign/ocisign/internal/memregistry"
	th "github.com/ocisign/ocisign/test/internal/harness"
)

// A docker credential helper is a child process of ocisign: it must not
// inherit COSIGN_PASSWORD, neither from `ocisign sign` nor from the port
// (which keeps running while other programs' helpers come and go).
func TestCredentialHelpersDoNotSeeTheKeyPassword(t *testing.T) {
	dir := t.TempDir()
	extra := []string{"COSIGN_PASSWORD=" + passwordMarker}
	if r := ocisign(t, dir, extra, "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "k")); r.Code != 0 {
		t.Fatalf("generate-key-pair:\n%s", r)
	}
	bin := filepath.Join(dir, "bin")
	dump := filepath.Join(dir, "helper-env")
	helper := "#!/bin/sh\nenv >> " + dump + "\necho 'credentials not found in native keychain'\nexit 1\n"
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-ocisigntest"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	dockerConfig := filepath.Join(dir, "docker")
	if err := os.MkdirAll(dockerConfig, 0o700); err != nil {
		t.Fatal(err)
	}
	config := `{"credHelpers": {"` + env.Reg.Addr + `": "ocisigntest"}}`
	if err := os.WriteFile(filepath.Join(dockerConfig, "config.json"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	digest, err := memregistry.PushImage(env.Reg.Addr + "/helper/app:1")
	if err != nil {
		t.Fatal(err)
	}
	ref := env.Reg.Addr + "/helper/app@" + digest
	extra = append(extra, "PATH="+bin+":"+os.Getenv("PATH"), "DOCKER_CONFIG="+dockerConfig)

	if r := ocisign(t, dir, extra, "sign", "--key", filepath.Join(dir, "k.key"), ref); r.Code != 0 {
		t.Fatalf("sign:\n%s", r)
	}
	p, err := th.StartPort(env.Ocisign, th.IsolatedEnv(env.Home, env.TUF, extra...))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Call(map[string]any{"id": 1, "op": "sign", "reference": env.Reg.Addr + "/helper/other:1", "sign_key": filepath.Join(dir, "k.key")})
	if err != nil {
		t.Fatal(err)
	}
	_ = r // the image does not exist; the helper ran while resolving it
	if err := p.Close(); err != nil {
		t.Errorf("port exit: %v", err)
	}

	got, err := os.ReadFile(dump)
	if err != nil {
		t.Fatalf("the credential helper never ran (so this test proves nothing): %v", err)
	}
	if n := strings.Count(string(got), "PATH="); n < 2 {
		t.Fatalf("the helper ran %d time(s), want one for the CLI and one for the port", n)
	}
	if strings.Contains(string(got), passwordMarker) || strings.Contains(string(got), "COSIGN_PASSWORD") {
		t.Fatalf("a credential helper inherited COSIGN_PASSWORD:\n%s", got)
	}
}
