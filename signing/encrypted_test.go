package signing

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ocisign/ocisign/internal/testgate"
	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/scrypt"
)

// sealForTest builds a cosign envelope around arbitrary plaintext.
func sealForTest(t *testing.T, plaintext, password []byte) []byte {
	t.Helper()
	salt := make([]byte, 32)
	var nonce [24]byte
	rand.Read(salt)
	rand.Read(nonce[:])
	k, err := scrypt.Key(password, salt, 32768, 8, 1, 32)
	if err != nil {
		t.Fatal(err)
	}
	var key [32]byte
	copy(key[:], k)
	body, err := json.Marshal(encryptedKey{
		KDF:        scryptKDF{Name: "scrypt", Params: scryptParams{32768, 8, 1}, Salt: salt},
		Cipher:     secretboxCipher{Name: "nacl/secretbox", Nonce: nonce[:]},
		Ciphertext: secretbox.Seal(nil, plaintext, &nonce, &key),
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

var base64Value = regexp.MustCompile(`"(salt|nonce|ciphertext)":"[A-Za-z0-9+/]*={0,2}"`)

// envelopeShape returns the PEM type and the JSON body with base64 values
// replaced by their decoded lengths: equal shapes mean the same layout.
func envelopeShape(t *testing.T, file []byte) (string, string) {
	t.Helper()
	block, rest := pem.Decode(file)
	if block == nil || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("not exactly one PEM block: %q", file)
	}
	shape := base64Value.ReplaceAllStringFunc(string(block.Bytes), func(m string) string {
		parts := strings.SplitN(m, ":", 2)
		raw, err := base64.StdEncoding.DecodeString(strings.Trim(parts[1], `"`))
		if err != nil {
			t.Fatalf("%s is not std base64: %v", parts[0], err)
		}
		return fmt.Sprintf(`%s:"<%03d bytes>"`, parts[0], len(raw))
	})
	return block.Type, shape
}

func TestEncryptPrivateKeyMatchesCosignLayout(t *testing.T) {
	cosignFile, err := os.ReadFile(fixture("cosign-p256.key"))
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ours, err := EncryptPrivateKey(priv, []byte(testPassword))
	if err != nil {
		t.Fatal(err)
	}
	wantType, wantShape := envelopeShape(t, cosignFile)
	gotType, gotShape := envelopeShape(t, ours)
	if gotType != wantType || gotShape != wantShape {
		t.Errorf("envelope differs from cosign's:\n got %s %s\nwant %s %s", gotType, gotShape, wantType, wantShape)
	}
	const want = `{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"<032 bytes>"},` +
		`"cipher":{"name":"nacl/secretbox","nonce":"<024 bytes>"},"ciphertext":"<154 bytes>"}`
	if gotShape != want {
		t.Errorf("shape = %s\nwant    %s", gotShape, want)
	}
	// Same sizes give the same PEM line structure as cosign's file.
	if len(ours) != len(cosignFile) {
		t.Errorf("PEM is %d bytes, cosign's is %d", len(ours), len(cosignFile))
	}

	again, _ := EncryptPrivateKey(priv, []byte(testPassword))
	if bytes.Equal(again, ours) {
		t.Error("two encryptions of one key are identical: salt and nonce are not random")
	}
}

func TestEncryptPrivateKeyRoundTrip(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaSigner, err := LoadPrivateKey(fixture("openssl-rsa2048-pkcs1.pem"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, c := range []struct {
		name     string
		key      crypto.Signer
		password string
	}{
		{"p256", p256, testPassword},
		{"p256 empty password", p256, ""},
		{"p384", p384, testPassword},
		{"p521", p521, testPassword},
		{"ed25519", ed, testPassword},
		{"rsa2048", rsaSigner.PrivateKey(), testPassword},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			enc, err := EncryptPrivateKey(c.key, []byte(c.password))
			if err != nil {
				t.Fatal(err)
			}
			s, err := ParsePrivateKey(enc, "rt.key", func() ([]byte, error) { return []byte(c.password), nil })
			if err != nil {
				t.Fatal(err)
			}
			want, _ := mustVerifier(t, c.key.Public()).PublicKeyPEM()
			got, _ := s.Verifier().PublicKeyPEM()
			if !bytes.Equal(got, want) {
				t.Error("decrypted key differs from the original")
			}
			_, err = ParsePrivateKey(enc, "rt.key", func() ([]byte, error) { return []byte(c.password + "x"), nil })
			// The password may come from a prompt, not only COSIGN_PASSWORD.
			checkKeyError(t, err, "wrong_password", "rt.key", "the password does not decrypt this key: wrong password (")
		})
	}
}

func mustVerifier(t *testing.T, pub crypto.PublicKey) *Verifier {
	t.Helper()
	v, err := NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestEncryptPrivateKeyRefusesUnsupportedKeys(t *testing.T) {
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	_, err := EncryptPrivateKey(p224, []byte("pw"))
	checkKeyError(t, err, "unsupported_key", "", "P-224")
}

func TestGenerateKeyPair(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "cosign")
	keyPath, pubPath, err := GenerateKeyPair(prefix, []byte(testPassword), false)
	if err != nil {
		t.Fatal(err)
	}
	if keyPath != prefix+".key" || pubPath != prefix+".pub" {
		t.Errorf("paths = %s, %s", keyPath, pubPath)
	}
	assertMode(t, keyPath, 0o600)
	assertMode(t, pubPath, 0o644)
	assertGeneratedPair(t, keyPath, pubPath, testPassword)
	assertDirHolds(t, dir, "cosign.key", "cosign.pub")

	oldKey, _ := os.ReadFile(keyPath)
	oldPub, _ := os.ReadFile(pubPath)
	_, _, err = GenerateKeyPair(prefix, []byte(testPassword), false)
	if want := "generate key pair: " + keyPath + " already exists (use --force to overwrite it)"; !errors.Is(err, fs.ErrExist) || err.Error() != want {
		t.Fatalf("overwrite without force: err = %v, want fs.ErrExist reading %q", err, want)
	}
	if k, _ := os.ReadFile(keyPath); !bytes.Equal(k, oldKey) {
		t.Error("refused generation changed the key file")
	}
	if p, _ := os.ReadFile(pubPath); !bytes.Equal(p, oldPub) {
		t.Error("refused generation changed the public key file")
	}

	if _, _, err := GenerateKeyPair(prefix, []byte("new password"), true); err != nil {
		t.Fatalf("force: %v", err)
	}
	if k, _ := os.ReadFile(keyPath); bytes.Equal(k, oldKey) {
		t.Error("force did not replace the key")
	}
	assertMode(t, keyPath, 0o600)
	assertMode(t, pubPath, 0o644)
	assertGeneratedPair(t, keyPath, pubPath, "new password")
	assertDirHolds(t, dir, "cosign.key", "cosign.pub")
}

func TestGenerateKeyPairChecksBothFilesFirst(t *testing.T) {
	for _, existing := range []string{".key", ".pub"} {
		t.Run(existing, func(t *testing.T) {
			dir := t.TempDir()
			prefix := filepath.Join(dir, "k")
			if err := os.WriteFile(prefix+existing, []byte("keep me"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, err := GenerateKeyPair(prefix, nil, false)
			if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), prefix+existing) {
				t.Fatalf("err = %v, want fs.ErrExist naming %s", err, prefix+existing)
			}
			assertDirHolds(t, dir, "k"+existing)
			if b, _ := os.ReadFile(prefix + existing); string(b) != "keep me" {
				t.Error("existing file changed")
			}
		})
	}
	t.Run("dangling symlink counts as existing", func(t *testing.T) {
		dir := t.TempDir()
		prefix := filepath.Join(dir, "k")
		if err := os.Symlink(filepath.Join(dir, "elsewhere"), prefix+".key"); err != nil {
			t.Skip("no symlinks:", err)
		}
		if _, _, err := GenerateKeyPair(prefix, nil, false); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("err = %v, want fs.ErrExist", err)
		}
		if _, err := os.Lstat(filepath.Join(dir, "elsewhere")); err == nil {
			t.Error("wrote through the symlink")
		}
	})
}

func TestGenerateKeyPairErrorsLeaveNothing(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := GenerateKeyPair(filepath.Join(dir, "no", "such", "dir", "k"), nil, false); err == nil {
		t.Fatal("want an error for a missing directory")
	}
	if _, _, err := GenerateKeyPair(filepath.Join(dir, "no", "such", "dir", "k"), nil, true); err == nil {
		t.Fatal("want an error for a missing directory (force)")
	}
	if _, _, err := GenerateKeyPair("", nil, false); err == nil {
		t.Fatal("want an error for an empty prefix")
	}
	// The .pub target is a directory: with force the key must not be written alone.
	prefix := filepath.Join(dir, "x")
	if err := os.Mkdir(prefix+".pub", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, force := range []bool{false, true} {
		if _, _, err := GenerateKeyPair(prefix, nil, force); err == nil || !strings.Contains(err.Error(), "x.pub") {
			t.Fatalf("force=%v: err = %v, want an error naming x.pub", force, err)
		}
		assertDirHolds(t, dir, "x.pub")
	}
}

func TestGenerateKeyPairEmptyPassword(t *testing.T) {
	dir := t.TempDir()
	keyPath, pubPath, err := GenerateKeyPair(filepath.Join(dir, "e"), []byte{}, false)
	if err != nil {
		t.Fatal(err)
	}
	assertGeneratedPair(t, keyPath, pubPath, "")
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s mode = %o, want %o", path, got, want)
	}
}

func assertDirHolds(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, want)
	}
}

