package main

import (
	"context"
	"fmt"
	"os"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/ocisign/ocisign/port"
	"github.com/ocisign/ocisign/registry"
)

// portCommand serves the Erlang port protocol (docs/port-protocol.md) on
// stdin/stdout until stdin ends.
func portCommand() *cli.Command {
	return &cli.Command{
		Name:  "port",
		Usage: "serve sign/verify requests as an Erlang port ({packet,4} JSON frames on stdin/stdout)",
		Description: "Reads 4-byte big-endian length-prefixed JSON requests on stdin and writes replies the same way on\n" +
			"stdout; logs go to stderr. Exits when stdin is closed. Secrets come only from the environment\n" +
			"(COSIGN_PASSWORD, OCIBUILD_PUSH_*). See docs/port-protocol.md.",
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			&cli.IntFlag{
				Name:  "max-frame-bytes",
				Value: port.DefaultMaxFrameBytes,
				Usage: "refuse request frames larger than `N` bytes (with a frame_too_large reply)",
			},
			commandConfigFlag(),
			&cli.IntFlag{
				Name:  "max-concurrent",
				Value: port.DefaultMaxConcurrent,
				Usage: "handle at most `N` requests at the same time",
			},
		},
		Action: runPort,
	}
}

func runPort(c *cli.Context) error {
	// First, before anything can print: stdout is for frames only.
	frames, err := port.TakeStdout()
	if err != nil {
		return err
	}
	defer frames.Close()
	stderr := c.App.ErrWriter
	// Decrypted keys stay in memory for the port's life: no core dumps.
	if err := port.DisableCoreDumps(); err != nil {
		fmt.Fprintf(stderr, "ocisign port: warning: could not disable core dumps: %v\n", err)
	}

	if c.Args().Present() {
		return usagef("port takes no arguments")
	}
	maxFrame := c.Int("max-frame-bytes")
	if maxFrame <= 0 {
		return usagef("--max-frame-bytes must be positive")
	}
	maxConcurrent := c.Int("max-concurrent")
	if maxConcurrent <= 0 {
		return usagef("--max-concurrent must be positive")
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return usagef("%v", err)
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "ocisign port: "+format+"\n", args...) }

	ctx, stop := port.SignalContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err = port.Serve(ctx, os.Stdin, frames, port.Config{
		MaxFrameBytes: maxFrame,
		MaxConcurrent: maxConcurrent,
		Version:       version,
		// Config values are the last fallback: the request's fields and
		// the environment (read per request) come first.
		Defaults: cfg.values(),
		Registry: registry.Options{
			InsecureRegistries: cfg.InsecureRegistries,
			Timeout:            cfg.timeout,
		},
		Logf: logf,
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		logf("stopped by a signal")
	default:
		logf("%v", err)
	}
	return &reportedError{code: exitFailed}
}
