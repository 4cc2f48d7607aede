//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package port

import "os"

// Without dup2 only Go writers can be redirected; os.Stdout is swapped by
// TakeStdout.
func redirectStdoutFD() (*os.File, error) { return os.Stdout, nil }
