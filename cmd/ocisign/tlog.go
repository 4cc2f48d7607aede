package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ocisign/ocisign/internal/errcode"

	"github.com/urfave/cli/v2"

	"github.com/ocisign/ocisign/internal/bounded"
	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/signing"
	"github.com/ocisign/ocisign/tlog"
)

func rekorURLFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "rekor-url", EnvVars: []string{tlog.EnvURL}, Usage: usage}
}

func rekorPublicKeyFlag() cli.Flag {
	return &cli.StringFlag{Name: "rekor-public-key",
		Usage: "PEM `FILE` with the log's public key(s) (default $" + tlog.EnvPublicKey + ", then the config's rekor_public_key, then fetched from the log)"}
}

func signTlogFlags() []cli.Flag {
	return []cli.Flag{
		rekorURLFlag("record each signature in the Rekor log at `URL` (default: the config's rekor_url; nothing is uploaded without a URL or --tlog-upload)"),
		&cli.BoolFlag{Name: "tlog-upload", Usage: "record each signature in a transparency log; without --rekor-url or rekor_url the public " + tlog.PublicURL + " (everything signed becomes public). --tlog-upload=false turns off a rekor_url from the environment or config"},
		rekorPublicKeyFlag(),
	}
}

func verifyTlogFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "require-tlog", Usage: "count a signature only if it carries a transparency log bundle that verifies (needs a log key: --rekor-public-key, $" + tlog.EnvPublicKey + ", rekor_public_key or a log URL)"},
		rekorPublicKeyFlag(),
		rekorURLFlag("fetch the log's public key from the Rekor log at `URL` when no key file is given (default: the config's rekor_url)"),
	}
}

// signLog returns the log to record signatures in, nil when none was asked
// for: nothing leaves the machine by default.
func (op *operation) signLog(c *cli.Context) (*tlog.Client, error) {
	url := op.set.RekorURL
	if c.IsSet("tlog-upload") && !c.Bool("tlog-upload") {
		if c.IsSet("rekor-url") && os.Getenv(tlog.EnvURL) != c.String("rekor-url") {
			return nil, usagef("--tlog-upload=false contradicts --rekor-url")
		}
		return nil, nil
	}
	if url == "" {
		if !c.Bool("tlog-upload") {
			return nil, nil
		}
		url = tlog.PublicURL
	}
	return op.newLogClient(url, op.set.RekorPublicKey)
}

func (op *operation) newLogClient(url, keyPath string) (*tlog.Client, error) {
	client, err := withinTimeout(op, keyPath, func() (*tlog.Client, error) {
		return tlog.New(url, tlog.Options{PublicKeyFile: keyPath, UserAgent: "ocisign/" + version})
	})
	if err != nil {
		if code, _ := errcode.Of(err); code == errcode.CodeInvalidRequest {
			return nil, usagef("--rekor-url %s", err)
		}
		return nil, op.fail(err)
	}
	return client, nil
}

// verifyBundleCheck returns the offline check of bundle annotations: with
// the configured log keys, else with the key of the log at the configured
// URL (fetched once). nil when no log key source is configured.
func (op *operation) verifyBundleCheck(c *cli.Context, verifier *signing.Verifier) (signing.BundleCheck, error) {
	keyPath := op.set.RekorPublicKey
	if keyPath != "" {
		keys, err := withinTimeout(op, keyPath, func() (*signing.RekorKeys, error) { return tlog.TrustedKeys(nil, keyPath) })
		if err != nil {
			return nil, op.fail(err)
		}
		return tlog.BundleCheck(verifier, keys), nil
	}
	url := op.set.RekorURL
	if url == "" {
		if c.Bool("require-tlog") {
			return nil, usagef("--require-tlog needs the log's public key: pass --rekor-public-key FILE, set %s, put rekor_public_key in the config, or give --rekor-url to fetch it", tlog.EnvPublicKey)
		}
		return nil, nil
	}
	client, err := op.newLogClient(url, "")
	if err != nil {
		return nil, err
	}
	check, err := client.BundleCheck(op.ctx, verifier)
	if err != nil {
		if c.Bool("require-tlog") {
			return nil, op.fail(err)
		}
		// Bundles only matter with --require-tlog; say why they go unchecked.
		fmt.Fprintf(op.stderr, "warning: transparency log bundles are not checked: %v\n", err)
		return nil, nil
	}
	return check, nil
}

func timeoutOrDefault(timeout time.Duration) time.Duration {
	if timeout > 0 {
		return timeout
	}
	return registry.DefaultTimeout
}

// withinTimeout runs a file read (a key, a log key) under the operation's
// --timeout: a read that hangs (a hung network mount) ends as a timeout.
func withinTimeout[T any](op *operation, path string, load func() (T, error)) (T, error) {
	v, err := bounded.Wait(op.ctx, load)
	if err != nil && op.ctx.Err() != nil && errors.Is(err, op.ctx.Err()) {
		return v, &errcode.Error{Op: "reading " + path, Code: errcode.CodeTimeout, Retryable: true,
			Err: fmt.Errorf("not done within the timeout of %s (--timeout)", timeoutOrDefault(op.timeout))}
	}
	return v, err
}
