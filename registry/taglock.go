package registry

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Registries have no conditional PUT, so two writers that read the same
// .sig manifest both push "old layers + mine" and the later one drops the
// other's layer unless it is read back in time. Writers on one host (port
// requests, parallel CLI runs) are serialised per tag with a file lock;
// across hosts the read-back and merge in finishAppend is what remains.

// localTagLocks switches the host-wide lock off (tests that exercise the
// read-back and merge between two clients of one process).
var localTagLocks = true

// lockStripes bounds the number of lock files; two tags that share a
// stripe only wait for each other.
const lockStripes = 256

func lockDir() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("ocisign-locks-%d", os.Getuid()))
}

// lockTags locks the .sig tags of jobs (in a fixed order, so two recursive
// signs never deadlock) until the returned func is called. A lock that
// cannot be set up is skipped: locking narrows a race, it is not required.
func (c *Client) lockTags(ctx context.Context, conn *repoConn, jobs []*signJob) (func(), error) {
	var stripes []int
	for _, job := range jobs {
		sum := sha256.Sum256([]byte(conn.repo.Tag(SignatureTag(job.subject)).Name()))
		stripes = append(stripes, int(binary.BigEndian.Uint32(sum[:4])%lockStripes))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	var held []func()
	unlock := func() {
		for i := len(held) - 1; i >= 0; i-- {
			held[i]()
		}
	}
	dir := lockDir()
	if !localTagLocks {
		return unlock, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return unlock, nil
	}
	for _, s := range stripes {
		release, err := lockFile(ctx, filepath.Join(dir, fmt.Sprintf("sig-%03d.lock", s)))
		if err != nil {
			unlock()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			c.logf("not locking the signature tag locally: %v", err)
			return func() {}, nil
		}
		held = append(held, release)
	}
	return unlock, nil
}

// pollLock retries a non-blocking lock until it succeeds or ctx ends.
func pollLock(ctx context.Context, try func() (bool, error)) error {
	wait := time.Millisecond
	for {
		ok, err := try()
		if err != nil || ok {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 10*time.Millisecond)
	}
}
