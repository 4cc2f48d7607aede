package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/ocisign/ocisign/signing"
)

func generateKeyPairCommand() *cli.Command {
	return &cli.Command{
		Name:  "generate-key-pair",
		Usage: "write an encrypted P-256 key pair that cosign can use (PREFIX.key, PREFIX.pub)",
		Description: "The password comes from COSIGN_PASSWORD (an empty value means no password) or, on a\n" +
			"terminal, from a prompt. Existing files are never overwritten without --force.",
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output-key-prefix", Value: "cosign", Usage: "write `PREFIX`.key and PREFIX.pub"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite existing key files"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("generate-key-pair takes no arguments (use --output-key-prefix)")
			}
			prefix := c.String("output-key-prefix")
			if prefix == "" {
				return usagef("--output-key-prefix must not be empty")
			}
			password, err := newKeyPassword(c)
			if err != nil {
				return err
			}
			keyPath, pubPath, err := signing.GenerateKeyPair(prefix, password, c.Bool("force"))
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "Private key written to %s\nPublic key written to %s\n", keyPath, pubPath)
			return nil
		},
	}
}

// newKeyPassword takes COSIGN_PASSWORD when set (even empty), else asks twice
// on a terminal; there is no password flag so that none lands in shell history.
func newKeyPassword(c *cli.Context) ([]byte, error) {
	if pw, ok := signing.LookupEnvPassword(); ok {
		return []byte(pw), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, errors.New("no password: set COSIGN_PASSWORD (it may be empty) or run on a terminal")
	}
	fmt.Fprint(c.App.ErrWriter, "Enter password for private key: ")
	first, err := term.ReadPassword(fd)
	fmt.Fprintln(c.App.ErrWriter)
	if err != nil {
		return nil, fmt.Errorf("reading password: %w", err)
	}
	fmt.Fprint(c.App.ErrWriter, "Enter password for private key again: ")
	second, err := term.ReadPassword(fd)
	fmt.Fprintln(c.App.ErrWriter)
	if err != nil {
		return nil, fmt.Errorf("reading password: %w", err)
	}
	if !bytes.Equal(first, second) {
		return nil, errors.New("passwords do not match")
	}
	return first, nil
}

func publicKeyCommand() *cli.Command {
	return &cli.Command{
		Name:         "public-key",
		Usage:        "print the PEM public key of a private key",
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "private key `FILE`"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("public-key takes no arguments (use --key FILE)")
			}
			path := c.String("key")
			if path == "" {
				return usagef("public-key needs --key FILE")
			}
			signer, err := signing.LoadPrivateKey(path, signing.EnvPassword(promptPassword(path, c.App.ErrWriter)))
			if err != nil {
				return err
			}
			pub, err := signer.Verifier().PublicKeyPEM()
			if err != nil {
				return err
			}
			_, err = c.App.Writer.Write(pub)
			return err
		},
	}
}
