package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ocisign/ocisign/internal/errcode"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/ocisign/ocisign/internal/settings"
	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/signing"
)

func signCommand() *cli.Command {
	return &cli.Command{
		Name:      "sign",
		Usage:     "sign an image (and with --recursive every platform manifest of an index)",
		ArgsUsage: "IMAGE",
		Description: "Appends a cosign-compatible signature to the image's sha256-<hex>.sig tag, keeping every\n" +
			"signature already there. The password of an encrypted key comes from COSIGN_PASSWORD or a prompt.",
		OnUsageError: onUsageError,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "private key `FILE` (cosign's encrypted PEM, PKCS#8, SEC1 or PKCS#1); default OCIBUILD_SIGN_KEY, then the config's sign_key"},
			&cli.BoolFlag{Name: "recursive", Aliases: []string{"r"}, Usage: "for an index, also sign every child manifest, nested indexes too"},
		}, append(append(signTlogFlags(), signKeylessFlags()...), commonFlags()...)...),
		Action: withJSONErrors(runSign),
	}
}

// withJSONErrors keeps --output json's promise for every failure of the
// action, usage errors included: one {"error": {...}} object on stdout, the
// message on stderr, and the usual exit code.
func withJSONErrors(action cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		err := action(c)
		if err == nil || c.String("output") != "json" {
			return err
		}
		var reported *reportedError
		if errors.As(err, &reported) {
			return err
		}
		jerr, exit := jsonErrorOf(err), exitFailed
		var usage *usageError
		if errors.As(err, &usage) {
			jerr.Code, jerr.Retryable, exit = errcode.CodeInvalidRequest, false, exitUsage
		}
		fmt.Fprintf(c.App.ErrWriter, "ocisign: %v\n", err)
		_ = writeJSON(c.App.Writer, map[string]any{"error": jerr})
		return &reportedError{code: exit}
	}
}

// jsonError is the error object of --output json.
type jsonError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
}

// jsonErrorOf words err for --output json with its stable code.
func jsonErrorOf(err error) jsonError {
	code, retryable := errcode.Of(err)
	return jsonError{Code: code, Message: err.Error(), Retryable: retryable}
}

// commonFlags are shared by sign and verify.
func commonFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "annotations", Aliases: []string{"a"}, Usage: "`key=value` in the payload's optional map (repeatable)"},
		&cli.BoolFlag{Name: "allow-insecure-registry", Usage: "allow plain HTTP to any registry (loopback registries never need it)"},
		&cli.DurationFlag{Name: "timeout", Usage: "bound the whole operation (default: the config's timeout, else 5m)"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "`text` or json"},
		commandConfigFlag(),
	}
}

// operation is what sign and verify share: config, flags, client, image.
type operation struct {
	cfg   *fileConfig
	image string
	// set is what flags, environment and config file say, resolved.
	set     settings.Values
	json    bool
	timeout time.Duration
	client  *registry.Client
	stdout  io.Writer
	stderr  io.Writer
	// ctx ends at the --timeout, which bounds the whole operation: key and
	// log key reads (a password prompt included), then the registry work.
	ctx    context.Context
	cancel context.CancelFunc
}

func newOperation(c *cli.Context) (*operation, error) {
	if c.NArg() != 1 {
		if c.NArg() == 0 {
			return nil, usagef("%s needs exactly one IMAGE (registry/repo[:tag][@digest])", c.Command.Name)
		}
		return nil, usagef("%s takes one IMAGE, got %d arguments (flags must come before IMAGE)", c.Command.Name, c.NArg())
	}
	output := c.String("output")
	if output != "text" && output != "json" {
		return nil, usagef("--output must be text or json, not %q", output)
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, usagef("%v", err)
	}
	annotations, err := parseAnnotations(c.StringSlice("annotations"))
	if err != nil {
		return nil, err
	}
	// Flags > environment > config file, as the port resolves its requests.
	explicit, kind := settings.Values{Annotations: annotations, RekorURL: c.String("rekor-url"),
		RekorPublicKey: c.String("rekor-public-key"), FulcioRoot: c.String("fulcio-root")}, settings.Verify
	if c.Command.Name == "sign" {
		explicit.SignKey, explicit.Recursive, kind = c.String("key"), c.Bool("recursive"), settings.Sign
		explicit.Keyless, explicit.FulcioURL = c.Bool("keyless"), c.String("fulcio-url")
	}
	set := settings.Resolve(explicit, os.Getenv, cfg.values(), kind)
	timeout := cfg.timeout
	if c.IsSet("timeout") {
		if timeout = c.Duration("timeout"); timeout <= 0 {
			return nil, usagef("--timeout must be positive")
		}
	}
	stderr := c.App.ErrWriter
	client := registry.New(registry.Options{
		AllowInsecure:       c.Bool("allow-insecure-registry"),
		InsecureRegistries:  cfg.InsecureRegistries,
		Timeout:             timeout,
		SignatureRepository: os.Getenv("COSIGN_REPOSITORY"),
		Logf:                func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) },
	})
	ctx, cancel := context.WithTimeout(context.Background(), timeoutOrDefault(timeout))
	return &operation{
		ctx:     ctx,
		cancel:  cancel,
		cfg:     cfg,
		image:   c.Args().First(),
		set:     set,
		json:    output == "json",
		timeout: timeout,
		client:  client,
		stdout:  c.App.Writer,
		stderr:  stderr,
	}, nil
}

