package signing

import (
	"crypto"
	"crypto/dsa"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
)

// Algorithm names the signature scheme a key implies.
type Algorithm string

const (
	ECDSAP256SHA256 Algorithm = "ecdsa-p256-sha256"
	ECDSAP384SHA384 Algorithm = "ecdsa-p384-sha384"
	ECDSAP521SHA512 Algorithm = "ecdsa-p521-sha512"
	RSAPKCS1SHA256  Algorithm = "rsa-pkcs1v15-sha256"
	Ed25519         Algorithm = "ed25519"
)

// Signer signs payloads with one private key. It is safe for concurrent use.
type Signer struct {
	key       crypto.Signer
	algorithm Algorithm
	verifier  *Verifier
}

// NewSigner wraps an in-memory private key, refusing algorithms cosign
// verifiers cannot check (see AlgorithmFor).
func NewSigner(key crypto.Signer) (*Signer, error) {
	v, err := NewVerifier(key.Public())
	if err != nil {
		return nil, err
	}
	return &Signer{key: key, algorithm: v.algorithm, verifier: v}, nil
}

// GenerateSigner makes a fresh ECDSA P-256 signer (cosign's default).
func GenerateSigner() (*Signer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return NewSigner(k)
}

// Algorithm reports the scheme this signer uses.
func (s *Signer) Algorithm() Algorithm { return s.algorithm }

// Warning is "" for keys every cosign verifier accepts by default. P-384 and
// P-521 signatures hash with SHA-384/SHA-512, which verifiers only check when
// told to, so callers should show this text to the user.
func (s *Signer) Warning() string {
	switch s.algorithm {
	case ECDSAP384SHA384:
		return "ECDSA P-384 keys sign over SHA-384: verifiers need `cosign verify --signature-digest-algorithm sha384` " +
			"(Kyverno signatureAlgorithm: sha384, policy-controller hashAlgorithm: sha384); a P-256 key works everywhere by default"
	case ECDSAP521SHA512:
		return "ECDSA P-521 keys sign over SHA-512: verifiers need `cosign verify --signature-digest-algorithm sha512` " +
			"(Kyverno signatureAlgorithm: sha512, policy-controller hashAlgorithm: sha512); a P-256 key works everywhere by default"
	}
	return ""
}

// Verifier returns the matching public-key verifier.
func (s *Signer) Verifier() *Verifier { return s.verifier }

// PrivateKey exposes the key for re-encoding (key generation, tests).
func (s *Signer) PrivateKey() crypto.Signer { return s.key }

// Sign returns the raw signature over payload: ASN.1 ECDSA, PKCS#1 v1.5 RSA
// or pure Ed25519, the encodings cosign verify accepts by default.
func (s *Signer) Sign(payload []byte) ([]byte, error) {
	switch s.algorithm {
	case Ed25519:
		return s.key.Sign(rand.Reader, payload, crypto.Hash(0))
	default:
		h := s.verifier.newHash()
		h.Write(payload)
		return s.key.Sign(rand.Reader, h.Sum(nil), s.verifier.hash)
	}
}

// Verifier checks signatures with one public key.
type Verifier struct {
	pub       crypto.PublicKey
	algorithm Algorithm
	hash      crypto.Hash
}

// NewVerifier accepts the public key types ocisign can verify.
func NewVerifier(pub crypto.PublicKey) (*Verifier, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == nil {
			return nil, ErrInvalidKey.with("ECDSA public key has no curve")
		}
		switch k.Curve {
		case elliptic.P256():
			return &Verifier{pub: k, algorithm: ECDSAP256SHA256, hash: crypto.SHA256}, nil
		case elliptic.P384():
			return &Verifier{pub: k, algorithm: ECDSAP384SHA384, hash: crypto.SHA384}, nil
		case elliptic.P521():
			return &Verifier{pub: k, algorithm: ECDSAP521SHA512, hash: crypto.SHA512}, nil
		}
		return nil, ErrUnsupportedKey.with("ECDSA curve %s is not supported; %s", curveName(k.Curve), supportedKeys)
	case *rsa.PublicKey:
		if k.N == nil {
			return nil, ErrInvalidKey.with("RSA public key has no modulus")
		}
		if bits := k.N.BitLen(); bits < 2048 || bits > 4096 {
			return nil, ErrUnsupportedKey.with("RSA key of %d bits is not supported: cosign verifiers accept 2048 to 4096 bits", bits)
		}
		return &Verifier{pub: k, algorithm: RSAPKCS1SHA256, hash: crypto.SHA256}, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, ErrInvalidKey.with("Ed25519 public key has %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		return &Verifier{pub: k, algorithm: Ed25519}, nil
	case *dsa.PublicKey:
		return nil, ErrUnsupportedKey.with("DSA keys are not supported; %s", supportedKeys)
	case *ecdh.PublicKey:
		return nil, ErrUnsupportedKey.with("%s is a key-agreement key and cannot sign; %s", ecdhName(k.Curve()), supportedKeys)
	}
	return nil, ErrUnsupportedKey.with("key type %T is not supported; %s", pub, supportedKeys)
}

