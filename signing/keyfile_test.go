package signing

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// testPassword is the documented password of every encrypted fixture (make-fixtures.sh).
const testPassword = "ocisign-test-password"

func fixture(name string) string { return filepath.Join("testdata", name) }

// countingPassword returns password and counts how often it was asked for.
func countingPassword(password string) (PasswordFunc, *atomic.Int32) {
	var calls atomic.Int32
	return func() ([]byte, error) {
		calls.Add(1)
		return []byte(password), nil
	}, &calls
}

// assertNoSecrets fails when msg repeats the password or any base64 line of the key file.
func assertNoSecrets(t *testing.T, msg string, file []byte, password string) {
	t.Helper()
	if password != "" && strings.Contains(msg, password) {
		t.Errorf("error message contains the password: %q", msg)
	}
	for _, line := range strings.Split(string(file), "\n") {
		line = strings.TrimSpace(line)
		if len(line) < 16 || strings.HasPrefix(line, "-----") || strings.Contains(line, ":") {
			continue
		}
		if strings.Contains(msg, line) {
			t.Errorf("error message contains a line of the key file: %q", msg)
		}
	}
}

func checkKeyError(t *testing.T, err error, wantCode, path, wantText string) *KeyError {
	t.Helper()
	var ke *KeyError
	if !errors.As(err, &ke) {
		t.Fatalf("error %v (%T) is not a *KeyError", err, err)
	}
	if ke.Code != wantCode {
		t.Errorf("code = %q, want %q (%v)", ke.Code, wantCode, err)
	}
	if path != "" && !strings.Contains(err.Error(), path) {
		t.Errorf("message %q does not name the file %s", err, path)
	}
	if wantText != "" && !strings.Contains(err.Error(), wantText) {
		t.Errorf("message %q does not contain %q", err, wantText)
	}
	sentinel := map[string]error{
		"unsupported_key": ErrUnsupportedKey, "wrong_password": ErrWrongPassword, "key_not_found": ErrKeyNotFound,
		"invalid_key": ErrInvalidKey, "password_required": ErrPasswordNeeded,
	}[wantCode]
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Errorf("errors.Is(err, %s sentinel) = false", wantCode)
	}
	return ke
}

type privateCase struct {
	file      string
	alg       Algorithm // "" = refused
	code      string
	text      string // must appear in the error
	pub       string // matching public key fixture, if any
	encrypted bool
	password  string
}

