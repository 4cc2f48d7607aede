package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ocisign/ocisign/internal/errcode"
	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/scrypt"
)

// Cosign's encrypted key body (go-securesystemslib encrypted.go). Field order
// is the wire order cosign writes.
type encryptedKey struct {
	KDF        scryptKDF       `json:"kdf"`
	Cipher     secretboxCipher `json:"cipher"`
	Ciphertext []byte          `json:"ciphertext"`
}

type scryptKDF struct {
	Name   string       `json:"name"`
	Params scryptParams `json:"params"`
	Salt   []byte       `json:"salt"`
}

type scryptParams struct {
	N int `json:"N"`
	R int `json:"r"`
	P int `json:"p"`
}

type secretboxCipher struct {
	Name  string `json:"name"`
	Nonce []byte `json:"nonce"`
}

const (
	kdfScrypt       = "scrypt"
	cipherSecretbox = "nacl/secretbox"
	nonceSize       = 24
	saltSize        = 32
	boxKeySize      = 32
)

// cosignWriteParams are what cosign generate-key-pair uses.
var cosignWriteParams = scryptParams{N: 65536, R: 8, P: 1}

// acceptedScryptParams mirrors securesystemslib's CheckParams: a file may not
// choose an N that makes scrypt allocate gigabytes.
var acceptedScryptParams = []scryptParams{{32768, 8, 1}, {65536, 8, 1}, {131072, 8, 1}}

// decryptCosignKey checks the envelope completely before asking for the
// password, so a broken file never prompts.
func decryptCosignKey(body []byte, password PasswordFunc) ([]byte, error) {
	var env encryptedKey
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, ErrInvalidKey.with("encrypted key body is not valid JSON (corrupt or truncated)")
	}
	if env.KDF.Name != kdfScrypt {
		return nil, ErrUnsupportedKey.with("encrypted key uses key derivation %q; only %q is supported", errcode.Clip(env.KDF.Name, maxQuoted), kdfScrypt)
	}
	if !scryptParamsAccepted(env.KDF.Params) {
		return nil, ErrUnsupportedKey.with("encrypted key uses scrypt parameters N=%d r=%d p=%d; only N=32768, 65536 or 131072 with r=8 p=1 are accepted (as cosign does)",
			env.KDF.Params.N, env.KDF.Params.R, env.KDF.Params.P)
	}
	if env.Cipher.Name != cipherSecretbox {
		return nil, ErrUnsupportedKey.with("encrypted key uses cipher %q; only %q is supported", errcode.Clip(env.Cipher.Name, maxQuoted), cipherSecretbox)
	}
	if len(env.KDF.Salt) == 0 {
		return nil, ErrInvalidKey.with("encrypted key has no scrypt salt (corrupt)")
	}
	if len(env.Cipher.Nonce) != nonceSize {
		return nil, ErrInvalidKey.with("encrypted key nonce is %d bytes, want %d (corrupt)", len(env.Cipher.Nonce), nonceSize)
	}
	if len(env.Ciphertext) < secretbox.Overhead {
		return nil, ErrInvalidKey.with("encrypted key ciphertext is too short (corrupt or truncated)")
	}
	if password == nil {
		return nil, ErrPasswordNeeded.with("the key is encrypted and no password source was given")
	}
	pw, err := password()
	if err != nil {
		var ke *KeyError
		if errors.As(err, &ke) {
			return nil, err
		}
		return nil, ErrPasswordNeeded.with("could not read the password: %v", err)
	}
	boxKey, err := scrypt.Key(pw, env.KDF.Salt, env.KDF.Params.N, env.KDF.Params.R, env.KDF.Params.P, boxKeySize)
	if err != nil {
		return nil, ErrInvalidKey.with("scrypt failed on the key's parameters")
	}
	var k [boxKeySize]byte
	var nonce [nonceSize]byte
	copy(k[:], boxKey)
	copy(nonce[:], env.Cipher.Nonce)
	der, ok := secretbox.Open(nil, env.Ciphertext, &nonce, &k)
	if !ok {
		return nil, ErrWrongPassword.with("the password does not decrypt this key: wrong password (COSIGN_PASSWORD or the one typed at the prompt), or the file was altered")
	}
	return der, nil
}

func scryptParamsAccepted(p scryptParams) bool {
	for _, a := range acceptedScryptParams {
		if p == a {
			return true
		}
	}
	return false
}

