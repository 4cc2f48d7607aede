package port

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// initCapturedStdout is what a library that grabbed os.Stdout at init holds.
var initCapturedStdout = os.Stdout

const childEnv = "OCISIGN_PORT_TEST_CHILD"

// TestMain lets the test binary act as a port program (the os/exec helper
// process pattern), so TakeStdout is tested in a real process.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(childPortMain())
	}
	os.Exit(m.Run())
}

func childPortMain() int {
	frames, err := TakeStdout()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	// Every kind of stray output a port program might produce.
	fmt.Println("stray fmt.Println")
	fmt.Fprintln(initCapturedStdout, "stray init-captured stdout")
	os.NewFile(1, "fd1").Write([]byte("stray write to fd 1\n"))
	sh := exec.Command("sh", "-c", "echo stray child process")
	sh.Stdout = initCapturedStdout
	_ = sh.Run()
	err = Serve(context.Background(), os.Stdin, frames, Config{
		Version: "child-1.0",
		Logf:    func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	return 0
}

// exchange talks to a port program over real pipes: stdout must hold only
// frames, the strays must be on stderr, and EOF on stdin ends the process.
func exchange(t *testing.T, cmd *exec.Cmd, wantVersion string) (stdout, stderr []byte) {
	t.Helper()
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	requests := [][]byte{
		[]byte(`{"id":1,"op":"version"}`),
		[]byte(`{"id":2,"op":"nope"}`),
		[]byte(`not json`),
	}
	for _, r := range requests {
		stdin.Write(appendFrame(nil, r))
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("port program after EOF: %v\nstderr:\n%s", err, errBuf.String())
	}
	frames := newFrameReader(bytes.NewReader(outBuf.Bytes()), 1<<20)
	var got []string
	for {
		f, err := frames.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("stdout is not only frames (%v): %q", err, outBuf.Bytes())
		}
		var v map[string]any
		if err := json.Unmarshal(f, &v); err != nil {
			t.Fatalf("frame is not JSON: %q", f)
		}
		got = append(got, string(f))
	}
	want := []string{
		`{"id":1,"ok":true,"version":"` + wantVersion + `","protocol":1,"max_frame_bytes":1048576}`,
		`{"id":2,"ok":false,"error":{"code":"unknown_op","message":"unknown op \"nope\" (expected sign, verify, public_key, connect, identity, version or exit)","retryable":false}}`,
		`{"id":null,"ok":false,"error":{"code":"invalid_json","message":"request is not valid JSON: invalid character 'o' in literal null (expecting 'u') (offset 2)","retryable":false}}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("replies:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	return outBuf.Bytes(), errBuf.Bytes()
}

func TestProcessStdoutCarriesOnlyFrames(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("fd redirection is Unix-only")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	_, stderr := exchange(t, cmd, "child-1.0")
	for _, stray := range []string{"stray fmt.Println", "stray init-captured stdout", "stray write to fd 1", "stray child process"} {
		if !bytes.Contains(stderr, []byte(stray)) {
			t.Errorf("%q did not reach stderr:\n%s", stray, stderr)
		}
	}
}

// The real binary: `ocisign port` speaks the protocol and exits at EOF.
func TestOcisignPortBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "ocisign")
	build := exec.Command("go", "build", "-ldflags=-X main.version=port-test", "-o", bin, "./cmd/ocisign")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ocisign: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "port")
	cmd.Env = append(os.Environ(), "OCISIGN_CONFIG=")
	exchange(t, cmd, "port-test")

	// The input ending inside a frame: exit status 1 and a line on stderr.
	cmd = exec.Command(bin, "port")
	cmd.Env = append(os.Environ(), "OCISIGN_CONFIG=")
	cmd.Stdin = bytes.NewReader(append(header(100), `{"id":1,`...))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || stdout.Len() != 0 ||
		!strings.Contains(stderr.String(), "input ended in the middle of a frame") {
		t.Fatalf("truncated input: %v, stdout %q, stderr %q", err, stdout.Bytes(), stderr.String())
	}
}