func runSign(c *cli.Context) error {
	op, err := newOperation(c)
	if err != nil {
		return err
	}
	defer op.cancel()
	useKeyless, err := op.useKeyless(c)
	if err != nil {
		return err
	}
	var req registry.SignRequest
	if useKeyless {
		req, err = op.keylessRequest(c)
	} else {
		req, err = op.keyRequest(c)
	}
	if err != nil {
		return err
	}
	res, err := op.client.Sign(op.ctx, req)
	if err != nil {
		return op.fail(err)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(op.stderr, "warning: %s\n", w)
	}
	if op.json {
		return writeJSON(op.stdout, res)
	}
	for _, s := range res.Signed {
		what := "signed"
		if s.Deduplicated {
			what = "already signed with this key and annotations (deduplicated)"
		}
		fmt.Fprintf(op.stdout, "%s %s\n  signature %s@%s\n", s.Digest, what, s.SignatureRef, s.SignatureDigest)
		if s.LogIndex != nil {
			fmt.Fprintf(op.stdout, "  transparency log index %d, entry %s\n", *s.LogIndex, s.LogUUID)
		}
	}
	return nil
}

// keyRequest is a sign with the configured key, and a log if one is asked for.
func (op *operation) keyRequest(c *cli.Context) (registry.SignRequest, error) {
	keyPath := op.set.SignKey
	if keyPath == "" {
		return registry.SignRequest{}, usagef("no signing key: pass --key FILE, set OCIBUILD_SIGN_KEY, or put sign_key in the --config file " +
			"(or sign keylessly: --keyless with an OIDC identity token)")
	}
	signer, err := withinTimeout(op, keyPath, func() (*signing.Signer, error) {
		return signing.LoadPrivateKey(keyPath, signing.EnvPassword(promptPassword(keyPath, op.stderr)))
	})
	if err != nil {
		return registry.SignRequest{}, op.fail(err)
	}
	if w := signer.Warning(); w != "" {
		fmt.Fprintf(op.stderr, "warning: %s\n", w)
	}
	req := op.baseRequest(signer)
	logClient, err := op.signLog(c)
	if err != nil {
		return req, err
	}
	if logClient != nil {
		req.Tlog = logClient // a nil *tlog.Client must not become a non-nil interface
		fmt.Fprintf(op.stderr, "recording signatures in the transparency log %s\n", logClient.URL())
	}
	return req, nil
}

// keylessRequest is a sign with an OIDC identity: Fulcio's certificate for
// a key made now, recorded in the log (required).
func (op *operation) keylessRequest(c *cli.Context) (registry.SignRequest, error) {
	logClient, err := op.keylessLog(c)
	if err != nil {
		return registry.SignRequest{}, err
	}
	id, err := op.keylessIdentity(c)
	if err != nil {
		var usage *usageError
		if errors.As(err, &usage) {
			return registry.SignRequest{}, err
		}
		return registry.SignRequest{}, op.fail(err)
	}
	fmt.Fprintf(op.stderr, "signing keylessly as %s (issuer %s), certificate valid until %s; recording in the transparency log %s\n",
		strings.Join(id.Certificate.Identities(), ", "), id.Certificate.Issuer(),
		id.Certificate.Leaf.NotAfter.UTC().Format(time.RFC3339), logClient.URL())
	req := op.baseRequest(id.Signer)
	req.Certificate, req.Tlog = id.Certificate, logClient
	return req, nil
}

func (op *operation) baseRequest(signer *signing.Signer) registry.SignRequest {
	return registry.SignRequest{Reference: op.image, Signer: signer, Annotations: op.set.Annotations, Recursive: op.set.Recursive}
}

// fail reports err (as a JSON object on stdout with --output json) and
// exits 1; the message never carries secrets (signing and registry errors
// are built that way).
func (op *operation) fail(err error) error {
	fmt.Fprintf(op.stderr, "ocisign: %v\n", err)
	if op.json {
		_ = writeJSON(op.stdout, map[string]any{"error": jsonErrorOf(err)})
	}
	return &reportedError{code: exitFailed}
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// promptPassword asks on the terminal when stdin is one; elsewhere an
// encrypted key without COSIGN_PASSWORD is an error, never a hang.
func promptPassword(keyPath string, stderr io.Writer) signing.PasswordFunc {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil
	}
	return func() ([]byte, error) {
		fmt.Fprintf(stderr, "Enter password for private key %s: ", keyPath)
		pw, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		return pw, err
	}
}
