package registry

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Registries have no conditional PUT, so two writers that read the same
// .sig manifest both push "old layers + mine" and the later one drops the
// other's layer unless it is noticed in time. Writers on one host (port
// requests, parallel CLI runs) are serialised per tag with a file lock;
// across hosts only the checks in finishAppend remain (docs/design.md).
//
// The lock directory is per user and does not depend on TMPDIR, so CI jobs
// on one runner with different TMPDIRs still share it:
//
//	$XDG_RUNTIME_DIR/ocisign-locks   when XDG_RUNTIME_DIR is set (private by spec)
//	/tmp/ocisign-locks-<uid>         otherwise (unix)
//	$TMPDIR/ocisign-locks-<uid>      only when /tmp cannot be used
//
// A directory is used only if it is a real directory (not a symlink) owned
// by us with no group/other permissions: in a shared /tmp another user
// could otherwise create it first and hold our locks. When none qualifies,
// signing goes on unlocked, with a warning.

// lockStripes bounds the number of lock files; two tags that share a
// stripe only wait for each other.
const lockStripes = 256

// lockWaitNotice is how long acquiring may take before we say we wait.
const lockWaitNotice = time.Second

// lockDirCandidates lists the lock directories to try, best first.
func lockDirCandidates() []string {
	var dirs []string
	if xdg := os.Getenv("XDG_RUNTIME_DIR"); xdg != "" && filepath.IsAbs(xdg) {
		dirs = append(dirs, filepath.Join(xdg, "ocisign-locks"))
	}
	perUser := fmt.Sprintf("ocisign-locks-%d", os.Getuid())
	if fixedTempDir != "" {
		dirs = append(dirs, filepath.Join(fixedTempDir, perUser))
	}
	if t := filepath.Join(os.TempDir(), perUser); !slices.Contains(dirs, t) {
		dirs = append(dirs, t)
	}
	return dirs
}

// tagLocker picks the lock directory once per Client and remembers it.
type tagLocker struct {
	candidates func() []string
	once       sync.Once
	dir        string // "" = locking disabled
}

// directory returns the usable lock directory, or "" after logging why
// there is none. Each refusal is logged once.
func (l *tagLocker) directory(logf func(string, ...any)) string {
	l.once.Do(func() {
		for _, d := range l.candidates() {
			err := preparePrivateDir(d)
			if err == nil {
				l.dir = d
				break
			}
			logf("not using %s for signature tag locks: %v", d, err)
		}
		if l.dir == "" {
			logf("warning: signature tag locking is disabled (no private lock directory); concurrent signers on this host may lose signatures")
		}
	})
	return l.dir
}

// lockTags locks the .sig tags of jobs (in a fixed order, so two recursive
// signs never deadlock) until the returned func is called. A lock that
// cannot be set up is skipped with a warning: locking narrows a race, it is
// not required.
func (c *Client) lockTags(ctx context.Context, conn *repoConn, jobs []*signJob) (func(), error) {
	return c.locker.lock(ctx, c.logf, conn, jobs)
}

func (l *tagLocker) lock(ctx context.Context, logf func(string, ...any), conn *repoConn, jobs []*signJob) (func(), error) {
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
	dir := l.directory(logf)
	if dir == "" {
		return unlock, nil
	}
	// Say once, after a second, that we are waiting (not hung).
	notice := time.AfterFunc(lockWaitNotice, func() {
		logf("waiting for the signature tag lock held by another ocisign on this host (%s)", dir)
	})
	defer notice.Stop()
	for _, s := range stripes {
		release, err := lockFile(ctx, filepath.Join(dir, fmt.Sprintf("sig-%03d.lock", s)))
		if err != nil {
			unlock()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			logf("warning: not locking the signature tag on this host: %v", err)
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
