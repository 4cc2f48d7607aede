// Package harness starts the real parts the end-to-end, fault, concurrency
// and benchmark programs run against: the Debian docker-registry process,
// the pinned cosign binaries and a freshly built ocisign.
package harness

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
	"time"
)

// CosignPins are the cosign releases test/tools/build.sh builds, by major version.
var CosignPins = map[string]string{"v2": "v2.6.5", "v3": "v3.1.3"}

// Tools are the external programs the tests drive.
type Tools struct {
	Cosign   map[string]string // "v2", "v3" → binary
	Registry string            // CNCF distribution (docker-registry)
}

// FindTools reads OCISIGN_COSIGN_V2/V3, OCISIGN_REGISTRY_BIN and
// OCISIGN_TOOLS_DIR (default ~/.cache/ocisign-tools) and checks the pins.
func FindTools() (Tools, error) {
	toolsDir := os.Getenv("OCISIGN_TOOLS_DIR")
	if toolsDir == "" {
		home, _ := os.UserHomeDir()
		toolsDir = filepath.Join(home, ".cache", "ocisign-tools")
	}
	t := Tools{Cosign: map[string]string{}}
	var missing []string
	for _, v := range []string{"v2", "v3"} {
		envName := "OCISIGN_COSIGN_" + strings.ToUpper(v)
		p, err := ToolPath(envName, filepath.Join(toolsDir, "cosign-"+CosignPins[v]))
		if err != nil {
			missing = append(missing, err.Error())
			continue
		}
		if err := CheckCosignVersion(p, CosignPins[v]); err != nil {
			missing = append(missing, fmt.Sprintf("%s=%s: %v", envName, p, err))
			continue
		}
		t.Cosign[v] = p
	}
	reg, err := ToolPath("OCISIGN_REGISTRY_BIN", "/usr/bin/docker-registry")
	if err != nil {
		missing = append(missing, err.Error())
	}
	t.Registry = reg
	if len(missing) > 0 {
		return t, fmt.Errorf("missing tools:\n  %s", strings.Join(missing, "\n  "))
	}
	return t, nil
}

// ToolPath reads an executable path from envName (or takes defaultPath) and
// checks that it is an executable file.
func ToolPath(envName, defaultPath string) (string, error) {
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

// CheckCosignVersion makes sure bin is the pinned release.
func CheckCosignVersion(bin, want string) error {
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

// RepoRoot finds the module root (the directory holding go.mod) above dir.
func RepoRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/ocisign/ocisign\n")) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no ocisign go.mod above %s", dir)
		}
		d = parent
	}
}

// BuildOcisign builds ./cmd/ocisign from repoRoot into out.
func BuildOcisign(repoRoot, out string, flags ...string) error {
	args := append([]string{"build"}, flags...)
	args = append(args, "-o", out, "./cmd/ocisign")
	build := exec.Command("go", args...)
	build.Dir = repoRoot
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/ocisign: %v\n%s", err, Tail(b, 4000))
	}
	return nil
}

// Registry is a running docker-registry process.
type Registry struct {
	Addr    string // "127.0.0.1:<port>"
	LogPath string
	stop    func()
}

// Stop kills the registry; safe to call more than once.
func (r *Registry) Stop() {
	if r != nil && r.stop != nil {
		r.stop()
		r.stop = nil
	}
}

// StartRegistry runs `docker-registry serve` on a free loopback port with
// filesystem storage under dir, and waits until /v2/ answers.
func StartRegistry(bin, dir string) (*Registry, error) {
	if err := os.MkdirAll(filepath.Join(dir, "storage"), 0o700); err != nil {
		return nil, err
	}
	var lastErr error
	// A port picked by listening on :0 can be taken before the registry binds
	// it; try a few ports before giving up.
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
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
			return nil, err
		}
		logPath := filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt))
		logFile, err := os.Create(logPath)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "serve", configPath)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		// The registry dies with the test binary even if it is killed.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			logFile.Close()
			return nil, fmt.Errorf("starting %s: %v", bin, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
			logFile.Close()
		}
		if err := WaitForRegistry(addr, exited); err != nil {
			stop()
			logBytes, _ := os.ReadFile(logPath)
			lastErr = fmt.Errorf("registry on %s did not come up: %v\n--- %s ---\n%s", addr, err, logPath, Tail(logBytes, 2000))
			continue
		}
		return &Registry{Addr: addr, LogPath: logPath, stop: stop}, nil
	}
	return nil, lastErr
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago (all held open together while picked, so they differ).
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// WaitForRegistry polls GET /v2/ until it answers 200, the process exits or
// a generous start-up bound passes (a hang guard, not a timing assertion).
func WaitForRegistry(addr string, exited <-chan error) error {
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

// Tail returns the last n bytes of b, trimmed.
func Tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}

// IsolatedEnv is a whole subprocess environment with a private HOME and TUF
// root, no registry credentials, and a dead proxy so nothing can reach the
// internet (loopback is never proxied).
func IsolatedEnv(home, tufRoot string, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"DOCKER_CONFIG=" + filepath.Join(home, ".docker"),
		"TUF_ROOT=" + tufRoot,
		"SIGSTORE_NO_CACHE=1",
		"HTTPS_PROXY=http://127.0.0.1:9",
		"HTTP_PROXY=http://127.0.0.1:9",
		"NO_PROXY=127.0.0.1,localhost",
		"TMPDIR=" + os.TempDir(),
	}
	return append(env, extra...)
}

// CosignSignArgs is `cosign sign --key KEY` in the legacy .sig layout
// without a transparency log, for cosign major version v2 or v3.
func CosignSignArgs(version, key string) []string {
	args := []string{"sign", "--key", key}
	if version == "v3" {
		return append(args, "--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false", "-y")
	}
	return append(args, "--tlog-upload=false", "-y")
}

// CosignVerifyArgs is `cosign verify --key PUB --insecure-ignore-tlog`.
func CosignVerifyArgs(pub string) []string {
	return []string{"verify", "--key", pub, "--insecure-ignore-tlog"}
}
