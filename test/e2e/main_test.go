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
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	th "github.com/ocisign/ocisign/test/internal/harness"
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

// cosignVersions are the cosign major versions the tests run, oldest first
// (th.CosignPins has the releases test/tools/build.sh builds).
var cosignVersions = []string{"v2", "v3"}

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

	tools, err := th.FindTools()
	var missing []string
	if err != nil {
		missing = append(missing, err.Error())
	}
	harness.cosign = tools.Cosign
	registryBin := tools.Registry
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
	if err := th.BuildOcisign(harness.repoRoot, harness.ocisign); err != nil {
		harness.ocisignErr = err
		fmt.Fprintf(os.Stderr, "e2e: FAIL: %v\n", harness.ocisignErr)
	}

	reg, err := th.StartRegistry(registryBin, filepath.Join(tmp, "registry"))
	if err != nil {
		return stop, err
	}
	stops = append(stops, reg.Stop)
	harness.registry = reg.Addr

	return stop, nil
}

func tail(b []byte, n int) string { return th.Tail(b, n) }