var privateCases = []privateCase{
	// cosign generate-key-pair / import-key-pair output.
	{file: "cosign-p256.key", alg: ECDSAP256SHA256, pub: "cosign-p256.pub", encrypted: true, password: testPassword},
	{file: "cosign-p256-empty-password.key", alg: ECDSAP256SHA256, pub: "cosign-p256-empty-password.pub", encrypted: true, password: ""},
	{file: "cosign-p256-legacy-label.key", alg: ECDSAP256SHA256, pub: "cosign-p256.pub", encrypted: true, password: testPassword},
	{file: "cosign-imported-p384.key", alg: ECDSAP384SHA384, pub: "cosign-imported-p384.pub", encrypted: true, password: testPassword},
	{file: "cosign-imported-p521.key", alg: ECDSAP521SHA512, pub: "cosign-imported-p521.pub", encrypted: true, password: testPassword},
	{file: "cosign-imported-rsa2048.key", alg: RSAPKCS1SHA256, pub: "cosign-imported-rsa2048.pub", encrypted: true, password: testPassword},
	{file: "cosign-imported-rsa4096.key", alg: RSAPKCS1SHA256, pub: "cosign-imported-rsa4096.pub", encrypted: true, password: testPassword},
	{file: "cosign-imported-ed25519.key", alg: Ed25519, pub: "cosign-imported-ed25519.pub", encrypted: true, password: testPassword},
	// openssl, unencrypted.
	{file: "openssl-p256-pkcs8.pem", alg: ECDSAP256SHA256, pub: "openssl-p256.pub"},
	{file: "openssl-p256-sec1.pem", alg: ECDSAP256SHA256, pub: "openssl-p256.pub"},
	{file: "openssl-p256-sec1-params.pem", alg: ECDSAP256SHA256, pub: "openssl-p256.pub"},
	{file: "openssl-p384-sec1.pem", alg: ECDSAP384SHA384, pub: "openssl-p384.pub"},
	{file: "openssl-p521-sec1.pem", alg: ECDSAP521SHA512},
	{file: "openssl-rsa2048-pkcs1.pem", alg: RSAPKCS1SHA256, pub: "openssl-rsa2048.pub"},
	{file: "openssl-rsa2048-pkcs8.pem", alg: RSAPKCS1SHA256, pub: "openssl-rsa2048-pkcs1.pub"},
	{file: "openssl-rsa4096-pkcs8.pem", alg: RSAPKCS1SHA256},
	{file: "openssl-ed25519-pkcs8.pem", alg: Ed25519, pub: "openssl-ed25519.pub"},
	// Refused algorithms and sizes.
	{file: "openssl-p224-sec1.pem", code: "unsupported_key", text: "P-224"},
	{file: "openssl-secp256k1-sec1.pem", code: "unsupported_key", text: "secp256k1"},
	{file: "openssl-secp256k1-pkcs8.pem", code: "unsupported_key", text: "secp256k1"},
	{file: "openssl-rsa512-pkcs1.pem", code: "unsupported_key", text: "512 bits"},
	{file: "openssl-rsa512-pkcs8.pem", code: "unsupported_key", text: "512 bits"},
	{file: "openssl-rsa1024-pkcs8.pem", code: "unsupported_key", text: "1024 bits"},
	{file: "openssl-rsa8192-pkcs1.pem", code: "unsupported_key", text: "8192 bits"},
	{file: "openssl-ed448-pkcs8.pem", code: "unsupported_key", text: "Ed448"},
	{file: "openssl-dsa-pkcs8.pem", code: "unsupported_key", text: "DSA"},
	{file: "openssl-p256-sec1-explicit.pem", code: "unsupported_key", text: "-param_enc named_curve"},
	{file: "openssl-p256-pkcs8-explicit.pem", code: "unsupported_key", text: "-param_enc named_curve"},
	{file: "openssl-dsa-traditional.pem", code: "unsupported_key", text: "DSA"},
	// openssl's own encryption: refused with a way out.
	{file: "openssl-p256-pkcs8-encrypted.pem", code: "unsupported_key", text: "openssl pkey -in testdata/openssl-p256-pkcs8-encrypted.pem"},
	{file: "openssl-rsa2048-pkcs1-encrypted.pem", code: "unsupported_key", text: "Proc-Type: 4,ENCRYPTED"},
	// Not a private key at all.
	{file: "cosign-p256.pub", code: "invalid_key", text: "public key"},
	{file: "openssl-rsa2048-pkcs1.pub", code: "invalid_key", text: "public key (RSA PUBLIC KEY)"},
	{file: "openssl-p256-cert.pem", code: "invalid_key", text: "certificate"},
	{file: "empty.key", code: "invalid_key", text: "empty"},
	{file: "not-a-key.txt", code: "invalid_key", text: "not a PEM file"},
	{file: "payload.json", code: "invalid_key", text: "not a PEM file"},
	{file: "payload.json.cosign-p256.sig", code: "invalid_key", text: "not a PEM file"},
	{file: "make-fixtures.sh", code: "invalid_key", text: "not a PEM file"},
}

