package signing

import (
	"bytes"
	"encoding/pem"
	"errors"
	"os"
	"testing"
)

// FuzzDecryptCosignKey mutates the JSON envelope of a real cosign key and
// decrypts it with the right password: the result is a KeyError with a
// known code or exactly the original key (secretbox authenticates, so no
// altered ciphertext may decrypt). Envelope checks run before scrypt, so
// most inputs are cheap.
func FuzzDecryptCosignKey(f *testing.F) {
	raw, err := os.ReadFile("testdata/cosign-p256.key")
	if err != nil {
		f.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		f.Fatal("fixture is not PEM")
	}
	password := func() ([]byte, error) { return []byte(testPassword), nil }
	want, err := decryptCosignKey(block.Bytes, password)
	if err != nil {
		f.Fatalf("fixture does not decrypt: %v", err)
	}
	f.Add(block.Bytes)
	f.Add(bytes.Replace(block.Bytes, []byte(`"N":32768`), []byte(`"N":1073741824`), 1))
	f.Add(bytes.Replace(block.Bytes, []byte(`"nacl/secretbox"`), []byte(`"aes"`), 1))
	f.Add([]byte(`{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"AA=="},"cipher":{"name":"nacl/secretbox","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"ciphertext":"AAAAAAAAAAAAAAAAAAAAAA=="}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		der, err := decryptCosignKey(body, password)
		if err != nil {
			var ke *KeyError
			if !errors.As(err, &ke) || !knownCodes[ke.Code] {
				t.Fatalf("error %v (%T) is not a KeyError with a known code", err, err)
			}
			if bytes.Contains([]byte(err.Error()), []byte(testPassword)) {
				t.Fatal("error contains the password")
			}
			return
		}
		if !bytes.Equal(der, want) {
			t.Fatalf("an altered envelope decrypted to a different key")
		}
	})
}
