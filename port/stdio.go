package port

import (
	"log"
	"os"
	"os/signal"
	"syscall"
)

// TakeStdout reserves the process's standard output for frames: it returns
// a file for the original stdout and points both os.Stdout and file
// descriptor 1 at stderr, so a stray print (ours, a library's, a child
// process's) lands on stderr instead of corrupting the frame stream. Call it
// before anything else runs. A broken pipe then returns EPIPE instead of
// killing the process with SIGPIPE.
func TakeStdout() (*os.File, error) {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	frames, err := redirectStdoutFD()
	if err != nil {
		return nil, err
	}
	os.Stdout = os.Stderr
	log.SetOutput(os.Stderr)
	return frames, nil
}