var publicCases = []struct {
	file string
	alg  Algorithm
	code string
	text string
}{
	{file: "cosign-p256.pub", alg: ECDSAP256SHA256},
	{file: "cosign-p256-empty-password.pub", alg: ECDSAP256SHA256},
	{file: "cosign-imported-p384.pub", alg: ECDSAP384SHA384},
	{file: "cosign-imported-p521.pub", alg: ECDSAP521SHA512},
	{file: "cosign-imported-rsa2048.pub", alg: RSAPKCS1SHA256},
	{file: "cosign-imported-rsa4096.pub", alg: RSAPKCS1SHA256},
	{file: "cosign-imported-ed25519.pub", alg: Ed25519},
	{file: "openssl-p256.pub", alg: ECDSAP256SHA256},
	{file: "openssl-p384.pub", alg: ECDSAP384SHA384},
	{file: "openssl-rsa2048.pub", alg: RSAPKCS1SHA256},
	{file: "openssl-rsa2048-pkcs1.pub", alg: RSAPKCS1SHA256},
	{file: "openssl-ed25519.pub", alg: Ed25519},
	{file: "openssl-p224.pub", code: "unsupported_key", text: "P-224"},
	{file: "openssl-secp256k1.pub", code: "unsupported_key", text: "secp256k1"},
	{file: "openssl-p256-explicit.pub", code: "unsupported_key", text: "-param_enc named_curve"},
	{file: "openssl-rsa512.pub", code: "unsupported_key", text: "512 bits"},
	{file: "openssl-rsa1024.pub", code: "unsupported_key", text: "1024 bits"},
	{file: "openssl-dsa.pub", code: "unsupported_key", text: "DSA"},
	{file: "openssl-ed448.pub", code: "unsupported_key", text: "Ed448"},
	{file: "cosign-p256.key", code: "invalid_key", text: "private key (ENCRYPTED SIGSTORE PRIVATE KEY)"},
	{file: "openssl-p256-sec1-params.pem", code: "invalid_key", text: "private key (EC PRIVATE KEY)"},
	{file: "openssl-rsa2048-pkcs1.pem", code: "invalid_key", text: "private key (RSA PRIVATE KEY)"},
	{file: "openssl-ed25519-pkcs8.pem", code: "invalid_key", text: "private key (PRIVATE KEY)"},
	{file: "openssl-dsa-traditional.pem", code: "invalid_key", text: "private key"},
	{file: "openssl-p256-pkcs8-encrypted.pem", code: "invalid_key", text: "private key"},
	{file: "openssl-p256-cert.pem", code: "invalid_key", text: "openssl x509 -pubkey"},
	{file: "empty.key", code: "invalid_key", text: "empty"},
	{file: "not-a-key.txt", code: "invalid_key", text: "not a PEM file"},
}

func TestEveryFixtureIsCovered(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range privateCases {
		covered[c.file] = true
	}
	for _, c := range publicCases {
		covered[c.file] = true
	}
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() && !covered[e.Name()] {
			t.Errorf("testdata/%s is not in any test table", e.Name())
		}
	}
}

func TestLoadPrivateKeyFixtures(t *testing.T) {
	for _, c := range privateCases {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			path := fixture(c.file)
			file, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			password, calls := countingPassword(c.password)
			s, err := LoadPrivateKey(path, password)
			if c.alg == "" {
				if err == nil {
					t.Fatalf("loaded %s as %s, want refusal %s", path, s.Algorithm(), c.code)
				}
				checkKeyError(t, err, c.code, path, c.text)
				assertNoSecrets(t, err.Error(), file, testPassword)
				return
			}
			if err != nil {
				t.Fatalf("LoadPrivateKey: %v", err)
			}
			if s.Algorithm() != c.alg {
				t.Errorf("algorithm = %s, want %s", s.Algorithm(), c.alg)
			}
			if wantCalls := map[bool]int32{true: 1, false: 0}[c.encrypted]; calls.Load() != wantCalls {
				t.Errorf("password asked %d times, want %d", calls.Load(), wantCalls)
			}
			payload := []byte(`{"critical":{}}`)
			sig, err := s.Sign(payload)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Verifier().Verify(payload, sig); err != nil {
				t.Errorf("own verifier: %v", err)
			}
			if c.pub != "" {
				v, err := LoadPublicKey(fixture(c.pub))
				if err != nil {
					t.Fatal(err)
				}
				if err := v.Verify(payload, sig); err != nil {
					t.Errorf("verify with %s: %v", c.pub, err)
				}
				ours, _ := s.Verifier().PublicKeyPEM()
				theirs, _ := v.PublicKeyPEM()
				if !bytes.Equal(ours, theirs) {
					t.Errorf("public key of %s differs from %s", c.file, c.pub)
				}
			}
		})
	}
}

func TestWrongPasswordOnEveryCosignKey(t *testing.T) {
	for _, c := range privateCases {
		if !c.encrypted {
			continue
		}
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			path := fixture(c.file)
			file, _ := os.ReadFile(path)
			wrong := "not-" + c.password + "-really"
			_, err := LoadPrivateKey(path, func() ([]byte, error) { return []byte(wrong), nil })
			checkKeyError(t, err, "wrong_password", path, "does not decrypt")
			assertNoSecrets(t, err.Error(), file, wrong)
			assertNoSecrets(t, err.Error(), file, testPassword)
		})
	}
}

