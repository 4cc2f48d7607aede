//go:build !linux

package port

// DisableCoreDumps is a no-op where prctl(PR_SET_DUMPABLE) does not exist.
func DisableCoreDumps() error { return nil }

func coreDumpsDisabled() bool { return false }
