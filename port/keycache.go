package port

import (
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"

	"github.com/ocisign/ocisign/signing"
)

// keyCache keeps decrypted signing keys for the life of the port so scrypt
// runs once per key file, not once per request. Entries are keyed by the
// absolute path and hold the file identity they were loaded from; a file
// whose identity changed (replaced, rewritten) is loaded again.
type keyCache struct {
	load func(path string) (*signing.Signer, error)

	mu      sync.Mutex
	entries map[string]*keyEntry
}

type keyEntry struct {
	identity fileIdentity
	once     sync.Once
	signer   *signing.Signer
	err      error
}

func newKeyCache(load func(path string) (*signing.Signer, error)) *keyCache {
	return &keyCache{load: load, entries: map[string]*keyEntry{}}
}

// get returns the signer for path; concurrent first calls share one load.
func (c *keyCache) get(path string) (*signing.Signer, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	info, err := os.Stat(abs)
	if err != nil {
		// Nothing to key the cache on: let the loader report the missing
		// or unreadable file in its own words.
		return c.load(abs)
	}
	id := identityOf(info)

	c.mu.Lock()
	e := c.entries[abs]
	if e == nil || e.identity != id {
		e = &keyEntry{identity: id}
		c.entries[abs] = e
	}
	c.mu.Unlock()

	e.once.Do(func() {
		e.signer, e.err = c.load(abs)
		// scrypt's 64 MiB buffer is garbage now, but it set the GC's heap
		// goal to twice that for the life of the port: collect it once.
		debug.FreeOSMemory()
	})
	if e.err != nil && !deterministicKeyError(e.err) {
		c.mu.Lock()
		if c.entries[abs] == e {
			delete(c.entries, abs)
		}
		c.mu.Unlock()
	}
	return e.signer, e.err
}

// deterministicKeyError reports failures that loading the same file with the
// same environment would repeat (the port cannot see a new COSIGN_PASSWORD),
// so they are cached with the file identity. Others (file vanished between
// stat and read, I/O errors) are retried by the next request.
func deterministicKeyError(err error) bool {
	var ke *signing.KeyError
	if !errors.As(err, &ke) {
		return false
	}
	switch ke.Code {
	case "wrong_password", "password_required", "invalid_key", "unsupported_key":
		return true
	}
	return false
}
