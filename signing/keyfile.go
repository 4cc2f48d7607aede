package signing

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"

	"github.com/ocisign/ocisign/internal/bounded"
	"github.com/ocisign/ocisign/internal/errcode"
)

// MaxKeyFileSize bounds what a key file may hold. Real keys are a few KiB;
// the limit stops a wrong path (a disk image, /dev/zero) from being read whole.
const MaxKeyFileSize = 1 << 20

// PasswordFunc supplies the password of an encrypted key. It is called only
// when the key is encrypted.
type PasswordFunc func() ([]byte, error)

// EnvPassword reads COSIGN_PASSWORD whenever it is set, even to "" (cosign
// does the same); otherwise it calls fallback (a TTY prompt, say), and without
// one it fails with ErrPasswordNeeded.
func EnvPassword(fallback PasswordFunc) PasswordFunc {
	return func() ([]byte, error) {
		if v, ok := LookupEnvPassword(); ok {
			return []byte(v), nil
		}
		if fallback != nil {
			return fallback()
		}
		return nil, ErrPasswordNeeded.with("the key is encrypted and COSIGN_PASSWORD is not set (an empty value counts as set)")
	}
}

// PEM block types.
const (
	pemSigstoreEncrypted = "ENCRYPTED SIGSTORE PRIVATE KEY"
	pemCosignEncrypted   = "ENCRYPTED COSIGN PRIVATE KEY" // cosign v1's label; cosign still loads it
	pemPKCS8             = "PRIVATE KEY"
	pemSEC1              = "EC PRIVATE KEY"
	pemPKCS1             = "RSA PRIVATE KEY"
	pemECParameters      = "EC PARAMETERS"
	pemPKIX              = "PUBLIC KEY"
	pemPKCS1Public       = "RSA PUBLIC KEY"
)

// LoadPrivateKey reads a private key file in any format ParsePrivateKey takes.
func LoadPrivateKey(path string, password PasswordFunc) (*Signer, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	return ParsePrivateKey(b, path, password)
}

// LoadPublicKey reads a public key file in any format ParsePublicKey takes.
func LoadPublicKey(path string) (*Verifier, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	return ParsePublicKey(b, path)
}

// readKeyFile reads a key file that is a regular file of at most
// MaxKeyFileSize bytes; a pipe or device is refused before it is opened,
// so a read can never block.
func readKeyFile(path string) ([]byte, error) {
	b, err := bounded.ReadFile(path, MaxKeyFileSize)
	var notRegular *bounded.NotRegularError
	var large *bounded.TooLargeError
	switch {
	case err == nil:
		return b, nil
	case errors.As(err, &notRegular) && notRegular.Kind == "directory":
		return nil, &KeyError{Code: ErrKeyNotFound.Code, Path: path, Problem: "is a directory, not a key file"}
	case errors.As(err, &notRegular):
		return nil, &KeyError{Code: ErrInvalidKey.Code, Path: path,
			Problem: "not a regular file (a " + notRegular.Kind + "); keys are read from regular files only"}
	case errors.As(err, &large):
		return nil, tooLarge(path)
	case errors.Is(err, fs.ErrNotExist):
		return nil, &KeyError{Code: ErrKeyNotFound.Code, Path: path, Problem: "file does not exist"}
	case errors.Is(err, fs.ErrPermission):
		return nil, &KeyError{Code: ErrKeyNotFound.Code, Path: path, Problem: "permission denied reading the file"}
	}
	return nil, &KeyError{Code: ErrKeyNotFound.Code, Path: path, Problem: "cannot read the file: " + osReason(err)}
}

func tooLarge(path string) *KeyError {
	return &KeyError{Code: ErrInvalidKey.Code, Path: path,
		Problem: fmt.Sprintf("file is larger than %d bytes, too large to be a key file", MaxKeyFileSize)}
}

// osReason drops the path an *fs.PathError repeats; the KeyError names it once.
func osReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// ParsePrivateKey decodes a private key: cosign's encrypted PEM (asking
// password only then), or unencrypted PKCS#8, SEC1 (an openssl EC PARAMETERS
// block before it is skipped) or PKCS#1. path only labels errors.
func ParsePrivateKey(pemBytes []byte, path string, password PasswordFunc) (*Signer, error) {
	s, err := parsePrivateKey(pemBytes, path, password)
	if err != nil {
		return nil, at(err, path)
	}
	return s, nil
}

func parsePrivateKey(data []byte, path string, password PasswordFunc) (*Signer, error) {
	block, err := firstKeyBlock(data, "a private key")
	if err != nil {
		return nil, err
	}
	if err := refuseOpenSSLEncryption(block, path); err != nil {
		return nil, err
	}
	var key any
	switch block.Type {
	case pemSigstoreEncrypted, pemCosignEncrypted:
		der, err := decryptCosignKey(block.Bytes, password)
		if err != nil {
			return nil, err
		}
		key, err = parsePKCS8(der, "the decrypted key")
		if err != nil {
			return nil, err
		}
	case pemPKCS8:
		key, err = parsePKCS8(block.Bytes, "PRIVATE KEY block")
	case pemSEC1:
		key, err = parseSEC1(block.Bytes)
	case pemPKCS1:
		key, err = parsePKCS1(block.Bytes)
	case "DSA PRIVATE KEY":
		return nil, ErrUnsupportedKey.with("DSA keys are not supported; %s", supportedKeys)
	case "OPENSSH PRIVATE KEY":
		return nil, ErrUnsupportedKey.with("the OpenSSH key format is not supported; convert the key to PKCS#8 " +
			"(`ssh-keygen -p -m PKCS8 -f <copy of the key>`) or generate one with `ocisign generate-key-pair`")
	case pemPKIX, pemPKCS1Public:
		return nil, ErrInvalidKey.with("this is a public key (%s); signing needs the private key", block.Type)
	case "CERTIFICATE":
		return nil, ErrInvalidKey.with("this is a certificate; signing needs the private key")
	default:
		return nil, ErrInvalidKey.with("PEM block type %q is not a private key format ocisign reads "+
			"(ENCRYPTED SIGSTORE PRIVATE KEY, PRIVATE KEY, EC PRIVATE KEY, RSA PRIVATE KEY)", errcode.Clip(block.Type, maxQuoted))
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, unsupportedKeyType(key)
	}
	return NewSigner(signer)
}