func TestSignerWarning(t *testing.T) {
	for _, c := range []struct {
		file, want string
	}{
		{"openssl-p256-sec1.pem", ""},
		{"openssl-rsa2048-pkcs1.pem", ""},
		{"openssl-ed25519-pkcs8.pem", ""},
		{"openssl-p384-sec1.pem", "--signature-digest-algorithm sha384"},
		{"openssl-p521-sec1.pem", "--signature-digest-algorithm sha512"},
	} {
		s, err := LoadPrivateKey(fixture(c.file), nil)
		if err != nil {
			t.Fatal(err)
		}
		got := s.Warning()
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%s: Warning() = %q, want %q", c.file, got, c.want)
		}
	}
}

func TestLoadPublicKeyFixtures(t *testing.T) {
	for _, c := range publicCases {
		t.Run(c.file, func(t *testing.T) {
			path := fixture(c.file)
			file, _ := os.ReadFile(path)
			v, err := LoadPublicKey(path)
			if c.alg == "" {
				if err == nil {
					t.Fatalf("loaded %s as %s, want refusal %s", path, v.Algorithm(), c.code)
				}
				checkKeyError(t, err, c.code, path, c.text)
				assertNoSecrets(t, err.Error(), file, testPassword)
				return
			}
			if err != nil {
				t.Fatalf("LoadPublicKey: %v", err)
			}
			if v.Algorithm() != c.alg {
				t.Errorf("algorithm = %s, want %s", v.Algorithm(), c.alg)
			}
			out, err := v.PublicKeyPEM()
			if err != nil {
				t.Fatal(err)
			}
			if block, _ := pem.Decode(out); block == nil || block.Type != "PUBLIC KEY" {
				t.Errorf("PublicKeyPEM is not a PUBLIC KEY block: %q", out)
			}
		})
	}
}

