// The log's processes: start, wait until ready, stop.

package rekor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process; done closes when it has exited.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

func (l *Log) start(ctx context.Context, name, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(l.Dir, "logs", name+".log")
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child keeps its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Dir = l.Dir
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group (so a stop reaches any children), and die with the
	// test binary if it is killed before Stop runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	l.logf("started %s (pid %d)", name, cmd.Process.Pid)
	return p, nil
}

// PIDs lists the child process IDs, in start order.
func (l *Log) PIDs() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var pids []int
	for _, p := range l.procs {
		pids = append(pids, p.cmd.Process.Pid)
	}
	return pids
}

// exited reports a child that died during start-up, with its log's tail.
func (l *Log) exited() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.procs {
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.logPath)
			return fmt.Errorf("%s exited during start-up (%v); %s ends with:\n%s", p.name, p.err, p.logPath, tail(b))
		default:
		}
	}
	return nil
}

func (l *Log) waitPort(ctx context.Context, name string, port int) error {
	return l.poll(ctx, name, func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

func (l *Log) waitRekor(ctx context.Context) error {
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) ([]byte, bool) {
		resp, err := client.Get(l.URL + path)
		if err != nil {
			return nil, false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return b, resp.StatusCode == http.StatusOK
	}
	if err := l.poll(ctx, "rekor-server", func() bool { _, ok := get("/api/v1/log"); return ok }); err != nil {
		return err
	}
	served, ok := get("/api/v1/log/publicKey")
	if !ok {
		return errors.New("rekor-server answers but GET /api/v1/log/publicKey fails")
	}
	if !bytes.Equal(bytes.TrimSpace(served), bytes.TrimSpace(l.PublicKeyPEM)) {
		return fmt.Errorf("rekor-server serves a public key other than the signer key it was given:\n%s", served)
	}
	return nil
}

func (l *Log) poll(ctx context.Context, name string, ready func() bool) error {
	for {
		if ready() {
			return nil
		}
		if err := l.exited(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (logs in %s)", name, ctx.Err(), filepath.Join(l.Dir, "logs"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop ends rekor-server, then the Trillian servers, then MariaDB (stopping
// MariaDB first leaves Trillian hanging on SIGTERM), each with SIGTERM and,
// after a grace period, SIGKILL to its process group. It waits for every
// process and removes the temporary directory. Calling it again is a no-op.
func (l *Log) Stop() error {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return nil
	}
	l.stopped = true
	procs := append([]*proc(nil), l.procs...)
	l.mu.Unlock()

	// Reverse start order: rekor-server, the two Trillian servers together
	// (they shut down slowly and hold nothing worth a clean exit), MariaDB.
	var groups [][]*proc
	for i := len(procs) - 1; i >= 0; i-- {
		n := len(groups)
		if n > 0 && strings.HasPrefix(procs[i].name, "trillian") && strings.HasPrefix(groups[n-1][0].name, "trillian") {
			groups[n-1] = append(groups[n-1], procs[i])
			continue
		}
		groups = append(groups, []*proc{procs[i]})
	}
	var errs []error
	for _, g := range groups {
		var wg sync.WaitGroup
		gErrs := make([]error, len(g))
		for i, p := range g {
			wg.Add(1)
			go func() {
				defer wg.Done()
				gErrs[i] = stopProc(p, stopGrace(p.name))
				l.logf("stopped %s", p.name)
			}()
		}
		wg.Wait()
		errs = append(errs, gErrs...)
	}
	if l.removeDir && len(errs) == 0 {
		if err := os.RemoveAll(l.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stopGrace is how long a process gets after SIGTERM: MariaDB flushes its
// files, the others only need to close connections.
func stopGrace(name string) time.Duration {
	if name == "mariadbd" {
		return 20 * time.Second
	}
	return 3 * time.Second
}

func stopProc(p *proc, grace time.Duration) error {
	pgid := p.cmd.Process.Pid
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			select {
			case <-p.done:
			case <-time.After(grace):
				return fmt.Errorf("%s (pid %d) survived SIGKILL", p.name, pgid)
			}
		}
	}
	// Whatever else is left in its group (nothing, normally).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

func tail(b []byte) string {
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
