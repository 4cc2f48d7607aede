package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Result is what one subprocess did.
type Result struct {
	Cmd            string
	Code           int
	Stdout, Stderr string
	Elapsed        time.Duration
	// MaxRSSKiB is the process's peak resident set (getrusage), 0 if unknown.
	MaxRSSKiB int64
}

func (r Result) String() string {
	return fmt.Sprintf("$ %s\nexit %d\n--- stdout ---\n%s\n--- stderr ---\n%s", r.Cmd, r.Code,
		Tail([]byte(r.Stdout), 4000), Tail([]byte(r.Stderr), 4000))
}

// Run executes bin with args, env and a hang guard in the current
// directory; err is only for a command that could not run or did not finish.
func Run(env []string, guard time.Duration, bin string, args ...string) (Result, error) {
	return RunIn("", env, guard, bin, args...)
}

// RunIn is Run with the working directory dir.
func RunIn(dir string, env []string, guard time.Duration, bin string, args ...string) (Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env, cmd.Dir = env, dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := Result{Cmd: filepath.Base(bin) + " " + strings.Join(args, " "), Stdout: stdout.String(),
		Stderr: stderr.String(), Elapsed: time.Since(start)}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.MaxRSSKiB = ru.Maxrss // KiB on Linux
		}
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.Exited():
		r.Code = exitErr.ExitCode()
	case ctx.Err() != nil:
		return r, fmt.Errorf("%s: did not finish within %s (hang guard)\n%s", r.Cmd, guard, r)
	default:
		return r, fmt.Errorf("%s: %v", r.Cmd, err)
	}
	return r, nil
}