func TestKeyFileProblems(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.key")
	_, err := LoadPrivateKey(missing, nil)
	checkKeyError(t, err, "key_not_found", missing, "does not exist")
	_, err = LoadPublicKey(missing)
	checkKeyError(t, err, "key_not_found", missing, "does not exist")

	_, err = LoadPrivateKey(dir, nil)
	checkKeyError(t, err, "key_not_found", dir, "directory")

	big := filepath.Join(dir, "big.key")
	good, _ := os.ReadFile(fixture("openssl-p256-pkcs8.pem"))
	// A valid key followed by padding: only the size may cause the refusal.
	if err := os.WriteFile(big, append(good, bytes.Repeat([]byte("\n"), MaxKeyFileSize)...), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadPrivateKey(big, nil)
	checkKeyError(t, err, "invalid_key", big, "too large")
	_, err = LoadPublicKey(big)
	checkKeyError(t, err, "invalid_key", big, "too large")
	_, err = ParsePrivateKey(append(good, bytes.Repeat([]byte(" "), MaxKeyFileSize)...), "in-memory", nil)
	checkKeyError(t, err, "invalid_key", "in-memory", "too large")

	// A device or a pipe is refused before it is opened: opening a FIFO
	// blocks until a writer comes, /dev/zero never ends.
	if _, err := os.Stat("/dev/zero"); err == nil {
		_, err = LoadPrivateKey("/dev/zero", nil)
		checkKeyError(t, err, "invalid_key", "/dev/zero", "not a regular file (a character device)")
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, load := range []func(string) error{
		func(p string) error { _, err := LoadPrivateKey(p, nil); return err },
		func(p string) error { _, err := LoadPublicKey(p); return err },
		func(p string) error { _, err := LoadRekorPublicKeys(p); return err },
	} {
		checkKeyError(t, load(fifo), "invalid_key", fifo, "not a regular file (a named pipe (FIFO))")
	}

	if os.Geteuid() != 0 { // root reads any file
		unreadable := filepath.Join(dir, "unreadable.key")
		if err := os.WriteFile(unreadable, good, 0o000); err != nil {
			t.Fatal(err)
		}
		_, err = LoadPrivateKey(unreadable, nil)
		checkKeyError(t, err, "key_not_found", unreadable, "permission denied")
	}
}

func TestCorruptPEM(t *testing.T) {
	cosignKey, _ := os.ReadFile(fixture("cosign-p256.key"))
	sec1, _ := os.ReadFile(fixture("openssl-p256-sec1.pem"))
	pkcs8, _ := os.ReadFile(fixture("openssl-p256-pkcs8.pem"))
	rsa, _ := os.ReadFile(fixture("openssl-rsa2048-pkcs1.pem"))
	pub, _ := os.ReadFile(fixture("openssl-p256.pub"))
	params, _ := os.ReadFile(fixture("openssl-p256-sec1-params.pem"))
	onlyParams := params[:bytes.Index(params, []byte("-----BEGIN EC PRIVATE KEY"))]
	ed25519Key, _ := os.ReadFile(fixture("openssl-ed25519-pkcs8.pem"))
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	x25519DER, err := x509.MarshalPKCS8PrivateKey(x)
	if err != nil {
		t.Fatal(err)
	}
	x25519Pub, _ := x509.MarshalPKIXPublicKey(x.PublicKey())
	unknownAlgDER, _ := asn1.Marshal(struct {
		Version int
		Algo    pkix.AlgorithmIdentifier
		Key     []byte
	}{0, pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 3, 4}}, []byte{1}})

	cases := []struct {
		name string
		data []byte
		code string
		text string
	}{
		{"truncated cosign key", cosignKey[:len(cosignKey)/2], "invalid_key", "corrupt or truncated"},
		{"cosign key without END line", bytes.SplitAfter(cosignKey, []byte("\n"))[0], "invalid_key", "corrupt or truncated"},
		{"cosign body cut inside the JSON", reblock(t, cosignKey, func(b []byte) []byte { return b[:len(b)/2] }), "invalid_key", "not valid JSON"},
		{"SEC1 body cut short", reblock(t, sec1, func(b []byte) []byte { return b[:len(b)-10] }), "invalid_key", "not a valid SEC1"},
		{"PKCS#8 body cut short", reblock(t, pkcs8, func(b []byte) []byte { return b[:len(b)-10] }), "invalid_key", "not a valid PKCS#8"},
		{"PKCS#1 body cut short", reblock(t, rsa, func(b []byte) []byte { return b[:len(b)-10] }), "invalid_key", "not a valid PKCS#1"},
		{"PKCS#1 modulus altered", reblock(t, rsa, func(b []byte) []byte { b[20] ^= 0xff; return b }), "invalid_key", "not a valid PKCS#1"},
		{"garbage in PRIVATE KEY", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("garbage")}), "invalid_key", "not a valid PKCS#8"},
		{"only EC PARAMETERS", onlyParams, "invalid_key", "only EC PARAMETERS"},
		{"unknown PEM type", pem.EncodeToMemory(&pem.Block{Type: "SOMETHING ELSE", Bytes: []byte{1}}), "invalid_key", `"SOMETHING ELSE"`},
		{"openssh key", pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: []byte{1}}), "unsupported_key", "OpenSSH"},
		{"whitespace only", []byte(" \n\t\n"), "invalid_key", "empty"},
		{"Ed25519 PKCS#8 cut short", reblock(t, ed25519Key, func(b []byte) []byte { return b[:len(b)-3] }), "invalid_key", "not a valid PKCS#8"},
		{"X25519 PKCS#8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: x25519DER}), "unsupported_key", "X25519 keys are not supported"},
		{"unknown PKCS#8 algorithm", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: unknownAlgDER}), "unsupported_key", "key algorithm 1.2.3.4 is not supported"},
		{"binary garbage", []byte{0, 1, 2, 0xff, 0xfe}, "invalid_key", "not a PEM file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			password, calls := countingPassword(testPassword)
			_, err := ParsePrivateKey(c.data, "some/dir/k.key", password)
			checkKeyError(t, err, c.code, "some/dir/k.key", c.text)
			assertNoSecrets(t, err.Error(), c.data, testPassword)
			if calls.Load() != 0 {
				t.Errorf("password asked for a file that cannot be decrypted")
			}
		})
	}
	_, err = ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: x25519Pub}), "p.pub")
	checkKeyError(t, err, "unsupported_key", "p.pub", "X25519")
	_, err = ParsePublicKey(reblock(t, pub, func(b []byte) []byte { return b[:len(b)-5] }), "p.pub")
	checkKeyError(t, err, "invalid_key", "p.pub", "not a valid PKIX")
	_, err = ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: []byte{0x30, 0}}), "p.pub")
	checkKeyError(t, err, "invalid_key", "p.pub", "not a valid PKCS#1")
}

