package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/signing"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check the image's signatures against a public key (exit 0 only if one is valid)",
		ArgsUsage: "IMAGE",
		Description: "Checks every layer of the image's sha256-<hex>.sig manifest: the signature over the payload,\n" +
			"the payload's digest claim, and each -a annotation. Reads signatures made by cosign too.",
		OnUsageError: onUsageError,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "public key `FILE` (PEM PUBLIC KEY or RSA PUBLIC KEY)"},
		}, commonFlags()...),
		Action: runVerify,
	}
}

func runVerify(c *cli.Context) error {
	op, err := newOperation(c)
	if err != nil {
		return err
	}
	if c.String("key") == "" {
		return usagef("verify needs --key FILE (the public key, e.g. cosign.pub)")
	}
	verifier, err := signing.LoadPublicKey(c.String("key"))
	if err != nil {
		return op.fail(err)
	}
	res, err := op.client.Verify(context.Background(), registry.VerifyRequest{
		Reference:   op.image,
		Verifier:    verifier,
		Annotations: op.annotations,
	})
	if res != nil {
		if op.json {
			if werr := writeJSON(op.stdout, res); werr != nil {
				return werr
			}
		} else {
			printVerify(op, res)
		}
	}
	if err != nil {
		if res != nil && op.json {
			// The result already went to stdout; the reason goes to stderr.
			fmt.Fprintf(op.stderr, "ocisign: %v\n", err)
			return &reportedError{code: exitFailed}
		}
		return op.fail(err)
	}
	return nil
}

func printVerify(op *operation, res *registry.VerifyResult) {
	fmt.Fprintf(op.stdout, "%s: %d of %d signatures valid (%s)\n", res.Digest, res.Valid, len(res.Signatures), res.SignatureRef)
	for _, s := range res.Signatures {
		if s.Valid {
			fmt.Fprintf(op.stdout, "  layer %d %s: valid\n", s.Layer, s.Digest)
		} else {
			fmt.Fprintf(op.stdout, "  layer %d %s: invalid: %s\n", s.Layer, s.Digest, s.Error)
		}
	}
}
