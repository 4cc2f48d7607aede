package badinput

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The built binary given a FIFO where it reads a file: refused at once with
// the file named (it used to block in open(2): `sign --key FIFO --timeout 2s`
// never returned). The hang guard of ocisign() fails the test otherwise.
func TestFIFOInputsAreRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	img := env.Reg.Addr + "/bad/app:1"
	for _, tc := range []struct {
		args []string
		exit int
		want string
	}{
		{[]string{"sign", "--key", fifo, "--timeout", "2s", img}, 1, fifo + ": not a regular file (a named pipe (FIFO))"},
		{[]string{"verify", "--key", fifo, "--timeout", "2s", img}, 1, fifo + ": not a regular file (a named pipe (FIFO))"},
		{[]string{"--config", fifo, "sign", "--key", "k.key", img}, 2, "config " + fifo + ": not a regular file (a named pipe (FIFO))"},
	} {
		r := ocisign(t, dir, nil, tc.args...)
		if r.Code != tc.exit || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%v: want exit %d and %q:\n%s", tc.args, tc.exit, tc.want, r)
		}
	}
}