// EncryptPrivateKey encodes key as cosign generate-key-pair does: PKCS#8,
// sealed with NaCl secretbox under scrypt(password, N=65536, r=8, p=1), in an
// "ENCRYPTED SIGSTORE PRIVATE KEY" PEM. An empty password is allowed, as in cosign.
func EncryptPrivateKey(key crypto.Signer, password []byte) ([]byte, error) {
	if _, err := NewVerifier(key.Public()); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encrypt private key: %w", err)
	}
	env := encryptedKey{
		KDF:    scryptKDF{Name: kdfScrypt, Params: cosignWriteParams, Salt: make([]byte, saltSize)},
		Cipher: secretboxCipher{Name: cipherSecretbox, Nonce: make([]byte, nonceSize)},
	}
	if _, err := rand.Read(env.KDF.Salt); err != nil {
		return nil, fmt.Errorf("encrypt private key: %w", err)
	}
	if _, err := rand.Read(env.Cipher.Nonce); err != nil {
		return nil, fmt.Errorf("encrypt private key: %w", err)
	}
	boxKey, err := scrypt.Key(password, env.KDF.Salt, cosignWriteParams.N, cosignWriteParams.R, cosignWriteParams.P, boxKeySize)
	if err != nil {
		return nil, fmt.Errorf("encrypt private key: %w", err)
	}
	var k [boxKeySize]byte
	var nonce [nonceSize]byte
	copy(k[:], boxKey)
	copy(nonce[:], env.Cipher.Nonce)
	env.Ciphertext = secretbox.Seal(nil, der, &nonce, &k)
	body, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encrypt private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemSigstoreEncrypted, Bytes: body}), nil
}

// GenerateKeyPair writes a new ECDSA P-256 key as <prefix>.key (encrypted with
// password, mode 0600) and its public key as <prefix>.pub (mode 0644), the
// files cosign generate-key-pair writes. Existing files are refused
// (errors.Is(err, fs.ErrExist)) unless force is set. On error no new file is
// left behind.
func GenerateKeyPair(prefix string, password []byte, force bool) (keyPath, pubPath string, err error) {
	if prefix == "" {
		return "", "", errors.New("generate key pair: empty output prefix")
	}
	keyPath, pubPath = prefix+".key", prefix+".pub"
	for _, p := range []string{keyPath, pubPath} {
		st, err := os.Lstat(p)
		switch {
		case err != nil:
		case st.IsDir():
			return "", "", fmt.Errorf("generate key pair: %s is a directory", p)
		case !force:
			return "", "", &existsError{path: p}
		}
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generate key pair: %w", err)
	}
	keyPEM, err := EncryptPrivateKey(priv, password)
	if err != nil {
		return "", "", fmt.Errorf("generate key pair: %w", err)
	}
	v, err := NewVerifier(priv.Public())
	if err != nil {
		return "", "", fmt.Errorf("generate key pair: %w", err)
	}
	pubPEM, err := v.PublicKeyPEM()
	if err != nil {
		return "", "", fmt.Errorf("generate key pair: %w", err)
	}
	if force {
		err = replaceBoth(keyPath, keyPEM, pubPath, pubPEM)
	} else {
		err = createBoth(keyPath, keyPEM, pubPath, pubPEM)
	}
	if err != nil {
		return "", "", fmt.Errorf("generate key pair: %w", err)
	}
	return keyPath, pubPath, nil
}

// createBoth creates both files exclusively, so a file that appeared since
// the check is never overwritten; the key is removed again if the .pub fails.
func createBoth(keyPath string, keyPEM []byte, pubPath string, pubPEM []byte) error {
	if err := writeNew(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeNew(pubPath, pubPEM, 0o644); err != nil {
		os.Remove(keyPath)
		return err
	}
	return nil
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if err := finishFile(f, data, mode); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// replaceBoth writes both files to temporaries next to their targets and
// renames them into place only when both are complete.
func replaceBoth(keyPath string, keyPEM []byte, pubPath string, pubPEM []byte) error {
	keyTmp, err := writeTemp(keyPath, keyPEM, 0o600)
	if err != nil {
		return err
	}
	pubTmp, err := writeTemp(pubPath, pubPEM, 0o644)
	if err != nil {
		os.Remove(keyTmp)
		return err
	}
	if err := os.Rename(keyTmp, keyPath); err != nil {
		os.Remove(keyTmp)
		os.Remove(pubTmp)
		return err
	}
	if err := os.Rename(pubTmp, pubPath); err != nil {
		os.Remove(pubTmp)
		return fmt.Errorf("%s was written but %s could not be replaced, the pair does not match: %w", keyPath, pubPath, err)
	}
	return nil
}

func writeTemp(target string, data []byte, mode os.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".tmp*")
	if err != nil {
		return "", err
	}
	if err := finishFile(f, data, mode); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// finishFile sets mode explicitly, so the files get cosign's 0600/0644
// whatever the umask, then writes, syncs and closes f.
func finishFile(f *os.File, data []byte, mode os.FileMode) error {
	err := f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// existsError refuses to overwrite a key file. It matches fs.ErrExist
// without repeating its text.
type existsError struct{ path string }

func (e *existsError) Error() string {
	return fmt.Sprintf("generate key pair: %s already exists (use --force to overwrite it)", e.path)
}

func (e *existsError) Unwrap() error { return fs.ErrExist }
