//go:build unix

package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// fixedTempDir is where the per-user lock directory goes when
// XDG_RUNTIME_DIR is unset: fixed, so every TMPDIR shares it.
const fixedTempDir = "/tmp"

// preparePrivateDir creates dir (mode 0700) if missing and checks that it is
// a directory, not a symlink, owned by us and closed to group and others.
func preparePrivateDir(dir string) error {
	st, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		st, err = os.Lstat(dir)
	}
	if err != nil {
		return err
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		return errors.New("it is a symlink")
	}
	if !st.IsDir() {
		return errors.New("it is not a directory")
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Getuid() {
		return fmt.Errorf("it is owned by uid %d, not by us (uid %d)", sys.Uid, os.Getuid())
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("its mode %04o lets other users in (want 0700)", perm)
	}
	if err := syscall.Access(dir, 0o3); err != nil { // W_OK|X_OK
		return fmt.Errorf("it is not writable: %v", err)
	}
	return nil
}

// lockFile takes an exclusive flock on path. flock belongs to the open file,
// so goroutines of one process exclude each other too. A symlink or a file
// owned by someone else is refused.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("lock file %s is a symlink", path)
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !st.Mode().IsRegular() || (ok && int(sys.Uid) != os.Getuid()) {
		f.Close()
		return nil, fmt.Errorf("lock file %s is not a regular file owned by us", path)
	}
	err = pollLock(ctx, func() (bool, error) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EINTR) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil // closing releases the lock
}
