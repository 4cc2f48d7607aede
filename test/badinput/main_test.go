// Package badinput feeds the built ocisign binary bad input — command lines,
// config files, key files and port frames — and checks each exact error
// (exit code, code, message), that the port keeps serving after each bad
// frame, and that no password, token or key material ever shows up in
// anything ocisign prints. Skipped unless OCISIGN_E2E=1.
package badinput

import (
	"testing"
	"time"

	th "github.com/ocisign/ocisign/test/internal/harness"
)

var env struct{ th.Package }

func TestMain(m *testing.M) {
	th.SetupPackage(m, &env.Package, th.PackageOptions{Name: "badinput"})
}

// ocisign runs the binary in dir with the isolated environment plus extra.
func ocisign(t *testing.T, dir string, extra []string, args ...string) th.Result {
	t.Helper()
	e := th.IsolatedEnv(env.Home, env.TUF, extra...)
	r, err := th.RunIn(dir, e, 2*time.Minute, env.Ocisign, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
