// Package testgate is the one gate for tests that need external tools (a
// registry process, cosign, Rekor, Erlang): they run when OCISIGN_E2E=1,
// which `make test` and CI set. Once it is set a missing tool fails the test
// that needs it, naming the fix; it is never a skip.
package testgate

import (
	"os"
	"testing"
)

// On reports whether OCISIGN_E2E=1.
func On() bool { return os.Getenv("OCISIGN_E2E") == "1" }

// Skip skips tb unless On(), saying what it would have run.
func Skip(tb testing.TB, what string) {
	tb.Helper()
	if !On() {
		tb.Skipf("%s: set OCISIGN_E2E=1 (or run `make test`) to run it", what)
	}
}

// Tool returns the path in the environment variable env, failing tb (On)
// or skipping it (off) when it is unset; fix says how to get the tool.
func Tool(tb testing.TB, env, fix string) string {
	tb.Helper()
	Skip(tb, "needs "+env)
	p := os.Getenv(env)
	if p == "" {
		tb.Fatalf("%s is unset (OCISIGN_E2E=1 needs it): %s", env, fix)
	}
	return p
}
