//go:build !unix

package registry

import (
	"context"
	"os"
	"sync"
)

// fixedTempDir: none outside unix; the per-user temp directory is used.
const fixedTempDir = ""

// preparePrivateDir creates dir; the temp directory is per user here.
func preparePrivateDir(dir string) error {
	return os.MkdirAll(dir, 0o700)
}

// Without flock, appends are serialised within this process only.
var processLocks sync.Map // path → chan struct{}

func lockFile(ctx context.Context, path string) (func(), error) {
	v, _ := processLocks.LoadOrStore(path, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
