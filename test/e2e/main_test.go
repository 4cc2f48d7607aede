// Package e2e runs the ocisign binary against a real registry process and
// real cosign v2 and v3 binaries. It is skipped unless OCISIGN_E2E=1; then
// every missing tool is a failure, never a skip (`make test` sets it).
//
// Environment (set by test/run-tests.sh):
//
//	OCISIGN_E2E=1
//	OCISIGN_COSIGN_V2      cosign v2.6.5 (default: $OCISIGN_TOOLS_DIR/cosign-v2.6.5)
//	OCISIGN_COSIGN_V3      cosign v3.1.3 (default: $OCISIGN_TOOLS_DIR/cosign-v3.1.3)
//	OCISIGN_REGISTRY_BIN   CNCF distribution (default: Debian's /usr/bin/docker-registry)
//
// OCISIGN_TOOLS_DIR defaults to ~/.cache/ocisign-tools, where
// test/tools/build.sh puts the pinned builds.
//
// Debugging: OCISIGN_E2E_LOG=1 logs every command (use with -v);
// OCISIGN_E2E_KEEP=1 keeps the temp dir (registry log, keys).
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testPassword is COSIGN_PASSWORD for every key the harness makes; tests
// check that it never shows up in ocisign's output.
const testPassword = "e2e-Pa55word-must-not-leak"

// harness is the shared state TestMain prepares.
var harness struct {
	tmp      string // root of everything the run writes
	home     string // HOME for subprocesses
	repoRoot string // the ocisign checkout
	ocisign  string // freshly built binary
	// ocisignErr is why ocisign did not build; tests that need it fail
	// with it while the cosign-only tests still run.
	ocisignErr error
	cosign     map[string]string
	openssl    string
	registry   string // "127.0.0.1:<port>"
}

// cosignVersions are the cosign major versions the tests run, oldest first;
// cosignPins are the releases test/tools/build.sh builds.
var (
	cosignVersions = []string{"v2", "v3"}
	cosignPins     = map[string]string{"v2": "v2.6.5", "v3": "v3.1.3"}
)

func TestMain(m *testing.M) {
	if os.Getenv("OCISIGN_E2E") != "1" {
		fmt.Println("e2e: skipped (set OCISIGN_E2E=1 and the tool paths, or run `make test`)")
		os.Exit(0)
	}
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	stop, err := setUp()
	defer stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: set-up: %v\n", err)
		return 1
	}
	return m.Run()
}

// setUp finds the tools, builds ocisign and starts the registry.
// The returned stop func is always safe to call.
func setUp() (stop func(), err error) {
	stops := []func(){}
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	tmp, err := os.MkdirTemp("", "ocisign-e2e-")
	if err != nil {
		return stop, err
	}
	stops = append(stops, func() {
		if os.Getenv("OCISIGN_E2E_KEEP") == "" {
			os.RemoveAll(tmp)
		} else {
			fmt.Fprintf(os.Stderr, "e2e: kept %s\n", tmp)
		}
	})
	harness.tmp = tmp
	harness.home = filepath.Join(tmp, "home")
	for _, d := range []string{harness.home, filepath.Join(harness.home, ".docker"), filepath.Join(tmp, "tuf")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return stop, err
		}
	}

	toolsDir := os.Getenv("OCISIGN_TOOLS_DIR")
	if toolsDir == "" {
		home, _ := os.UserHomeDir()
		toolsDir = filepath.Join(home, ".cache", "ocisign-tools")
	}
	harness.cosign = map[string]string{}
	var missing []string
	for _, v := range cosignVersions {
		envName := "OCISIGN_COSIGN_" + strings.ToUpper(v)
		p, err := toolPath(envName, filepath.Join(toolsDir, "cosign-"+cosignPins[v]))
		if err != nil {
			missing = append(missing, err.Error())
			continue
		}
		if err := checkCosignVersion(p, cosignPins[v]); err != nil {
			missing = append(missing, fmt.Sprintf("%s=%s: %v", envName, p, err))
			continue
		}
		harness.cosign[v] = p
	}
	registryBin, err := toolPath("OCISIGN_REGISTRY_BIN", "/usr/bin/docker-registry")
	if err != nil {
		missing = append(missing, err.Error())
	}
	if harness.openssl, err = exec.LookPath("openssl"); err != nil {
		missing = append(missing, "openssl not found in PATH")
	}
	if len(missing) > 0 {
		return stop, fmt.Errorf("missing tools (OCISIGN_E2E=1 makes this a failure):\n  %s", strings.Join(missing, "\n  "))
	}

	if harness.repoRoot, err = filepath.Abs(filepath.Join("..", "..")); err != nil {
		return stop, err
	}
	harness.ocisign = filepath.Join(tmp, "bin", "ocisign")
	build := exec.Command("go", "build", "-o", harness.ocisign, "./cmd/ocisign")
	build.Dir = harness.repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		harness.ocisignErr = fmt.Errorf("go build ./cmd/ocisign: %v\n%s", err, tail(out, 4000))
		fmt.Fprintf(os.Stderr, "e2e: FAIL: %v\n", harness.ocisignErr)
	}

	regStop, err := startRegistry(registryBin, filepath.Join(tmp, "registry"))
	stops = append(stops, regStop)
	if err != nil {
		return stop, err
	}

	return stop, nil
}

