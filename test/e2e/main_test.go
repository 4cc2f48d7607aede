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
// Set-up is the shared harness's (th.SetupPackage). Debugging:
// OCISIGN_E2E_LOG=1 logs every command (use with -v); OCISIGN_E2E_KEEP=1
// keeps the temp dir (registry log, keys).
package e2e

import (
	"fmt"
	"os/exec"
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
	cosign   map[string]string
	openssl  string
	registry string // "127.0.0.1:<port>"
}

// cosignVersions are the cosign major versions the tests run, oldest first
// (th.CosignPins has the releases test/tools/build.sh builds).
var cosignVersions = []string{"v2", "v3"}

func TestMain(m *testing.M) {
	var pkg th.Package
	th.SetupPackage(m, &pkg, th.PackageOptions{Name: "e2e", Cosign: true, DockerConfigDir: true,
		Then: func(p *th.Package) (func(), error) {
			openssl, err := exec.LookPath("openssl")
			if err != nil {
				return nil, fmt.Errorf("openssl not found in PATH (OCISIGN_E2E=1 makes this a failure)")
			}
			root, err := th.RepoRoot(".")
			if err != nil {
				return nil, err
			}
			harness.tmp, harness.home, harness.repoRoot = p.Tmp, p.Home, root
			harness.ocisign, harness.cosign, harness.openssl = p.Ocisign, p.Tools.Cosign, openssl
			harness.registry = p.Reg.Addr
			return nil, nil
		}})
}

func tail(b []byte, n int) string { return th.Tail(b, n) }
