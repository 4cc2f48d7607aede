// Command ocisign signs OCI images the way `cosign sign --key` does and
// serves the same operations to Erlang over a port (`ocisign port`).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ocisign/ocisign/signing"
)

// version and commit are set at build time by `make release`
// (-ldflags "-X main.version=… -X main.commit=…"); the default is VERSION's
// number marked as a development build.
var (
	version = "0.1.0-dev"
	commit  = "unknown"
)

// Exit codes: 0 success, 1 operation failed, 2 usage error.
const (
	exitFailed = 1
	exitUsage  = 2
)

// usageError marks a mistake in how ocisign was called (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func main() {
	// Before anything can start a child process: credential helpers and
	// the like must not inherit the key password.
	signing.TakeEnvPassword()
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run executes the CLI and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.Run(args)
	if err == nil {
		return 0
	}
	var reported *reportedError
	if errors.As(err, &reported) {
		return reported.code
	}
	fmt.Fprintf(stderr, "ocisign: %v\n", err)
	var usage *usageError
	if errors.As(err, &usage) {
		return exitUsage
	}
	return exitFailed
}

// reportedError is a failure whose message was already written; it only
// carries the exit code.
type reportedError struct{ code int }

func (e *reportedError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:    "ocisign",
		Usage:   "cosign-compatible OCI image signing, as a CLI and as an Erlang port",
		Version: version,
		Writer:  stdout,
		// Help and version go to stdout; everything else ocisign says goes to stderr.
		ErrWriter:      stderr,
		Flags:          []cli.Flag{configFlag()},
		HideVersion:    true,
		ExitErrHandler: func(*cli.Context, error) {}, // run() maps errors to exit codes
		OnUsageError:   onUsageError,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("unknown command %q (see ocisign --help)", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		Commands: []*cli.Command{
			signCommand(),
			verifyCommand(),
			generateKeyPairCommand(),
			publicKeyCommand(),
			versionCommand(),
			demoCommand(),
			portCommand(),
		},
	}
}

// commandConfigFlag is --config after a command name. It has no
// OCISIGN_CONFIG: the app-level flag reads that, so an explicit
// `ocisign --config FILE sign` is not hidden by the variable (configPath).
func commandConfigFlag() cli.Flag {
	f := *configFlag().(*cli.StringFlag)
	f.EnvVars = nil
	return &f
}

func onUsageError(_ *cli.Context, err error, _ bool) error {
	return &usageError{msg: err.Error()}
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:         "version",
		Usage:        "print the ocisign version",
		OnUsageError: onUsageError,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("version takes no arguments")
			}
			fmt.Fprintf(c.App.Writer, "ocisign %s (commit %s)\n", version, commit)
			return nil
		},
	}
}
