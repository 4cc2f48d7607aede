package port

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ocisign/ocisign/internal/errcode"

	"github.com/ocisign/ocisign/signing"
)

// countingLoader loads real key files with COSIGN_PASSWORD and counts loads.
func countingLoader(count *atomic.Int32) func(string) (*signing.Signer, error) {
	return func(path string) (*signing.Signer, error) {
		count.Add(1)
		return signing.LoadPrivateKey(path, signing.EnvPassword(nil))
	}
}

func newKeyPair(t *testing.T, dir, password string, force bool) (keyPath, pubPEM string) {
	t.Helper()
	keyPath, pubPath, err := signing.GenerateKeyPair(filepath.Join(dir, "cosign"), []byte(password), force)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	return keyPath, string(pub)
}

// plainKey writes an unencrypted PKCS#8 P-256 key (no scrypt: fast under
// -race) and returns its public PEM.
func plainKey(t *testing.T, path string) string {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // a new inode, as editors and key tools do
		t.Fatal(err)
	}
	s, err := signing.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := s.Verifier().PublicKeyPEM()
	return string(pub)
}

// N concurrent public_key requests for one encrypted key decrypt it once.
func TestKeyIsDecryptedOnceForConcurrentRequests(t *testing.T) {
	t.Setenv("COSIGN_PASSWORD", "correct horse")
	keyPath, pubPEM := newKeyPair(t, t.TempDir(), "correct horse", false)
	var loads atomic.Int32
	cfg := testConfig(map[string]string{"OCIBUILD_SIGN_KEY": keyPath})
	cfg.LoadPrivateKey = countingLoader(&loads)
	s := startSession(t, cfg)
	const n = 24
	for i := range n {
		if i%2 == 0 {
			s.sendFrame([]byte(`{"id":1,"op":"public_key"}`)) // from OCIBUILD_SIGN_KEY
		} else {
			s.sendFrame([]byte(`{"id":2,"op":"public_key","sign_key":"` + keyPath + `"}`))
		}
	}
	for range n {
		r := s.next()
		if !*r.OK || r.PublicKey != pubPEM {
			t.Fatalf("got %s, want the key's public PEM", r.raw)
		}
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if got := loads.Load(); got != 1 {
		t.Fatalf("key loaded %d times, want 1", got)
	}
}

// Direct calls from many goroutines share one load.
func TestKeyCacheSingleFlight(t *testing.T) {
	keyPath := filepath.Join(t.TempDir(), "k.pem")
	plainKey(t, keyPath)
	var loads atomic.Int32
	release := make(chan struct{})
	cache := newKeyCache(func(p string) (*signing.Signer, error) {
		<-release // hold the first load so the others pile up behind it
		return countingLoader(&loads)(p)
	})
	var wg sync.WaitGroup
	signers := make([]*signing.Signer, 16)
	for i := range signers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := cache.get(context.Background(), keyPath)
			if err != nil {
				t.Error(err)
			}
			signers[i] = s
		}()
	}
	close(release)
	wg.Wait()
	if loads.Load() != 1 {
		t.Fatalf("%d loads", loads.Load())
	}
	for _, s := range signers {
		if s != signers[0] || s == nil {
			t.Fatal("callers got different signers")
		}
	}
}

// A replaced key file is loaded again; an unchanged one is not. Relative
// and absolute names of one file share the entry.
func TestKeyCacheReloadsAChangedFile(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "cosign.key")
	pub1 := plainKey(t, keyPath)
	var loads atomic.Int32
	cache := newKeyCache(countingLoader(&loads))
	pemOf := func(path string) string {
		s, err := cache.get(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := s.Verifier().PublicKeyPEM()
		return string(b)
	}
	if pemOf(keyPath) != pub1 {
		t.Fatal("wrong key")
	}
	t.Chdir(dir)
	if pemOf("cosign.key") != pub1 || pemOf("./cosign.key") != pub1 || loads.Load() != 1 {
		t.Fatalf("unchanged file loaded %d times", loads.Load())
	}
	pub2 := plainKey(t, keyPath) // replaces cosign.key
	if pub2 == pub1 {
		t.Fatal("generated the same key twice")
	}
	if pemOf(keyPath) != pub2 || loads.Load() != 2 {
		t.Fatalf("replaced file: %d loads", loads.Load())
	}
	if pemOf(keyPath) != pub2 || loads.Load() != 2 {
		t.Fatalf("second use of the new file: %d loads", loads.Load())
	}
	if len(cache.entries) != 1 {
		t.Fatalf("%d cache entries for one file", len(cache.entries))
	}
}

// A wrong password fails the same way for the same file: scrypt is not run
// again. A missing file is asked again (it may appear).
func TestKeyCacheFailures(t *testing.T) {
	dir := t.TempDir()
	keyPath, _ := newKeyPair(t, dir, "right", false)
	t.Setenv("COSIGN_PASSWORD", "wrong")
	var loads atomic.Int32
	cache := newKeyCache(countingLoader(&loads))
	for range 3 {
		_, err := cache.get(context.Background(), keyPath)
		if code, _ := errcode.Of(err); code != "wrong_password" {
			t.Fatalf("got %v (%s)", err, code)
		}
	}
	if loads.Load() != 1 {
		t.Fatalf("wrong password tried %d times", loads.Load())
	}

	missing := filepath.Join(dir, "later.key")
	for range 2 {
		_, err := cache.get(context.Background(), missing)
		if !errors.Is(err, signing.ErrKeyNotFound) {
			t.Fatalf("got %v", err)
		}
	}
	if loads.Load() != 3 {
		t.Fatalf("missing file asked %d times, want 2", loads.Load()-1)
	}
	plainKey(t, missing)
	if _, err := cache.get(context.Background(), missing); err != nil {
		t.Fatalf("key created after a miss: %v", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
