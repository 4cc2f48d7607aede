package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"ocisign"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrorsExitTwo(t *testing.T) {
	t.Setenv("OCIBUILD_SIGN_KEY", "")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"sign", "--bogus", "x"}, "flag provided but not defined: -bogus"},
		{"sign without image", []string{"sign", "--key", "k"}, "sign needs exactly one IMAGE"},
		{"sign with two images", []string{"sign", "--key", "k", "a", "b"}, "takes one IMAGE, got 2"},
		{"flag after image", []string{"sign", "a", "--key", "k"}, "flags must come before IMAGE"},
		{"bad output", []string{"sign", "--key", "k", "-o", "yaml", "img"}, "--output must be text or json"},
		{"bad annotation", []string{"sign", "--key", "k", "-a", "novalue", "img"}, `annotation "novalue" is not of the form key=value`},
		{"no key anywhere", []string{"sign", "img"}, "no signing key"},
		{"verify without key", []string{"verify", "img"}, "verify needs --key"},
		{"public-key without key", []string{"public-key"}, "public-key needs --key"},
		{"version with args", []string{"version", "x"}, "version takes no arguments"},
		{"missing config", []string{"sign", "--config", "/nonexistent/ocisign.yaml", "--key", "k", "img"}, "config /nonexistent/ocisign.yaml: no such file or directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tc.args...)
			if code != exitUsage {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr %q does not contain %q", stderr, tc.want)
			}
		})
	}
}

func TestConfigParsing(t *testing.T) {
	dir := t.TempDir()
	good := "sign_key: keys/cosign.key\nannotations:\n  team: erlang\nrecursive: true\ninsecure_registries: [\"reg.internal:5000\"]\ntimeout: 90s\n"
	cfg, err := parseConfig(filepath.Join(dir, "ocisign.yaml"), []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Recursive || cfg.Annotations["team"] != "erlang" || cfg.timeout.Seconds() != 90 || cfg.InsecureRegistries[0] != "reg.internal:5000" {
		t.Fatalf("parsed %+v", cfg)
	}
	t.Setenv("OCIBUILD_SIGN_KEY", "")
	if got, _ := cfg.signKeyPath(""); got != filepath.Join(dir, "keys/cosign.key") {
		t.Fatalf("relative sign_key resolved to %q", got)
	}

	bad := []struct{ yaml, want string }{
		{"sign_kye: x\n", "field sign_kye not found"},
		{"timeout: soon\n", `timeout "soon" is not a positive duration`},
		{"timeout: -5s\n", `timeout "-5s" is not a positive duration`},
		{"recursive: maybe\n", "cannot unmarshal"},
		{"annotations: [a, b]\n", "cannot unmarshal"},
		{"insecure_registries: [\"http://x/y\"]\n", "is not a host[:port]"},
		{"sign_key: [\n", "did not find expected node content"},
	}
	for _, tc := range bad {
		_, err := parseConfig("c.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "c.yaml") {
			t.Errorf("config %q: error %v, want one naming the file and containing %q", tc.yaml, err, tc.want)
		}
	}
	if _, err := parseConfig("empty.yaml", nil); err != nil {
		t.Errorf("an empty config must be accepted: %v", err)
	}
}

func TestSignKeyPrecedence(t *testing.T) {
	cfg := &fileConfig{SignKey: "/from/config.key", dir: "/"}
	t.Setenv("OCIBUILD_SIGN_KEY", "/from/env.key")
	if got, _ := cfg.signKeyPath("/from/flag.key"); got != "/from/flag.key" {
		t.Errorf("flag should win, got %q", got)
	}
	if got, _ := cfg.signKeyPath(""); got != "/from/env.key" {
		t.Errorf("env should beat config, got %q", got)
	}
	t.Setenv("OCIBUILD_SIGN_KEY", "")
	if got, _ := cfg.signKeyPath(""); got != "/from/config.key" {
		t.Errorf("config should be the last resort, got %q", got)
	}
}

func TestAnnotationsOverlayConfig(t *testing.T) {
	got, err := parseAnnotations(map[string]string{"a": "1", "b": "2"}, []string{"b=3", "c=x=y"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "1", "b": "3", "c": "x=y"}
	if len(got) != len(want) {
		t.Fatalf("got %v want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("got %v want %v", got, want)
		}
	}
}

func TestKeyRefusalExitsOneAndNamesFile(t *testing.T) {
	key := filepath.Join("..", "..", "signing", "testdata", "openssl-rsa1024-pkcs8.pem")
	code, stdout, stderr := runCLI(t, "sign", "--key", key, "-o", "json", "127.0.0.1:1/x/y:1")
	if code != exitFailed {
		t.Fatalf("exit %d, want 1; stderr %s", code, stderr)
	}
	if !strings.Contains(stderr, key) || !strings.Contains(stdout, `"code":"unsupported_key"`) {
		t.Fatalf("stderr %q / stdout %q should name the file and the code", stderr, stdout)
	}
	raw, _ := os.ReadFile(key)
	for _, line := range strings.Split(string(raw), "\n") {
		if len(line) > 20 && !strings.HasPrefix(line, "-----") && (strings.Contains(stderr, line) || strings.Contains(stdout, line)) {
			t.Fatalf("key material leaked into the output")
		}
	}
}

func TestGenerateKeyPairThenPublicKey(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	t.Setenv("COSIGN_PASSWORD", "demo-pass")
	if code, _, stderr := runCLI(t, "generate-key-pair", "--output-key-prefix", prefix); code != 0 {
		t.Fatalf("generate-key-pair: exit %d: %s", code, stderr)
	}
	code, _, stderr := runCLI(t, "generate-key-pair", "--output-key-prefix", prefix)
	if code != exitFailed || !strings.Contains(stderr, prefix+".key") {
		t.Fatalf("second generate-key-pair must refuse to overwrite: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := runCLI(t, "public-key", "--key", prefix+".key")
	if code != 0 {
		t.Fatalf("public-key: exit %d: %s", code, stderr)
	}
	pub, err := os.ReadFile(prefix + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(pub) {
		t.Fatalf("public-key printed\n%s\nbut the .pub file holds\n%s", stdout, pub)
	}
	t.Setenv("COSIGN_PASSWORD", "wrong")
	code, _, stderr = runCLI(t, "public-key", "--key", prefix+".key")
	if code != exitFailed || strings.Contains(stderr, "demo-pass") || strings.Contains(stderr, "wrong\n") {
		t.Fatalf("wrong password: exit %d, stderr %q", code, stderr)
	}
}

// TestDemo runs the README's first command in-process: embedded registry,
// recursive signing and verification of a two-platform index.
func TestDemo(t *testing.T) {
	code, stdout, stderr := runCLI(t, "demo")
	if code != 0 {
		t.Fatalf("demo: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if n := strings.Count(stdout, ": 1 valid signature(s)"); n != 3 {
		t.Fatalf("demo should verify the index and 2 platform manifests, saw %d:\n%s", n, stdout)
	}
}
