//go:build !unix

package registry

import (
	"context"
	"sync"
)

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
