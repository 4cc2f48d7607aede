package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocisign/ocisign/internal/memregistry/memtest"
	"github.com/ocisign/ocisign/internal/rekortest"
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
		{"keyless and a key", []string{"sign", "--keyless", "--key", "k", "img"}, "--keyless and --key exclude each other"},
		{"verify with a key and an identity", []string{"verify", "--key", "k", "--certificate-identity", "a@b", "img"}, "exclude each other"},
		{"keyless verify without issuer", []string{"verify", "--certificate-identity", "a@b", "img"}, "needs --certificate-oidc-issuer"},
		{"verify without key", []string{"verify", "img"}, "verify needs --key"},
		{"public-key without key", []string{"public-key"}, "public-key needs --key"},
		{"version with args", []string{"version", "x"}, "version takes no arguments"},
		{"missing config", []string{"sign", "--config", "/nonexistent/ocisign.yaml", "--key", "k", "img"}, "config /nonexistent/ocisign.yaml: no such file or directory"},
		{"config before the command", []string{"--config", "/nonexistent/global.yaml", "sign", "--key", "k", "img"}, "config /nonexistent/global.yaml: no such file or directory"},
		{"config before verify", []string{"--config", "/nonexistent/global.yaml", "verify", "--key", "k", "img"}, "config /nonexistent/global.yaml: no such file or directory"},
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
	if got := cfg.values().SignKey; got != filepath.Join(dir, "keys/cosign.key") {
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

func TestAnnotationFlags(t *testing.T) {
	got, err := parseAnnotations([]string{"b=3", "c=x=y"})
	if err != nil || len(got) != 2 || got["b"] != "3" || got["c"] != "x=y" {
		t.Fatalf("got %v %v", got, err)
	}
	if _, err := parseAnnotations([]string{"novalue"}); err == nil {
		t.Fatal("an annotation without = must be refused")
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

// newFakeRekor starts a stand-in Rekor v1 log with real SETs; its entries
// carry a fixed integratedTime (the real log is in test/rekor).
func newFakeRekor(t *testing.T) *rekortest.Log {
	return rekortest.Start(t, rekortest.Options{IntegratedTime: 1700000000})
}

func pushTestImage(t *testing.T) (host, image string) {
	t.Helper()
	host = memtest.Start(t, nil)
	return host, host + "/app@" + memtest.PushImage(t, host+"/app:v1")
}

func testKeyPair(t *testing.T) (keyPath, pubPath string) {
	t.Helper()
	t.Setenv("COSIGN_PASSWORD", "cli-tlog-test")
	prefix := filepath.Join(t.TempDir(), "cosign")
	if code, _, stderr := runCLI(t, "generate-key-pair", "--output-key-prefix", prefix); code != 0 {
		t.Fatalf("generate-key-pair: %s", stderr)
	}
	return prefix + ".key", prefix + ".pub"
}

type signJSON struct {
	Signed []struct {
		Deduplicated bool   `json:"deduplicated"`
		LogIndex     *int64 `json:"log_index"`
		LogUUID      string `json:"log_uuid"`
	} `json:"signed"`
}

func TestSignAndVerifyWithTransparencyLog(t *testing.T) {
	t.Setenv("OCISIGN_REKOR_URL", "")
	t.Setenv("SIGSTORE_REKOR_PUBLIC_KEY", "")
	t.Setenv("OCIBUILD_SIGN_KEY", "")
	rekor := newFakeRekor(t)
	_, image := pushTestImage(t)
	key, pub := testKeyPair(t)
	signWith := func(args ...string) signJSON {
		t.Helper()
		code, stdout, stderr := runCLI(t, append(append([]string{"sign", "--key", key, "-o", "json"}, args...), image)...)
		if code != 0 {
			t.Fatalf("sign %v: exit %d: %s", args, code, stderr)
		}
		var res signJSON
		if err := json.Unmarshal([]byte(stdout), &res); err != nil || len(res.Signed) != 1 {
			t.Fatalf("sign output %q: %v", stdout, err)
		}
		return res
	}

	// No log asked for: nothing is posted.
	if res := signWith(); res.Signed[0].LogIndex != nil || rekor.Posts.Load() != 0 {
		t.Fatalf("a plain sign used the log: %+v, %d posts", res, rekor.Posts.Load())
	}
	// --require-tlog rejects the plain signature.
	code, stdout, stderr := runCLI(t, "verify", "--key", pub, "--require-tlog", "--rekor-public-key", rekor.KeyFile, image)
	if code != exitFailed || !strings.Contains(stdout, "no transparency log bundle") {
		t.Fatalf("require-tlog on a plain signature: exit %d\n%s\n%s", code, stdout, stderr)
	}

	res := signWith("--rekor-url", rekor.Srv.URL, "--rekor-public-key", rekor.KeyFile)
	if res.Signed[0].Deduplicated || res.Signed[0].LogIndex == nil || len(res.Signed[0].LogUUID) != 64 || rekor.Posts.Load() != 1 {
		t.Fatalf("log-backed sign: %+v, %d posts", res, rekor.Posts.Load())
	}
	// Re-sign via the environment: deduplicated, nothing posted.
	t.Setenv("OCISIGN_REKOR_URL", rekor.Srv.URL)
	t.Setenv("SIGSTORE_REKOR_PUBLIC_KEY", rekor.KeyFile)
	again := signWith()
	if !again.Signed[0].Deduplicated || rekor.Posts.Load() != 1 || again.Signed[0].LogUUID != res.Signed[0].LogUUID {
		t.Fatalf("re-sign: %+v, %d posts", again, rekor.Posts.Load())
	}
	// --tlog-upload=false turns the environment's log off.
	if off := signWith("--tlog-upload=false", "-a", "n=1"); off.Signed[0].LogIndex != nil || rekor.Posts.Load() != 1 {
		t.Fatalf("--tlog-upload=false still used the log: %+v", off)
	}
	t.Setenv("OCISIGN_REKOR_URL", "")
	t.Setenv("SIGSTORE_REKOR_PUBLIC_KEY", "")

	// verify with the pinned key, then with the key fetched from --rekor-url.
	for _, args := range [][]string{{"--rekor-public-key", rekor.KeyFile}, {"--rekor-url", rekor.Srv.URL}} {
		code, stdout, stderr = runCLI(t, append(append([]string{"verify", "--key", pub, "--require-tlog", "-o", "json"}, args...), image)...)
		if code != 0 || !strings.Contains(stdout, `"log_uuid":"`+res.Signed[0].LogUUID+`"`) {
			t.Fatalf("verify %v: exit %d\n%s\n%s", args, code, stdout, stderr)
		}
	}
	// Text output names the entry too.
	code, stdout, _ = runCLI(t, "verify", "--key", pub, "--rekor-public-key", rekor.KeyFile, image)
	if code != 0 || !strings.Contains(stdout, "transparency log index") {
		t.Fatalf("verify text: exit %d\n%s", code, stdout)
	}

	// Config file: rekor_url and rekor_public_key (relative to the file).
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rekor.pub"), mustRead(t, rekor.KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "ocisign.yaml")
	if err := os.WriteFile(cfgPath, []byte("rekor_url: "+rekor.Srv.URL+"\nrekor_public_key: rekor.pub\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c := signWith("--config", cfgPath, "-a", "via=config"); c.Signed[0].LogIndex == nil || rekor.Posts.Load() != 2 {
		t.Fatalf("config rekor_url: %+v, %d posts", c, rekor.Posts.Load())
	}
	if code, _, stderr = runCLI(t, "verify", "--config", cfgPath, "--key", pub, "--require-tlog", "-a", "via=config", image); code != 0 {
		t.Fatalf("verify with the config's log key: %s", stderr)
	}

	// The log failing: a clear tlog_error, exit 1, the .sig unchanged.
	rekor.Srv.Close()
	code, stdout, stderr = runCLI(t, "sign", "--key", key, "-o", "json", "-a", "n=down", "--rekor-url", rekor.Srv.URL,
		"--rekor-public-key", rekor.KeyFile, image)
	if code != exitFailed || !strings.Contains(stdout, `"code":"tlog_error"`) || !strings.Contains(stderr, "unreachable") {
		t.Fatalf("sign with the log down: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, "verify", "--key", pub, "-a", "n=down", image)
	if code != exitFailed {
		t.Fatalf("a signature was pushed although the log was down:\n%s", stdout)
	}
}

func TestTlogUsageErrors(t *testing.T) {
	t.Setenv("OCISIGN_REKOR_URL", "")
	t.Setenv("SIGSTORE_REKOR_PUBLIC_KEY", "")
	_, pub := testKeyPair(t)
	key := strings.TrimSuffix(pub, ".pub") + ".key"
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"verify", "--key", pub, "--require-tlog", "127.0.0.1:1/x:1"}, "--require-tlog needs the log's public key"},
		{[]string{"sign", "--key", key, "--rekor-url", "ftp://log", "127.0.0.1:1/x:1"}, "must be an absolute http:// or https:// URL"},
		{[]string{"sign", "--key", key, "--rekor-url", "http://127.0.0.1:1", "--tlog-upload=false", "127.0.0.1:1/x:1"}, "contradicts"},
	}
	for _, tc := range cases {
		code, _, stderr := runCLI(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	// A missing log key file is the key's error (exit 1), naming the file.
	code, _, stderr := runCLI(t, "verify", "--key", pub, "--rekor-public-key", "/nonexistent/rekor.pub", "127.0.0.1:1/x:1")
	if code != exitFailed || !strings.Contains(stderr, "/nonexistent/rekor.pub") {
		t.Errorf("missing rekor key: exit %d, %q", code, stderr)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"rekor_url: rekor.example\n", `rekor_url "rekor.example" must be an absolute http:// or https:// URL`},
		{"rekor_pubkey: x\n", "field rekor_pubkey not found"},
	} {
		if _, err := parseConfig("c.yaml", []byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
	cfg, err := parseConfig("/etc/ocisign/c.yaml", []byte("rekor_url: https://rekor.internal\nrekor_public_key: keys/rekor.pub\n"))
	if err != nil || cfg.RekorURL != "https://rekor.internal" || cfg.RekorPublicKey != "keys/rekor.pub" {
		t.Fatalf("%v %+v", err, cfg)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// --tlog-upload alone means the public log. The registry here is
// unreachable, and the log is only contacted after the registry's round 1,
// so nothing leaves the machine.
func TestTlogUploadAloneMeansThePublicLog(t *testing.T) {
	t.Setenv("OCISIGN_REKOR_URL", "")
	t.Setenv("SIGSTORE_REKOR_PUBLIC_KEY", "")
	key, _ := testKeyPair(t)
	rekorKey := newFakeRekor(t).KeyFile
	code, _, stderr := runCLI(t, "sign", "--key", key, "--tlog-upload", "--rekor-public-key", rekorKey, "--timeout", "5s", "127.0.0.1:1/x/y:1")
	if code != exitFailed || !strings.Contains(stderr, "recording signatures in the transparency log https://rekor.sigstore.dev") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "sign", "--key", key, "--timeout", "5s", "127.0.0.1:1/x/y:1")
	if code != exitFailed || strings.Contains(stderr, "transparency log") {
		t.Fatalf("without a log setting the log was used: exit %d, stderr %q", code, stderr)
	}
}

// A Rekor URL may carry credentials (https://user:token@host/); they must
// not reach stdout or stderr whether the URL is refused, the log is down or
// the run succeeds.
func TestRekorURLCredentialsNeverPrinted(t *testing.T) {
	const marker = "S3cretTok"
	withCreds := func(u string) string { return strings.Replace(u, "://", "://alice:"+marker+"@", 1) }
	t.Setenv("OCISIGN_REKOR_URL", "")
	t.Setenv("SIGSTORE_REKOR_PUBLIC_KEY", "")
	t.Setenv("OCIBUILD_SIGN_KEY", "")
	t.Setenv("OCISIGN_CONFIG", "")
	rekor := newFakeRekor(t)
	dead := newFakeRekor(t)
	dead.Srv.Close()
	_, image := pushTestImage(t)
	key, pub := testKeyPair(t)
	dir := t.TempDir()
	writeConfig := func(name, rekorURL string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("rekor_url: \""+rekorURL+"\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badConfig := writeConfig("bad.yml", withCreds("ftp://rekor.example/"))
	goodConfig := writeConfig("good.yml", withCreds(rekor.Srv.URL))

	cases := []struct {
		name   string
		env    string // OCISIGN_REKOR_URL
		args   []string
		code   int
		stderr string // a fragment that must be there
	}{
		{"refused: query", "", []string{"sign", "--key", key, "--rekor-url", withCreds("https://rekor.example/?q=1"), image},
			exitUsage, "https://rekor.example/?q=1"},
		{"refused: unparsable", "", []string{"sign", "--key", key, "--rekor-url", "https://alice:S3cret Tok@rekor.example/", image},
			exitUsage, "https://[REDACTED]@rekor.example/"},
		{"refused: scheme, from the environment", withCreds("ftp://rekor.example"), []string{"sign", "--key", key, image},
			exitUsage, "ftp://rekor.example"},
		{"refused: config file", "", []string{"--config", badConfig, "sign", "--key", key, image},
			exitUsage, `rekor_url "ftp://rekor.example/"`},
		{"log down: sign", "", []string{"sign", "--key", key, "-a", "n=down", "--rekor-url", withCreds(dead.Srv.URL), "--rekor-public-key", dead.KeyFile, image},
			exitFailed, dead.Srv.URL},
		{"log down: verify --require-tlog", "", []string{"verify", "--key", pub, "--require-tlog", "--rekor-url", withCreds(dead.Srv.URL), image},
			exitFailed, dead.Srv.URL},
		{"signed", "", []string{"sign", "--key", key, "-o", "json", "--rekor-url", withCreds(rekor.Srv.URL), image},
			0, "recording signatures in the transparency log " + rekor.Srv.URL},
		{"signed: config file", "", []string{"--config", goodConfig, "sign", "--key", key, "-a", "via=config", image},
			0, "recording signatures in the transparency log " + rekor.Srv.URL},
		{"verified with the log's key", withCreds(rekor.Srv.URL), []string{"verify", "--key", pub, "--require-tlog", image},
			0, ""},
		{"log down: verify warns", "", []string{"verify", "--key", pub, "--rekor-url", withCreds(dead.Srv.URL), image},
			0, "bundles are not checked"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("OCISIGN_REKOR_URL", c.env)
			code, stdout, stderr := runCLI(t, c.args...)
			if strings.Contains(stdout+stderr, marker) {
				t.Errorf("credentials printed:\nstdout: %s\nstderr: %s", stdout, stderr)
			}
			if code != c.code || !strings.Contains(stderr, c.stderr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, c.code, c.stderr)
			}
		})
	}
	if n := rekor.Posts.Load(); n != 2 {
		t.Errorf("%d entries posted, want 2 (the two successful signs)", n)
	}
	_, err := parseConfig("c.yml", []byte("rekor_url: \"https://alice:"+marker+"@rekor.example/#f\"\n"))
	if err == nil || strings.Contains(err.Error(), marker) || !strings.Contains(err.Error(), `"https://rekor.example/#f"`) {
		t.Errorf("parseConfig: %v", err)
	}
}
