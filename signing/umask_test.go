//go:build unix

package signing

import (
	"path/filepath"
	"syscall"
	"testing"
)

// cosign's modes must hold whatever the umask (not parallel: umask is per process).
func TestGenerateKeyPairModesIgnoreUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for _, force := range []bool{false, true} {
		keyPath, pubPath, err := GenerateKeyPair(filepath.Join(t.TempDir(), "k"), nil, force)
		if err != nil {
			t.Fatal(err)
		}
		assertMode(t, keyPath, 0o600)
		assertMode(t, pubPath, 0o644)
	}
}