// toolPath reads an executable path from envName (or takes defaultPath) and
// checks that it is an executable file.
func toolPath(envName, defaultPath string) (string, error) {
	p := os.Getenv(envName)
	if p == "" {
		p = defaultPath
	}
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("%s=%s: %v", envName, p, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s=%s is not an executable file", envName, p)
	}
	return p, nil
}

// checkCosignVersion makes sure the tests run the pinned release.
func checkCosignVersion(bin, want string) error {
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("`version` failed: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "GitVersion:"); ok {
			if got := strings.TrimSpace(v); got != want {
				return fmt.Errorf("is cosign %s, want %s (run test/tools/build.sh)", got, want)
			}
			return nil
		}
	}
	return fmt.Errorf("`version` printed no GitVersion line")
}

// startRegistry runs `docker-registry serve` on a free loopback port with
// filesystem storage under dir, and waits until /v2/ answers.
func startRegistry(bin, dir string) (stop func(), err error) {
	stop = func() {}
	if err := os.MkdirAll(filepath.Join(dir, "storage"), 0o700); err != nil {
		return stop, err
	}
	var lastErr error
	// A port picked by listening on :0 can be taken before the registry binds
	// it; try a few ports before giving up.
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return stop, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		config := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: ocisign-e2e-not-a-secret
`, filepath.Join(dir, "storage"), addr)
		configPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
			return stop, err
		}
		logPath := filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt))
		logFile, err := os.Create(logPath)
		if err != nil {
			return stop, err
		}
		cmd := exec.Command(bin, "serve", configPath)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		// The registry dies with the test binary even if it is killed.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			logFile.Close()
			return stop, fmt.Errorf("starting %s: %v", bin, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop = func() {
			_ = cmd.Process.Kill()
			<-exited
			logFile.Close()
		}
		if err := waitForRegistry(addr, exited); err != nil {
			stop()
			stop = func() {}
			logBytes, _ := os.ReadFile(logPath)
			lastErr = fmt.Errorf("registry on %s did not come up: %v\n--- %s ---\n%s", addr, err, logPath, tail(logBytes, 2000))
			continue
		}
		harness.registry = addr
		return stop, nil
	}
	return stop, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitForRegistry polls GET /v2/ until it answers 200, the process exits or
// a generous start-up bound passes (a hang guard, not a timing assertion).
func waitForRegistry(addr string, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("process exited: %v", werr)
		case <-ctx.Done():
			return fmt.Errorf("gave up waiting: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}