// firstKeyBlock returns the first PEM block that is not openssl's EC PARAMETERS.
func firstKeyBlock(data []byte, want string) (*pem.Block, error) {
	if len(data) > MaxKeyFileSize {
		return nil, ErrInvalidKey.with("%d bytes is too large to be a key file", len(data))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ErrInvalidKey.with("file is empty, expected %s in PEM format", want)
	}
	rest := data
	for {
		block, next := pem.Decode(rest)
		if block == nil {
			if bytes.Contains(rest, []byte("-----BEGIN")) {
				return nil, ErrInvalidKey.with("PEM block is corrupt or truncated (a BEGIN line without a valid base64 body and END line)")
			}
			if len(rest) != len(data) {
				return nil, ErrInvalidKey.with("file holds only EC PARAMETERS, no key")
			}
			return nil, ErrInvalidKey.with("not a PEM file, expected %s (-----BEGIN ... -----)", want)
		}
		if block.Type != pemECParameters {
			return block, nil
		}
		rest = next
	}
}

// refuseOpenSSLEncryption explains how to turn an openssl-encrypted key into
// one ocisign (and cosign) reads.
func refuseOpenSSLEncryption(block *pem.Block, path string) error {
	if block.Type != "ENCRYPTED PRIVATE KEY" && !x509.IsEncryptedPEMBlock(block) { // deprecated for decrypting; used only to detect
		return nil
	}
	if path == "" {
		path = "<key>"
	}
	return ErrUnsupportedKey.with("openssl-encrypted keys (%s) are not supported; decrypt it with "+
		"`openssl pkey -in %s -out plain.key` and use that, or turn it into a cosign key with "+
		"`cosign import-key-pair --key plain.key` (which reads COSIGN_PASSWORD)", describeEncrypted(block), path)
}

func describeEncrypted(block *pem.Block) string {
	if block.Type == "ENCRYPTED PRIVATE KEY" {
		return "ENCRYPTED PRIVATE KEY"
	}
	return errcode.Clip(block.Type, maxQuoted) + " with Proc-Type: 4,ENCRYPTED"
}

// maxQuoted bounds a name from a key or log file quoted in an error.
const maxQuoted = 40

// ParsePublicKey decodes a PKIX "PUBLIC KEY" or PKCS#1 "RSA PUBLIC KEY" PEM,
// the forms cosign verify --key reads. Certificates are refused as cosign
// does; path only labels errors.
func ParsePublicKey(pemBytes []byte, path string) (*Verifier, error) {
	v, err := parsePublicKey(pemBytes)
	if err != nil {
		return nil, at(err, path)
	}
	return v, nil
}

func parsePublicKey(data []byte) (*Verifier, error) {
	block, err := firstKeyBlock(data, "a public key")
	if err != nil {
		return nil, err
	}
	var pub any
	switch block.Type {
	case pemPKIX:
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, describePKIXFailure(block.Bytes)
		}
	case pemPKCS1Public:
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			if err := checkRSABits(pkcs1PublicModulusBits(block.Bytes)); err != nil {
				return nil, err
			}
			return nil, ErrInvalidKey.with("RSA PUBLIC KEY block is not a valid PKCS#1 public key (corrupt or truncated)")
		}
	case "CERTIFICATE":
		return nil, ErrInvalidKey.with("this is a certificate, not a public key (cosign refuses it too); " +
			"extract the key with `openssl x509 -pubkey -noout -in <cert> > cosign.pub`")
	case pemSigstoreEncrypted, pemCosignEncrypted, pemPKCS8, pemSEC1, pemPKCS1, "ENCRYPTED PRIVATE KEY", "DSA PRIVATE KEY", "OPENSSH PRIVATE KEY":
		return nil, ErrInvalidKey.with("this is a private key (%s); verifying needs the public key "+
			"(`ocisign public-key --key <private key>` prints it)", block.Type)
	default:
		return nil, ErrInvalidKey.with("PEM block type %q is not a public key format ocisign reads (PUBLIC KEY, RSA PUBLIC KEY)", errcode.Clip(block.Type, maxQuoted))
	}
	return NewVerifier(pub)
}

func describePKIXFailure(der []byte) error {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(der, &spki); err == nil && len(rest) == 0 {
		switch alg := spki.Algorithm.Algorithm; {
		case alg.Equal(oidPublicKeyECDSA):
			if err := checkCurveParams(spki.Algorithm.Parameters.FullBytes); err != nil {
				return err
			}
		case alg.Equal(oidPublicKeyRSA):
			if err := checkRSABits(pkcs1PublicModulusBits(spki.PublicKey.RightAlign())); err != nil {
				return err
			}
		case alg.Equal(oidPublicKeyEd25519):
		default:
			return unsupportedAlgorithm(alg)
		}
	}
	return ErrInvalidKey.with("PUBLIC KEY block is not a valid PKIX public key (corrupt or truncated)")
}

func pkcs1PublicModulusBits(der []byte) int {
	var pk struct {
		N *big.Int
		E int
	}
	if _, err := asn1.Unmarshal(der, &pk); err != nil || pk.N == nil {
		return 0
	}
	return pk.N.BitLen()
}