// reblock applies change to the DER/JSON body of the first key block of a PEM
// file and encodes it again.
func reblock(t *testing.T, file []byte, change func([]byte) []byte) []byte {
	t.Helper()
	rest := file
	for {
		block, next := pem.Decode(rest)
		if block == nil {
			t.Fatal("no PEM block")
		}
		if block.Type != "EC PARAMETERS" {
			block.Bytes = change(append([]byte(nil), block.Bytes...))
			return pem.EncodeToMemory(block)
		}
		rest = next
	}
}

// envelopeEdit decodes cosign-p256.key's JSON into a generic map, applies
// edit, and re-encodes it in the same PEM type.
func envelopeEdit(t *testing.T, edit func(env map[string]any)) []byte {
	t.Helper()
	file, err := os.ReadFile(fixture("cosign-p256.key"))
	if err != nil {
		t.Fatal(err)
	}
	return reblock(t, file, func(body []byte) []byte {
		var env map[string]any
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatal(err)
		}
		edit(env)
		out, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		return out
	})
}

func TestEncryptedEnvelopeRefusals(t *testing.T) {
	kdf := func(env map[string]any) map[string]any { return env["kdf"].(map[string]any) }
	params := func(env map[string]any) map[string]any { return kdf(env)["params"].(map[string]any) }
	cipher := func(env map[string]any) map[string]any { return env["cipher"].(map[string]any) }
	cases := []struct {
		name string
		edit func(map[string]any)
		code string
		text string
	}{
		{"hostile N", func(e map[string]any) { params(e)["N"] = 1 << 30 }, "unsupported_key", "N=1073741824"},
		{"weak N", func(e map[string]any) { params(e)["N"] = 16384 }, "unsupported_key", "N=16384"},
		{"other r", func(e map[string]any) { params(e)["r"] = 16 }, "unsupported_key", "r=16"},
		{"other p", func(e map[string]any) { params(e)["p"] = 4 }, "unsupported_key", "p=4"},
		{"unknown kdf", func(e map[string]any) { kdf(e)["name"] = "argon2id" }, "unsupported_key", `"argon2id"`},
		{"unknown cipher", func(e map[string]any) { cipher(e)["name"] = "aes-gcm" }, "unsupported_key", `"aes-gcm"`},
		{"short nonce", func(e map[string]any) { cipher(e)["nonce"] = base64.StdEncoding.EncodeToString(make([]byte, 12)) }, "invalid_key", "nonce is 12 bytes"},
		{"no salt", func(e map[string]any) { delete(kdf(e), "salt") }, "invalid_key", "no scrypt salt"},
		{"short ciphertext", func(e map[string]any) { e["ciphertext"] = base64.StdEncoding.EncodeToString(make([]byte, 8)) }, "invalid_key", "too short"},
		{"salt not base64", func(e map[string]any) { kdf(e)["salt"] = "!!!" }, "invalid_key", "not valid JSON"},
		{"kdf not an object", func(e map[string]any) { e["kdf"] = "scrypt" }, "invalid_key", "not valid JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := envelopeEdit(t, c.edit)
			password, calls := countingPassword(testPassword)
			_, err := ParsePrivateKey(data, "hostile.key", password)
			checkKeyError(t, err, c.code, "hostile.key", c.text)
			assertNoSecrets(t, err.Error(), data, testPassword)
			if calls.Load() != 0 {
				t.Errorf("password was asked for before the envelope was checked")
			}
		})
	}

	// Accepted parameter sets other than the default still decrypt-check (here: wrong key).
	data := envelopeEdit(t, func(e map[string]any) { params(e)["N"] = 32768 })
	_, err := ParsePrivateKey(data, "n32768.key", func() ([]byte, error) { return []byte(testPassword), nil })
	checkKeyError(t, err, "wrong_password", "n32768.key", "")

	// A flipped ciphertext bit cannot be told from a wrong password (secretbox authenticates both).
	data = envelopeEdit(t, func(e map[string]any) {
		ct, _ := base64.StdEncoding.DecodeString(e["ciphertext"].(string))
		ct[len(ct)/2] ^= 1
		e["ciphertext"] = base64.StdEncoding.EncodeToString(ct)
	})
	_, err = ParsePrivateKey(data, "flipped.key", func() ([]byte, error) { return []byte(testPassword), nil })
	checkKeyError(t, err, "wrong_password", "flipped.key", "altered")
}

