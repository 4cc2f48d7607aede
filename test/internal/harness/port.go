package harness

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
)

// Port is a running `ocisign port` process driven with {packet,4} frames.
type Port struct {
	Cmd    *exec.Cmd
	Stderr *bytes.Buffer // the port's log

	stdin  io.WriteCloser
	stdout io.ReadCloser
	wmu    sync.Mutex
	rmu    sync.Mutex
}

// StartPort runs `bin port args...` with env.
func StartPort(bin string, env []string, args ...string) (*Port, error) {
	cmd := exec.Command(bin, append([]string{"port"}, args...)...)
	cmd.Env = env
	p := &Port{Cmd: cmd, Stderr: &bytes.Buffer{}}
	cmd.Stderr = &lockedWriter{w: p.Stderr}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if p.stdout, err = cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// Send writes one raw frame (any bytes, the header is added).
func (p *Port) Send(payload []byte) error {
	buf := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	return p.SendRaw(append(buf, payload...))
}

// SendRaw writes bytes as they are (to build broken frames).
func (p *Port) SendRaw(b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_, err := p.stdin.Write(b)
	return err
}

// Recv reads one reply frame.
func (p *Port) Recv() ([]byte, error) {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	var h [4]byte
	if _, err := io.ReadFull(p.stdout, h[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(h[:]))
	_, err := io.ReadFull(p.stdout, b)
	return b, err
}

// Reply is the common shape of a port reply.
type Reply struct {
	ID    json.RawMessage `json:"id"`
	OK    bool            `json:"ok"`
	Error *struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		Retryable bool   `json:"retryable"`
	} `json:"error"`
	Version         string `json:"version"`
	SignatureDigest string `json:"signature_digest"`
	Signed          []struct {
		Digest          string `json:"digest"`
		SignatureDigest string `json:"signature_digest"`
		Deduplicated    bool   `json:"deduplicated"`
	} `json:"signed"`
	Raw []byte `json:"-"`
}

// Call sends req (marshalled to JSON) and reads one reply.
func (p *Port) Call(req any) (*Reply, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if err := p.Send(b); err != nil {
		return nil, err
	}
	return p.Next()
}

// Next reads and decodes one reply.
func (p *Port) Next() (*Reply, error) {
	b, err := p.Recv()
	if err != nil {
		return nil, err
	}
	var r Reply
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("reply is not JSON: %v: %q", err, b)
	}
	r.Raw = b
	return &r, nil
}

// Close closes stdin and waits for the process to exit.
func (p *Port) Close() error {
	p.stdin.Close()
	return p.Cmd.Wait()
}

// Pid is the port process id.
func (p *Port) Pid() int { return p.Cmd.Process.Pid }

// PeakRSSKiB reads VmHWM (peak resident set) of a running process.
func PeakRSSKiB(pid int) (int, error) { return procStatusKiB(pid, "VmHWM") }

// RSSKiB reads VmRSS (current resident set) of a running process.
func RSSKiB(pid int) (int, error) { return procStatusKiB(pid, "VmRSS") }

func procStatusKiB(pid int, field string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		var kib int
		if n, _ := fmt.Sscanf(string(line), field+": %d kB", &kib); n == 1 {
			return kib, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
