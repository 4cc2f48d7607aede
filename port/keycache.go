package port

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"

	"github.com/ocisign/ocisign/internal/bounded"
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

// keyEntry is one load, finished when done is closed.
type keyEntry struct {
	identity fileIdentity
	done     chan struct{}
	signer   *signing.Signer
	err      error
}

func newKeyCache(load func(path string) (*signing.Signer, error)) *keyCache {
	return &keyCache{load: load, entries: map[string]*keyEntry{}}
}

// keyWaitError is a key load the request stopped waiting for: its deadline
// passed or the port is shutting down. The load itself may go on and its
// result is cached for later requests.
type keyWaitError struct {
	path string
	err  error // the context's error
}

func (e *keyWaitError) Error() string { return fmt.Sprintf("loading key %s: %v", e.path, e.err) }
func (e *keyWaitError) Unwrap() error { return e.err }

// get returns the signer for path; concurrent first calls share one load.
// It returns when ctx ends even if the load is stuck (a file on a hung
// network mount): that load's goroutine stays blocked, not the request.
func (c *keyCache) get(ctx context.Context, path string) (*signing.Signer, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	info, err := os.Stat(abs)
	if err != nil {
		// Nothing to key the cache on: let the loader report the missing
		// or unreadable file in its own words.
		return waitFor(ctx, abs, func() (*signing.Signer, error) { return c.load(abs) })
	}
	if !info.Mode().IsRegular() {
		// A pipe's or device's identity says nothing about its content:
		// never cached; the loader refuses it without opening it, a
		// directory in its own words.
		return waitFor(ctx, abs, func() (*signing.Signer, error) { return c.load(abs) })
	}
	id := identityOf(info)

	c.mu.Lock()
	e := c.entries[abs]
	if e == nil || e.identity != id {
		e = &keyEntry{identity: id, done: make(chan struct{})}
		c.entries[abs] = e
		go c.fill(abs, e)
	}
	c.mu.Unlock()

	select {
	case <-e.done:
		return e.signer, e.err
	case <-ctx.Done():
		return nil, &keyWaitError{path: abs, err: ctx.Err()}
	}
}

// fill runs one load for e and publishes its result.
func (c *keyCache) fill(abs string, e *keyEntry) {
	defer close(e.done)
	e.signer, e.err = recoverLoad(abs, func() (*signing.Signer, error) { return c.load(abs) })
	// scrypt's 64 MiB buffer is garbage now, but it set the GC's heap goal
	// to twice that for the life of the port: collect it once.
	debug.FreeOSMemory()
	if e.err != nil && !deterministicKeyError(e.err) {
		c.mu.Lock()
		if c.entries[abs] == e {
			delete(c.entries, abs)
		}
		c.mu.Unlock()
	}
}

// recoverLoad turns a panic of load into an error: no request's recover
// covers a loader goroutine. The panic value is left out: it may quote the
// key file.
func recoverLoad[T any](path string, load func() (T, error)) (value T, err error) {
	defer func() {
		if p := recover(); p != nil {
			var zero T
			value, err = zero, fmt.Errorf("internal error while loading key %s", path)
		}
	}()
	return load()
}

// waitFor runs load (panics made errors) and returns its result, or a
// keyWaitError as soon as ctx ends; load may then stay blocked in its own
// goroutine, its result dropped.
func waitFor[T any](ctx context.Context, path string, load func() (T, error)) (T, error) {
	v, err := bounded.Wait(ctx, func() (T, error) { return recoverLoad(path, load) })
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return v, &keyWaitError{path: path, err: ctx.Err()}
	}
	return v, err
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
	case signing.ErrWrongPassword.Code, signing.ErrPasswordNeeded.Code, signing.ErrInvalidKey.Code, signing.ErrUnsupportedKey.Code:
		return true
	}
	return false
}
