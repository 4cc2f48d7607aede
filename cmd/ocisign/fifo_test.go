package main

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Nothing the CLI reads can make it hang: a FIFO as key, public key, log
// key or config is refused at once (opening a FIFO blocks until a writer
// comes; `sign --key FIFO --timeout 2s` used to never return).
func TestFilesThatWouldBlockAreRefused(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	keyPath, pubPath := testKeyPair(t)
	img := "127.0.0.1:1/x/y:1"
	cases := []struct {
		name string
		args []string
		exit int
		want string
	}{
		{"sign --key", []string{"sign", "--key", fifo, "--timeout", "2s", img}, exitFailed, "not a regular file (a named pipe (FIFO))"},
		{"verify --key", []string{"verify", "--key", fifo, "--timeout", "2s", img}, exitFailed, "not a regular file (a named pipe (FIFO))"},
		{"sign --rekor-public-key", []string{"sign", "--key", keyPath, "--rekor-url", "http://127.0.0.1:1", "--rekor-public-key", fifo, "--timeout", "2s", img},
			exitFailed, "not a regular file (a named pipe (FIFO))"},
		{"verify --rekor-public-key", []string{"verify", "--key", pubPath, "--rekor-public-key", fifo, "--timeout", "2s", img},
			exitFailed, "not a regular file (a named pipe (FIFO))"},
		{"--config", []string{"--config", fifo, "sign", "--key", keyPath, img}, exitUsage, "config " + fifo + ": not a regular file (a named pipe (FIFO))"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan struct{})
			var code int
			var stderr string
			go func() {
				defer close(done)
				code, _, stderr = runCLI(t, tc.args...)
			}()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("the CLI hung on a FIFO")
			}
			if code != tc.exit || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tc.exit, tc.want)
			}
		})
	}
}
