//go:build linux

package port

import "syscall"

// DisableCoreDumps makes the process non-dumpable: the port keeps decrypted
// keys in memory for its whole life, and a core dump (or a ptrace attach by
// another process of the same user) would expose them.
func DisableCoreDumps() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_DUMPABLE, 0, 0); errno != 0 {
		return errno
	}
	return nil
}

// coreDumpsDisabled reports the flag (for tests).
func coreDumpsDisabled() bool {
	r, _, _ := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_GET_DUMPABLE, 0, 0)
	return r == 0
}
