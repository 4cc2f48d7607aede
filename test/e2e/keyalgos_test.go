package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// fixturePassword is the documented password of the encrypted key fixtures
// (signing/testdata/make-fixtures.sh).
const fixturePassword = "ocisign-test-password"

// TestCosignVerifiesEveryKeyAlgorithm: ocisign signs with RSA-2048,
// RSA-4096, Ed25519, P-384 and P-521 keys, both as openssl wrote them and as
// cosign import-key-pair encrypted them, and cosign v2.6.5 and v3.1.3 accept
// the signatures. P-384/P-521 signatures need --signature-digest-algorithm,
// which ocisign's warning says, and cosign refuses them without it.
func TestCosignVerifiesEveryKeyAlgorithm(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		key  string // fixture in signing/testdata
		pub  string // fixture; "" = derived from key with openssl
		// digestAlgorithm is the --signature-digest-algorithm cosign needs
		// and ocisign's warning names; "" = cosign's default works.
		digestAlgorithm string
	}{
		{"rsa2048-openssl", "openssl-rsa2048-pkcs8.pem", "openssl-rsa2048.pub", ""},
		{"rsa2048-cosign-imported", "cosign-imported-rsa2048.key", "cosign-imported-rsa2048.pub", ""},
		{"rsa4096-openssl", "openssl-rsa4096-pkcs8.pem", "", ""},
		{"rsa4096-cosign-imported", "cosign-imported-rsa4096.key", "cosign-imported-rsa4096.pub", ""},
		{"ed25519-openssl", "openssl-ed25519-pkcs8.pem", "openssl-ed25519.pub", ""},
		{"ed25519-cosign-imported", "cosign-imported-ed25519.key", "cosign-imported-ed25519.pub", ""},
		{"p384-openssl", "openssl-p384-sec1.pem", "openssl-p384.pub", "sha384"},
		{"p384-cosign-imported", "cosign-imported-p384.key", "cosign-imported-p384.pub", "sha384"},
		{"p521-openssl", "openssl-p521-sec1.pem", "", "sha512"},
		{"p521-cosign-imported", "cosign-imported-p521.key", "cosign-imported-p521.pub", "sha512"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			keyPath := testdata(t, c.key)
			var pub string
			if c.pub != "" {
				pub = testdata(t, c.pub)
			} else {
				pub = derivedPub(t, keyPath)
			}
			repo := "algo-" + c.name
			digest := pushImage(t, repo)
			ref := digestRef(repo, digest)

			r := mustSucceed(t, ocisignEnv(t, []string{"COSIGN_PASSWORD=" + fixturePassword},
				"sign", "--key", keyPath, "--output", "json", ref))
			var out signOutput
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Signed) != 1 || out.Signed[0].Digest != digest {
				t.Fatalf("sign --output json: %v\n%s", err, r)
			}
			flag := "--signature-digest-algorithm " + c.digestAlgorithm
			if c.digestAlgorithm == "" {
				if strings.Contains(r.stderr, "--signature-digest-algorithm") {
					t.Fatalf("ocisign warned about a digest algorithm cosign does not need:\n%s", r)
				}
			} else if !strings.Contains(r.stderr, "warning: ") || !strings.Contains(r.stderr, flag) {
				t.Fatalf("ocisign did not warn that verifiers need %s:\n%s", flag, r)
			}

			for _, v := range cosignVersions {
				args := []string{"verify", "--key", pub, "--insecure-ignore-tlog"}
				if c.digestAlgorithm != "" {
					// Without the flag cosign hashes with SHA-256 and refuses:
					// the warning is needed.
					r := run(t, "", nil, harness.cosign[v], append(args, ref)...)
					if r.code == 0 || !strings.Contains(r.stderr, "invalid signature") {
						t.Fatalf("cosign %s without %s: want a refusal of the signature (ocisign's warning says it is needed), got:\n%s", v, flag, r)
					}
					args = append(args, "--signature-digest-algorithm", c.digestAlgorithm)
				}
				checkCosignAccepted(t, v, run(t, "", nil, harness.cosign[v], append(args, ref)...), ref, digest)
			}
			assertOcisignVerifies(t, pub, ref, digest)
		})
	}
}

// derivedPub writes the public key of an unencrypted openssl key file with
// openssl itself, independently of ocisign.
func derivedPub(t *testing.T, keyPath string) string {
	t.Helper()
	pub := filepath.Join(t.TempDir(), "key.pub")
	mustSucceed(t, run(t, "", nil, harness.openssl, "pkey", "-in", keyPath, "-pubout", "-out", pub))
	return pub
}
