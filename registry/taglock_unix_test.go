//go:build unix

package registry

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocisign/ocisign/internal/memregistry/memtest"
)

// lockingClient is a test client whose tag locks live in dir.
func lockingClient(t *testing.T, dir string) (*Client, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var logs []string
	c := newTestClient(Options{Logf: func(f string, a ...any) { mu.Lock(); logs = append(logs, fmt.Sprintf(f, a...)); mu.Unlock() }})
	c.locker = &tagLocker{candidates: func() []string { return []string{dir} }}
	return c, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), logs...) }
}

// signAndCheck signs once with c and checks the signature is there.
func signAndCheck(t *testing.T, c *Client, host string) {
	t.Helper()
	k := mustSigner(t)
	if _, err := c.Sign(ctx(t), SignRequest{Reference: host + "/app:v1", Signer: k}); err != nil {
		t.Fatalf("signing with an unusable lock directory failed: %v", err)
	}
	if validWith(t, host, "app", k) != 1 {
		t.Fatal("signature missing")
	}
}

func TestLockDirRefusedSigningGoesOnUnlocked(t *testing.T) {
	reg := newTestRegistry(t)
	memtest.PushImage(t, reg.host+"/app:v1")
	cases := []struct {
		name   string
		setup  func(t *testing.T) string // returns the candidate dir
		reason string
	}{
		{"mode 0777", func(t *testing.T) string {
			d := filepath.Join(t.TempDir(), "locks")
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
			os.Chmod(d, 0o777) // Mkdir's mode is masked by umask
			return d
		}, "mode 0777 lets other users in"},
		{"symlink", func(t *testing.T) string {
			base := t.TempDir()
			real := filepath.Join(base, "real")
			if err := os.Mkdir(real, 0o700); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(base, "locks")
			if err := os.Symlink(real, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, "it is a symlink"},
		{"not a directory", func(t *testing.T) string {
			f := filepath.Join(t.TempDir(), "locks")
			if err := os.WriteFile(f, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return f
		}, "it is not a directory"},
		{"parent unusable", func(t *testing.T) string {
			f := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(f, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(f, "locks")
		}, "not a directory"},
		{"owned by another user", func(t *testing.T) string {
			if os.Getuid() != 0 {
				t.Skip("making a directory owned by another uid needs root")
			}
			d := filepath.Join(t.TempDir(), "locks")
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(d, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return d
		}, "owned by uid 65534"},
		{"not writable", func(t *testing.T) string {
			if os.Getuid() == 0 {
				t.Skip("root can write into a 0500 directory")
			}
			d := filepath.Join(t.TempDir(), "locks")
			if err := os.Mkdir(d, 0o500); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(d, 0o700) })
			return d
		}, "not writable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.setup(t)
			c, logs := lockingClient(t, dir)
			signAndCheck(t, c, reg.host)
			signAndCheck(t, c, reg.host)
			refused, disabled := 0, 0
			for _, l := range logs() {
				if strings.Contains(l, "not using "+dir) && strings.Contains(l, tc.reason) {
					refused++
				}
				if strings.Contains(l, "signature tag locking is disabled") {
					disabled++
				}
			}
			if refused != 1 || disabled != 1 {
				t.Fatalf("want one refusal naming %q and one warning per client, got %d and %d: %q", tc.reason, refused, disabled, logs())
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 && tc.name != "symlink" {
				t.Fatalf("lock files were created in a refused directory: %v", entries)
			}
		})
	}
}

func TestLockDirCreatedPrivate(t *testing.T) {
	reg := newTestRegistry(t)
	memtest.PushImage(t, reg.host+"/app:v1")
	dir := filepath.Join(t.TempDir(), "locks")
	c, logs := lockingClient(t, dir)
	signAndCheck(t, c, reg.host)
	st, err := os.Lstat(dir)
	if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Fatalf("lock directory: %v %v", st, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("want one lock file, got %v", entries)
	}
	if fi, _ := entries[0].Info(); fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("lock file mode %v", fi.Mode())
	}
	if len(logs()) != 0 { // nothing about locking (results are the caller's to print)
		t.Fatalf("unexpected log lines: %q", logs())
	}
}

func TestLockFileSymlinkOrForeignRefused(t *testing.T) {
	reg := newTestRegistry(t)
	memtest.PushImage(t, reg.host+"/app:v1")
	dir := filepath.Join(t.TempDir(), "locks")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	for s := 0; s < lockStripes; s++ {
		name := fmt.Sprintf("sig-%03d.lock", s)
		if err := os.Symlink(filepath.Join(elsewhere, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	c, logs := lockingClient(t, dir)
	signAndCheck(t, c, reg.host)
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Fatalf("a symlinked lock file created %v", entries)
	}
	if !containsLog(logs(), "is a symlink") {
		t.Fatalf("no warning: %q", logs())
	}

	if os.Getuid() != 0 {
		t.Skip("a lock file owned by another uid needs root")
	}
	dir2 := filepath.Join(t.TempDir(), "locks")
	if err := os.Mkdir(dir2, 0o700); err != nil {
		t.Fatal(err)
	}
	for s := 0; s < lockStripes; s++ {
		p := filepath.Join(dir2, fmt.Sprintf("sig-%03d.lock", s))
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	c2, logs2 := lockingClient(t, dir2)
	signAndCheck(t, c2, reg.host)
	if !containsLog(logs2(), "not a regular file owned by us") {
		t.Fatalf("no warning: %q", logs2())
	}
}

// A signer that waits for another ocisign's lock says so, then signs when
// the lock is released.
func TestLockWaitIsLogged(t *testing.T) {
	reg := newTestRegistry(t)
	memtest.PushImage(t, reg.host+"/app:v1")
	dir := filepath.Join(t.TempDir(), "locks")
	c, logs := lockingClient(t, dir)
	signAndCheck(t, c, reg.host) // creates the tag's lock file
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("lock files: %v", entries)
	}
	// Hold it as "another ocisign" would (flock on its own open file).
	release, err := lockFile(context.Background(), filepath.Join(dir, entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: mustSigner(t)})
		done <- err
	}()
	deadline := time.After(10 * time.Second) // hang guard, not a timing assertion
	for !containsLog(logs(), "waiting for the signature tag lock held by another ocisign on this host") {
		select {
		case err := <-done:
			release()
			t.Fatalf("signed while the lock was held (%v): %q", err, logs())
		case <-deadline:
			release()
			t.Fatalf("no waiting notice: %q", logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestLockDirCandidatesIgnoreTMPDIR(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("TMPDIR", t.TempDir())
	fixed := filepath.Join("/tmp", fmt.Sprintf("ocisign-locks-%d", os.Getuid()))
	if got := lockDirCandidates(); got[0] != fixed {
		t.Fatalf("without XDG_RUNTIME_DIR the lock dir is %v, want %s first whatever TMPDIR says", got, fixed)
	}
	xdg := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	if got := lockDirCandidates(); got[0] != filepath.Join(xdg, "ocisign-locks") || got[1] != fixed {
		t.Fatalf("with XDG_RUNTIME_DIR: %v", got)
	}
	t.Setenv("XDG_RUNTIME_DIR", "relative/dir") // not absolute: ignored, as the spec says
	if got := lockDirCandidates(); got[0] != fixed {
		t.Fatalf("relative XDG_RUNTIME_DIR used: %v", got)
	}
}