func TestEncryptedKeyWithGarbageInside(t *testing.T) {
	// A well-formed envelope around bytes that are not PKCS#8.
	body := sealForTest(t, []byte("not a pkcs8 key"), []byte("pw"))
	data := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED SIGSTORE PRIVATE KEY", Bytes: body})
	_, err := ParsePrivateKey(data, "inner.key", func() ([]byte, error) { return []byte("pw"), nil })
	checkKeyError(t, err, "invalid_key", "inner.key", "decrypted key is not a valid PKCS#8")
}

func TestPasswordSources(t *testing.T) {
	key, _ := os.ReadFile(fixture("cosign-p256.key"))
	emptyKey, _ := os.ReadFile(fixture("cosign-p256-empty-password.key"))

	_, err := ParsePrivateKey(key, "k.key", nil)
	checkKeyError(t, err, "password_required", "k.key", "no password source")

	_, err = ParsePrivateKey(key, "k.key", func() ([]byte, error) { return nil, errors.New("no tty") })
	checkKeyError(t, err, "password_required", "k.key", "no tty")

	t.Run("COSIGN_PASSWORD unset, no fallback", func(t *testing.T) {
		t.Setenv("COSIGN_PASSWORD", "")
		os.Unsetenv("COSIGN_PASSWORD") // t.Setenv restores the old value afterwards
		_, err := ParsePrivateKey(key, "k.key", EnvPassword(nil))
		checkKeyError(t, err, "password_required", "k.key", "COSIGN_PASSWORD is not set")
	})
	t.Run("COSIGN_PASSWORD unset, fallback used", func(t *testing.T) {
		t.Setenv("COSIGN_PASSWORD", "")
		os.Unsetenv("COSIGN_PASSWORD")
		fallback, calls := countingPassword(testPassword)
		if _, err := ParsePrivateKey(key, "k.key", EnvPassword(fallback)); err != nil {
			t.Fatal(err)
		}
		if calls.Load() != 1 {
			t.Errorf("fallback called %d times", calls.Load())
		}
	})
	t.Run("COSIGN_PASSWORD wins over fallback", func(t *testing.T) {
		t.Setenv("COSIGN_PASSWORD", testPassword)
		fallback, calls := countingPassword("wrong")
		if _, err := ParsePrivateKey(key, "k.key", EnvPassword(fallback)); err != nil {
			t.Fatal(err)
		}
		if calls.Load() != 0 {
			t.Errorf("fallback called although COSIGN_PASSWORD is set")
		}
	})
	t.Run("empty COSIGN_PASSWORD counts as set", func(t *testing.T) {
		t.Setenv("COSIGN_PASSWORD", "")
		fallback, calls := countingPassword("wrong")
		if _, err := ParsePrivateKey(emptyKey, "e.key", EnvPassword(fallback)); err != nil {
			t.Fatal(err)
		}
		if calls.Load() != 0 {
			t.Errorf("fallback called although COSIGN_PASSWORD is set to empty")
		}
		_, err := ParsePrivateKey(key, "k.key", EnvPassword(fallback))
		checkKeyError(t, err, "wrong_password", "k.key", "")
	})
	t.Run("unencrypted keys never ask", func(t *testing.T) {
		sec1, _ := os.ReadFile(fixture("openssl-p256-sec1.pem"))
		if _, err := ParsePrivateKey(sec1, "s.pem", func() ([]byte, error) {
			t.Error("password asked for an unencrypted key")
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestKeyErrorIsOnlyMatchesItsCode(t *testing.T) {
	err := error(&KeyError{Code: "wrong_password", Path: "p", Problem: "x"})
	if !errors.Is(err, ErrWrongPassword) || errors.Is(err, ErrInvalidKey) || errors.Is(err, ErrKeyNotFound) {
		t.Errorf("errors.Is matching is wrong for %v", err)
	}
	if got := err.Error(); got != "key p: x" {
		t.Errorf("Error() = %q", got)
	}
}
