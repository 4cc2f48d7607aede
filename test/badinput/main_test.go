// Package badinput feeds the built ocisign binary bad input — command lines,
// config files, key files and port frames — and checks each exact error
// (exit code, code, message), that the port keeps serving after each bad
// frame, and that no password, token or key material ever shows up in
// anything ocisign prints. Skipped unless OCISIGN_E2E=1.
package badinput

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	th "github.com/ocisign/ocisign/test/internal/harness"
)

var env struct {
	tmp, home, tuf string
	ocisign        string
	reg            *th.Registry
}

func TestMain(m *testing.M) {
	if os.Getenv("OCISIGN_E2E") != "1" {
		fmt.Println("badinput: skipped (set OCISIGN_E2E=1, or run `make test`)")
		os.Exit(0)
	}
	code, err := setUp(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "badinput: FAIL: set-up: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

func setUp(m *testing.M) (int, error) {
	tmp, err := os.MkdirTemp("", "ocisign-badinput-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(tmp)
	env.tmp, env.home, env.tuf = tmp, filepath.Join(tmp, "home"), filepath.Join(tmp, "tuf")
	for _, d := range []string{env.home, env.tuf} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return 1, err
		}
	}
	regBin, err := th.ToolPath("OCISIGN_REGISTRY_BIN", "/usr/bin/docker-registry")
	if err != nil {
		return 1, err
	}
	root, err := th.RepoRoot(".")
	if err != nil {
		return 1, err
	}
	env.ocisign = filepath.Join(tmp, "ocisign")
	if err := th.BuildOcisign(root, env.ocisign); err != nil {
		return 1, err
	}
	if env.reg, err = th.StartRegistry(regBin, filepath.Join(tmp, "registry")); err != nil {
		return 1, err
	}
	defer env.reg.Stop()
	return m.Run(), nil
}

// ocisign runs the binary in dir with the isolated environment plus extra.
func ocisign(t *testing.T, dir string, extra []string, args ...string) th.Result {
	t.Helper()
	e := th.IsolatedEnv(env.home, env.tuf, extra...)
	r, err := th.RunIn(dir, e, 2*time.Minute, env.ocisign, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
