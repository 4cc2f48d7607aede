package signing

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func addFixtureSeeds(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "*"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
			f.Add(b[:len(b)/2])
		}
	}
	f.Add([]byte("-----BEGIN EC PARAMETERS-----\n-----END EC PARAMETERS-----\n"))
	f.Add([]byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\ne30=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"))
}

var knownCodes = map[string]bool{
	"unsupported_key": true, "wrong_password": true, "key_not_found": true, "invalid_key": true, "password_required": true,
}

func checkFuzzError(t *testing.T, err error) {
	var ke *KeyError
	if !errors.As(err, &ke) {
		t.Fatalf("error %v (%T) is not a *KeyError", err, err)
	}
	if !knownCodes[ke.Code] || !strings.Contains(err.Error(), "fuzz.key") {
		t.Fatalf("bad KeyError: code %q, message %q", ke.Code, err)
	}
}

// FuzzParsePrivateKey: arbitrary bytes give a Signer or a KeyError, never a
// panic. The password source fails so that no input costs an scrypt run.
func FuzzParsePrivateKey(f *testing.F) {
	addFixtureSeeds(f)
	noPassword := func() ([]byte, error) { return nil, ErrPasswordNeeded.with("fuzzing") }
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParsePrivateKey(data, "fuzz.key", noPassword)
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		sig, err := s.Sign(data)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		if err := s.Verifier().Verify(data, sig); err != nil {
			t.Fatalf("own signature does not verify: %v", err)
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	addFixtureSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParsePublicKey(data, "fuzz.key")
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		if err := v.Verify(data, data); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("input verified as its own signature: %v", err)
		}
		if _, err := v.PublicKeyPEM(); err != nil {
			t.Fatalf("PublicKeyPEM: %v", err)
		}
	})
}
