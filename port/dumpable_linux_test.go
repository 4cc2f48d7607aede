//go:build linux

package port

import "testing"

func TestDisableCoreDumps(t *testing.T) {
	if err := DisableCoreDumps(); err != nil {
		t.Fatal(err)
	}
	if !coreDumpsDisabled() {
		t.Fatal("the process is still dumpable")
	}
}