// supportedKeys ends every "unsupported" message so users know what to use.
const supportedKeys = "use ECDSA P-256 (recommended), RSA 2048 to 4096 bits or Ed25519"

func ecdhName(c ecdh.Curve) string {
	if c == ecdh.X25519() {
		return "X25519"
	}
	return fmt.Sprintf("ECDH %v", c)
}

// Algorithm reports the scheme this verifier checks.
func (v *Verifier) Algorithm() Algorithm { return v.algorithm }

// PublicKey returns the key.
func (v *Verifier) PublicKey() crypto.PublicKey { return v.pub }

func (v *Verifier) newHash() hash.Hash {
	switch v.hash {
	case crypto.SHA384:
		return sha512.New384()
	case crypto.SHA512:
		return sha512.New()
	}
	return sha256.New()
}

// Verify checks sig over payload.
func (v *Verifier) Verify(payload, sig []byte) error {
	var ok bool
	switch k := v.pub.(type) {
	case ed25519.PublicKey:
		ok = ed25519.Verify(k, payload, sig)
	case *ecdsa.PublicKey:
		h := v.newHash()
		h.Write(payload)
		ok = ecdsa.VerifyASN1(k, h.Sum(nil), sig)
	case *rsa.PublicKey:
		h := v.newHash()
		h.Write(payload)
		ok = rsa.VerifyPKCS1v15(k, v.hash, h.Sum(nil), sig) == nil
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}

// PublicKeyPEM encodes the key as a PKIX "PUBLIC KEY" PEM block, the form
// cosign writes to cosign.pub.
func (v *Verifier) PublicKeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(v.pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ErrBadSignature means a signature does not verify with the key.
var ErrBadSignature = errors.New("signature does not verify with this key")

// KeyError is a refusal to use a key file. Code is a stable snake_case word
// (the port protocol sends it); Path and Problem never include key bytes.
type KeyError struct {
	Code    string
	Path    string
	Problem string
}

// ErrorCode gives the code of the error table (internal/errcode.Of).
func (e *KeyError) ErrorCode() (string, bool) { return e.Code, false }

func (e *KeyError) Error() string {
	if e.Path == "" {
		return e.Problem
	}
	return fmt.Sprintf("key %s: %s", e.Path, e.Problem)
}

// Is makes errors.Is(err, ErrUnsupportedKey) match any KeyError of that code.
func (e *KeyError) Is(target error) bool {
	t, ok := target.(*KeyError)
	return ok && t.Code == e.Code && t.Path == "" && t.Problem == ""
}

// Sentinels for errors.Is; each KeyError carries one of these codes.
var (
	ErrUnsupportedKey = &KeyError{Code: "unsupported_key"}
	ErrWrongPassword  = &KeyError{Code: "wrong_password"}
	ErrKeyNotFound    = &KeyError{Code: "key_not_found"}
	ErrInvalidKey     = &KeyError{Code: "invalid_key"}
	ErrPasswordNeeded = &KeyError{Code: "password_required"}
)

func (e *KeyError) with(format string, args ...any) *KeyError {
	return &KeyError{Code: e.Code, Problem: fmt.Sprintf(format, args...)}
}

// at returns err naming path when err is a KeyError without one.
func at(err error, path string) error {
	var ke *KeyError
	if errors.As(err, &ke) && ke.Path == "" && ke.Problem != "" {
		return &KeyError{Code: ke.Code, Path: path, Problem: ke.Problem}
	}
	return err
}

func curveName(c elliptic.Curve) string {
	if p := c.Params(); p != nil && p.Name != "" {
		return p.Name
	}
	return "(unnamed)"
}
