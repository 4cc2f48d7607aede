package bounded

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestReadFileRefusesWhatCouldHang(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 101), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var nr *NotRegularError
		if _, err := ReadFile(fifo, 100); !errors.As(err, &nr) || nr.Kind != "named pipe (FIFO)" {
			t.Errorf("fifo: %v", err)
		}
		if _, err := ReadFile("/dev/zero", 100); !errors.As(err, &nr) || nr.Kind != "character device" {
			t.Errorf("/dev/zero: %v", err)
		}
		if _, err := ReadFile(dir, 100); !errors.As(err, &nr) || nr.Kind != "directory" {
			t.Errorf("directory: %v", err)
		}
		var tl *TooLargeError
		if _, err := ReadFile(big, 100); !errors.As(err, &tl) {
			t.Errorf("big: %v", err)
		}
		if b, err := ReadFile(ok, 100); err != nil || string(b) != "key" {
			t.Errorf("ok: %q %v", b, err)
		}
		if _, err := ReadFile(filepath.Join(dir, "missing"), 100); !IsNotExist(err) {
			t.Errorf("missing: %v", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ReadFile hung")
	}
}

func TestWaitEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	block := make(chan struct{})
	defer close(block)
	_, err := Wait(ctx, func() (int, error) { <-block; return 1, nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	v, err := Wait(context.Background(), func() (int, error) { return 7, nil })
	if v != 7 || err != nil {
		t.Fatalf("got %d %v", v, err)
	}
}
