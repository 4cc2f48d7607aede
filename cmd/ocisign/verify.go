package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/signing"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check the image's signatures against a public key or a keyless identity (exit 0 only if one is valid)",
		ArgsUsage: "IMAGE",
		Description: "Checks every layer of the image's sha256-<hex>.sig manifest: the signature over the payload,\n" +
			"the payload's digest claim, and each -a annotation. Reads signatures made by cosign too.\n" +
			"Keyless signatures: --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp] instead of --key;\n" +
			"the certificate must chain to --fulcio-root and the log bundle must verify (--require-tlog is implied).",
		OnUsageError: onUsageError,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "public key `FILE` (PEM PUBLIC KEY or RSA PUBLIC KEY)"},
		}, append(append(verifyTlogFlags(), verifyKeylessFlags()...), commonFlags()...)...),
		Action: withJSONErrors(runVerify),
	}
}

func runVerify(c *cli.Context) error {
	op, err := newOperation(c)
	if err != nil {
		return err
	}
	defer op.cancel()
	req, err := op.verifyRequest(c)
	if err != nil {
		return err
	}
	res, err := op.client.Verify(op.ctx, req)
	if res == nil {
		if err != nil {
			return op.fail(err)
		}
		return nil
	}
	if !op.json {
		printVerify(op, res)
		if err != nil {
			return op.fail(err)
		}
		return nil
	}
	// One object either way: the per-layer verdicts, plus "error" when no
	// signature was valid, so JSON callers read one shape.
	out := verifyOutput{VerifyResult: res}
	if err != nil {
		jerr := jsonErrorOf(err)
		out.Error = &jerr
		fmt.Fprintf(op.stderr, "ocisign: %v\n", err)
	}
	if werr := writeJSON(op.stdout, out); werr != nil {
		return werr
	}
	if err != nil {
		return &reportedError{code: exitFailed}
	}
	return nil
}

// verifyRequest is a verify with --key, or with a keyless identity policy.
func (op *operation) verifyRequest(c *cli.Context) (registry.VerifyRequest, error) {
	req := registry.VerifyRequest{Reference: op.image, Annotations: op.set.Annotations, RequireTlog: c.Bool("require-tlog")}
	policy := identityPolicy(c)
	if policy != (signing.IdentityPolicy{}) {
		if c.String("key") != "" {
			return req, usagef("--key and --certificate-identity/--certificate-oidc-issuer exclude each other: verify key-based or keyless signatures")
		}
		keyless, err := op.keylessPolicy(c, policy)
		req.Keyless = keyless
		return req, err
	}
	if c.String("key") == "" {
		return req, usagef("verify needs --key FILE (the public key, e.g. cosign.pub), or for keyless signatures " +
			"--certificate-identity and --certificate-oidc-issuer")
	}
	if c.Bool("require-tlog") && op.set.RekorPublicKey == "" && op.set.RekorURL == "" {
		_, err := op.verifyBundleCheck(c, nil) // the usage error naming the key sources
		return req, err
	}
	verifier, err := withinTimeout(op, c.String("key"), func() (*signing.Verifier, error) {
		return signing.LoadPublicKey(c.String("key"))
	})
	if err != nil {
		return req, op.fail(err)
	}
	req.Verifier = verifier
	req.BundleCheck, err = op.verifyBundleCheck(c, verifier)
	return req, err
}

// verifyOutput is verify's --output json object.
type verifyOutput struct {
	*registry.VerifyResult
	Error *jsonError `json:"error,omitempty"`
}

func printVerify(op *operation, res *registry.VerifyResult) {
	fmt.Fprintf(op.stdout, "%s: %d of %d signatures valid (%s)\n", res.Digest, res.Valid, len(res.Signatures), res.SignatureRef)
	for _, s := range res.Signatures {
		switch {
		case s.Valid && s.LogIndex != nil:
			fmt.Fprintf(op.stdout, "  layer %d %s: valid (transparency log index %d, entry %s)\n", s.Layer, s.Digest, *s.LogIndex, s.LogUUID)
		case s.Valid:
			fmt.Fprintf(op.stdout, "  layer %d %s: valid\n", s.Layer, s.Digest)
		default:
			fmt.Fprintf(op.stdout, "  layer %d %s: invalid: %s\n", s.Layer, s.Digest, s.Error)
		}
	}
}
