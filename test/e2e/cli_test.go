package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// testdata returns the absolute path of a committed key fixture.
func testdata(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(harness.repoRoot, "signing", "testdata", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return p
}

// pemBodyLines are the base64 lines of a PEM file: none may be printed.
func pemBodyLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if len(l) >= 16 && !strings.HasPrefix(l, "-----") && !strings.Contains(l, ":") {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestKeyRefusal (f): keys ocisign must not use are refused through the CLI
// with exit 1 and a message naming the file; nothing is pushed, and neither
// the password nor key material is printed.
func TestKeyRefusal(t *testing.T) {
	t.Parallel()
	const repo = "refusal"
	digest := pushImage(t, repo)
	ref := digestRef(repo, digest)

	cases := []struct {
		name     string
		keyPath  func(t *testing.T) string
		password string
		code     string // error code of the shared table in docs/design.md
	}{
		{"rsa-1024", func(t *testing.T) string { return testdata(t, "openssl-rsa1024-pkcs8.pem") }, testPassword, "unsupported_key"},
		{"public-key-as-private", func(t *testing.T) string { return testdata(t, "openssl-p256.pub") }, testPassword, "invalid_key"},
		{"certificate-as-private", func(t *testing.T) string { return testdata(t, "openssl-p256-cert.pem") }, testPassword, "invalid_key"},
		{"wrong-password", func(t *testing.T) string { return key(t, "cosign").key }, "Wr0ng-pa55word-not-to-print", "wrong_password"},
		{"missing-file", func(t *testing.T) string { return filepath.Join(t.TempDir(), "no-such.key") }, testPassword, "key_not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.keyPath(t)
			for _, output := range []string{"text", "json"} {
				r := ocisignEnv(t, []string{"COSIGN_PASSWORD=" + tc.password}, "sign", "--key", path, "--output", output, ref)
				if r.code != 1 {
					t.Fatalf("want exit 1 for %s (--output %s), got:\n%s", tc.name, output, r)
				}
				if !strings.Contains(r.stdout+r.stderr, filepath.Base(path)) {
					t.Fatalf("error does not name the key file %s:\n%s", path, r)
				}
				if _, err := os.Stat(path); err == nil {
					noSecrets(t, r, pemBodyLines(t, path)...)
				}
				if output == "json" {
					var reply struct {
						Error struct {
							Code string `json:"code"`
						} `json:"error"`
					}
					if err := json.Unmarshal([]byte(r.stdout), &reply); err != nil || reply.Error.Code != tc.code {
						t.Fatalf("want JSON error code %q on stdout (err %v):\n%s", tc.code, err, r)
					}
				}
			}
		})
	}
	if tags := sigTags(t, repo); len(tags) != 0 {
		t.Fatalf("refused keys still pushed signatures: %v", tags)
	}
}

var digestPattern = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// TestDemo (g): the embedded demo runs offline and reports verified digests.
func TestDemo(t *testing.T) {
	t.Parallel()
	r := mustSucceed(t, ocisign(t, "demo"))
	out := r.stdout + r.stderr
	digests := map[string]bool{}
	for _, d := range digestPattern.FindAllString(out, -1) {
		digests[d] = true
	}
	// A multi-platform demo signs an index and at least two children.
	if len(digests) < 3 {
		t.Fatalf("demo printed %d distinct digests, want the index and its children:\n%s", len(digests), r)
	}
	if !strings.Contains(strings.ToLower(out), "verified") {
		t.Fatalf("demo output does not say what it verified:\n%s", r)
	}
}

// TestGenerateKeyPair: ocisign's key pair is usable by real cosign (both
// versions sign with the private key and verify with the public key), the
// private key is 0600, and existing files are only replaced with --force.
func TestGenerateKeyPair(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prefix := filepath.Join(dir, "gen")
	r := mustSucceed(t, ocisign(t, "generate-key-pair", "--output-key-prefix", prefix))
	st, err := os.Stat(prefix + ".key")
	if err != nil {
		t.Fatalf("no private key written: %v\n%s", err, r)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Fatalf("private key mode %o, want 600", perm)
	}
	original, _ := os.ReadFile(prefix + ".key")
	noSecrets(t, r, pemBodyLines(t, prefix+".key")...)

	const repo = "genkey"
	for _, v := range cosignVersions {
		d := pushImage(t, repo)
		cosignSign(t, v, prefix+".key", digestRef(repo, d))
		for _, verifier := range cosignVersions {
			assertCosignVerifies(t, verifier, prefix+".pub", digestRef(repo, d), d)
		}
		assertOcisignVerifies(t, prefix+".pub", digestRef(repo, d), d)
	}

	if r := ocisign(t, "generate-key-pair", "--output-key-prefix", prefix); r.code == 0 {
		t.Fatalf("generate-key-pair overwrote existing files without --force:\n%s", r)
	}
	if now, _ := os.ReadFile(prefix + ".key"); string(now) != string(original) {
		t.Fatalf("a refused generate-key-pair still changed %s.key", prefix)
	}
	mustSucceed(t, ocisign(t, "generate-key-pair", "--output-key-prefix", prefix, "--force"))
	if now, _ := os.ReadFile(prefix + ".key"); string(now) == string(original) {
		t.Fatalf("generate-key-pair --force did not write a new key")
	}
}
