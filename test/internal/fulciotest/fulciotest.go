// Package fulciotest runs the pinned real Fulcio (test/tools/fulcio, built by
// test/tools/build.sh) on 127.0.0.1 for keyless tests: an ephemeral CA
// (`--ca ephemeralca`), no certificate-transparency log, and one trusted
// OIDC issuer of the email type (test/internal/oidctest).
package fulciotest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ocisign/ocisign/test/internal/harness"
)

// Version is the pinned Fulcio release (test/tools/fulcio/go.mod).
const Version = "v1.8.8"

// Binary is the tools-cache name test/tools/build.sh gives the build.
const Binary = "fulcio-" + Version

// CA is a running Fulcio.
type CA struct {
	URL      string // http://127.0.0.1:PORT
	RootFile string // its root certificate, PEM, for --fulcio-root / SIGSTORE_ROOT_FILE
	LogPath  string
	cmd      *exec.Cmd
	exited   chan error
}

// FindBinary is $OCISIGN_FULCIO_BIN, else Binary in toolsDir; the error says
// how to build it.
func FindBinary(toolsDir string) (string, error) {
	p := os.Getenv("OCISIGN_FULCIO_BIN")
	if p == "" {
		p = filepath.Join(toolsDir, Binary)
	}
	if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("Fulcio %s not found at %s: run test/tools/build.sh (or set OCISIGN_FULCIO_BIN)", Version, p)
	}
	return p, nil
}

// Start runs bin in dir, trusting tokens from issuerURL (email type,
// client ID "sigstore"), and waits until it serves its trust bundle.
func Start(bin, dir, issuerURL string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	config := fmt.Sprintf("oidc-issuers:\n  %s:\n    issuer-url: %s\n    client-id: sigstore\n    type: email\n", issuerURL, issuerURL)
	configPath := filepath.Join(dir, "fulcio-config.yaml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return nil, err
	}
	ports, err := harness.FreePorts(3)
	if err != nil {
		return nil, err
	}
	ca := &CA{URL: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), LogPath: filepath.Join(dir, "fulcio.log"),
		RootFile: filepath.Join(dir, "fulcio-root.pem"), exited: make(chan error, 1)}
	logFile, err := os.Create(ca.LogPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	ca.cmd = exec.Command(bin, "serve", "--ca", "ephemeralca", "--ct-log-url", "", "--config-path", configPath,
		"--host", "127.0.0.1", "--port", fmt.Sprint(ports[0]), "--grpc-host", "127.0.0.1", "--grpc-port", fmt.Sprint(ports[1]),
		"--metrics-port", fmt.Sprint(ports[2]), "--legacy-unix-domain-socket", filepath.Join(dir, "legacy.sock"))
	ca.cmd.Dir, ca.cmd.Stdout, ca.cmd.Stderr = dir, logFile, logFile
	// Fulcio dies with the test binary even if that is killed.
	ca.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := ca.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %v", bin, err)
	}
	go func() { ca.exited <- ca.cmd.Wait() }()
	root, err := ca.waitForRoot(30 * time.Second)
	if err != nil {
		ca.Stop()
		return nil, fmt.Errorf("%v (log: %s)", err, ca.LogPath)
	}
	if err := os.WriteFile(ca.RootFile, root, 0o644); err != nil {
		ca.Stop()
		return nil, err
	}
	return ca, nil
}

// waitForRoot polls GET /api/v2/trustBundle and returns the last
// certificate of the first chain (the ephemeral root).
func (ca *CA) waitForRoot(limit time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		select {
		case err := <-ca.exited:
			return nil, fmt.Errorf("fulcio exited: %v", err)
		case <-ctx.Done():
			return nil, errors.New("fulcio did not serve its trust bundle in time")
		case <-time.After(100 * time.Millisecond):
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ca.URL+"/api/v2/trustBundle", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		var doc struct {
			Chains []struct {
				Certificates []string `json:"certificates"`
			} `json:"chains"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &doc) != nil || len(doc.Chains) == 0 || len(doc.Chains[0].Certificates) == 0 {
			continue
		}
		certs := doc.Chains[0].Certificates
		return []byte(strings.TrimSpace(certs[len(certs)-1]) + "\n"), nil
	}
}

// Stop kills Fulcio and waits for it.
func (ca *CA) Stop() {
	if ca.cmd != nil && ca.cmd.Process != nil {
		ca.cmd.Process.Kill()
		<-ca.exited
		ca.cmd = nil
	}
}