func assertGeneratedPair(t *testing.T, keyPath, pubPath, password string) {
	t.Helper()
	keyFile, _ := os.ReadFile(keyPath)
	if typ, _ := envelopeShape(t, keyFile); typ != "ENCRYPTED SIGSTORE PRIVATE KEY" {
		t.Errorf("key PEM type = %s", typ)
	}
	s, err := LoadPrivateKey(keyPath, func() ([]byte, error) { return []byte(password), nil })
	if err != nil {
		t.Fatal(err)
	}
	if s.Algorithm() != ECDSAP256SHA256 {
		t.Errorf("generated %s, want P-256", s.Algorithm())
	}
	v, err := LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("payload")
	sig, _ := s.Sign(payload)
	if err := v.Verify(payload, sig); err != nil {
		t.Errorf("generated .pub does not verify the key's signature: %v", err)
	}
	pubFile, _ := os.ReadFile(pubPath)
	if want, _ := s.Verifier().PublicKeyPEM(); !bytes.Equal(pubFile, want) {
		t.Errorf(".pub is not the PUBLIC KEY PEM of the key")
	}
}

// TestRealCosignUsesOurKeys runs cosign v2 sign-blob/verify-blob against a key
// pair we generated and a signature we made.
func TestRealCosignUsesOurKeys(t *testing.T) {
	cosign := testgate.Tool(t, "OCISIGN_COSIGN_V2", "set it to a cosign v2 binary (test/tools/build.sh builds one)")
	dir := t.TempDir()
	keyPath, pubPath, err := GenerateKeyPair(filepath.Join(dir, "ours"), []byte(testPassword), false)
	if err != nil {
		t.Fatal(err)
	}
	payloadPath := filepath.Join(dir, "payload.json")
	payload, err := Payload("127.0.0.1:5000/test/app", "sha256:"+strings.Repeat("ab", 32), map[string]string{"foo": "bar"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(payloadPath, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(cosign, args...)
		// No network: a dead proxy makes any attempt fail fast instead of leaving the machine.
		cmd.Env = append(os.Environ(), "COSIGN_PASSWORD="+testPassword, "HOME="+dir,
			"HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	// cosign signs with our encrypted key; we verify.
	cosignSig := filepath.Join(dir, "cosign.sig")
	if out, err := run("sign-blob", "--key", keyPath, "--tlog-upload=false", "-y", "--output-signature", cosignSig, payloadPath); err != nil {
		t.Fatalf("cosign sign-blob with our key: %v\n%s", err, out)
	}
	b64, _ := os.ReadFile(cosignSig)
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b64)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(payload, sig); err != nil {
		t.Errorf("cosign's signature with our key does not verify: %v", err)
	}

	// We sign; cosign verifies with our .pub, and rejects a tampered payload.
	s, err := LoadPrivateKey(keyPath, func() ([]byte, error) { return []byte(testPassword), nil })
	if err != nil {
		t.Fatal(err)
	}
	ourSig, _ := s.Sign(payload)
	ourSigPath := filepath.Join(dir, "ours.sig")
	os.WriteFile(ourSigPath, []byte(base64.StdEncoding.EncodeToString(ourSig)), 0o644)
	if out, err := run("verify-blob", "--key", pubPath, "--signature", ourSigPath, "--insecure-ignore-tlog", payloadPath); err != nil {
		t.Errorf("cosign verify-blob rejects our signature: %v\n%s", err, out)
	}
	tampered := filepath.Join(dir, "tampered.json")
	os.WriteFile(tampered, append(payload, ' '), 0o644)
	if out, err := run("verify-blob", "--key", pubPath, "--signature", ourSigPath, "--insecure-ignore-tlog", tampered); err == nil {
		t.Errorf("cosign verify-blob accepted a tampered payload:\n%s", out)
	}
}
