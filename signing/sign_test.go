package signing

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"
)

// checkEncoding verifies sig independently with the standard library, using
// the hash and encoding cosign's verifier uses for the key type.
func checkEncoding(t *testing.T, pub crypto.PublicKey, payload, sig []byte) {
	t.Helper()
	var ok bool
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		var digest []byte
		switch k.Curve {
		case elliptic.P256():
			d := sha256.Sum256(payload)
			digest = d[:]
		case elliptic.P384():
			d := sha512.Sum384(payload)
			digest = d[:]
		case elliptic.P521():
			d := sha512.Sum512(payload)
			digest = d[:]
		}
		ok = ecdsa.VerifyASN1(k, digest, sig)
	case *rsa.PublicKey:
		d := sha256.Sum256(payload)
		ok = rsa.VerifyPKCS1v15(k, crypto.SHA256, d[:], sig) == nil
	case ed25519.PublicKey:
		ok = len(sig) == ed25519.SignatureSize && ed25519.Verify(k, payload, sig) // pure, not Ed25519ph
	}
	if !ok {
		t.Errorf("signature is not the encoding cosign verify expects for %T", pub)
	}
}

func TestSignVerifyEveryAlgorithm(t *testing.T) {
	payload, err := Payload("registry.example.com:5000/team/app", "sha256:"+strings.Repeat("0f", 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := GenerateSigner() // a key no fixture holds
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file string
		alg  Algorithm
	}{
		{"openssl-p256-pkcs8.pem", ECDSAP256SHA256},
		{"openssl-p384-sec1.pem", ECDSAP384SHA384},
		{"openssl-p521-sec1.pem", ECDSAP521SHA512},
		{"openssl-rsa2048-pkcs1.pem", RSAPKCS1SHA256},
		{"openssl-rsa4096-pkcs8.pem", RSAPKCS1SHA256},
		{"openssl-ed25519-pkcs8.pem", Ed25519},
	} {
		t.Run(string(c.alg)+"/"+c.file, func(t *testing.T) {
			t.Parallel()
			s, err := LoadPrivateKey(fixture(c.file), nil)
			if err != nil {
				t.Fatal(err)
			}
			if s.Algorithm() != c.alg || s.Verifier().Algorithm() != c.alg {
				t.Fatalf("algorithm = %s/%s, want %s", s.Algorithm(), s.Verifier().Algorithm(), c.alg)
			}
			sig, err := s.Sign(payload)
			if err != nil {
				t.Fatal(err)
			}
			v := s.Verifier()
			if err := v.Verify(payload, sig); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			checkEncoding(t, v.PublicKey(), payload, sig)

			tampered := bytes.Replace(payload, []byte("team/app"), []byte("team/apq"), 1)
			if err := v.Verify(tampered, sig); !errors.Is(err, ErrBadSignature) {
				t.Errorf("tampered payload: err = %v, want ErrBadSignature", err)
			}
			flipped := append([]byte(nil), sig...)
			flipped[len(flipped)/2] ^= 0x01
			if err := v.Verify(payload, flipped); !errors.Is(err, ErrBadSignature) {
				t.Errorf("flipped signature: err = %v, want ErrBadSignature", err)
			}
			for _, junk := range [][]byte{nil, {}, {0x30}, bytes.Repeat([]byte{0xff}, 600)} {
				if err := v.Verify(payload, junk); !errors.Is(err, ErrBadSignature) {
					t.Errorf("junk signature %x: err = %v, want ErrBadSignature", junk, err)
				}
			}
			if err := other.Verifier().Verify(payload, sig); !errors.Is(err, ErrBadSignature) {
				t.Errorf("wrong key: err = %v, want ErrBadSignature", err)
			}
			if err := v.Verify(payload, mustSign(t, other, payload)); !errors.Is(err, ErrBadSignature) {
				t.Errorf("signature by another key: err = %v, want ErrBadSignature", err)
			}
		})
	}
}

func mustSign(t *testing.T, s *Signer, payload []byte) []byte {
	t.Helper()
	sig, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestWrongKeySameAlgorithm(t *testing.T) {
	a, _ := GenerateSigner()
	b, _ := GenerateSigner()
	payload := []byte("payload")
	if err := b.Verifier().Verify(payload, mustSign(t, a, payload)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("err = %v, want ErrBadSignature", err)
	}
}

// TestVerifyCosignBlobSignature checks a signature cosign sign-blob made over
// the payload.json fixture.
func TestVerifyCosignBlobSignature(t *testing.T) {
	payload, err := os.ReadFile(fixture("payload.json"))
	if err != nil {
		t.Fatal(err)
	}
	b64, err := os.ReadFile(fixture("payload.json.cosign-p256.sig"))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b64)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := LoadPublicKey(fixture("cosign-p256.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(payload, sig); err != nil {
		t.Fatalf("cosign's signature does not verify: %v", err)
	}
	if err := v.Verify(append(payload, '\n'), sig); !errors.Is(err, ErrBadSignature) {
		t.Errorf("payload with a trailing newline: err = %v, want ErrBadSignature", err)
	}
	wrong, _ := LoadPublicKey(fixture("cosign-p256-empty-password.pub"))
	if err := wrong.Verify(payload, sig); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong key: err = %v, want ErrBadSignature", err)
	}
	// The payload cosign signed is exactly what Payload builds.
	ours, err := Payload("127.0.0.1:5055/test/app", "sha256:ef9f14c3b3e6fa3b4fc6d8a4e3d1e0a0b8b4ed6fda3e5d4a1bd2e1a1f0c9be82", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, payload) {
		t.Errorf("Payload = %s\nfixture = %s", ours, payload)
	}
}

func TestNewVerifierRefusals(t *testing.T) {
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	for _, c := range []struct {
		name string
		pub  crypto.PublicKey
		code string
		text string
	}{
		{"p224", p224.Public(), "unsupported_key", "P-224"},
		{"short ed25519", ed25519.PublicKey{1, 2, 3}, "invalid_key", "3 bytes"},
		{"ecdsa without curve", &ecdsa.PublicKey{}, "invalid_key", "no curve"},
		{"rsa without modulus", &rsa.PublicKey{}, "invalid_key", "no modulus"},
		{"string", "not a key", "unsupported_key", "string"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewVerifier(c.pub)
			checkKeyError(t, err, c.code, "", c.text)
		})
	}
	_, err := NewSigner(p224)
	checkKeyError(t, err, "unsupported_key", "", "P-224")
}
