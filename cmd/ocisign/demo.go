package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	gcrname "github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/urfave/cli/v2"

	"github.com/ocisign/ocisign/internal/memregistry"
	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/signing"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "sign and verify a multi-platform image on an embedded loopback registry (no network)",
		Description: "Starts an in-process registry on 127.0.0.1, pushes a small two-platform image, generates a\n" +
			"throwaway encrypted key pair, signs the index and every platform manifest, and verifies each.",
		OnUsageError: onUsageError,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("demo takes no arguments")
			}
			return runDemo(c.Context, c.App.Writer)
		},
	}
}

func runDemo(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	addr, stop, err := memregistry.Start()
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(out, "1. embedded registry listening on %s\n", addr)

	ref := addr + "/demo/app:1.0"
	idx, _, err := memregistry.RandomIndex(memregistry.Platforms(2))
	if err != nil {
		return err
	}
	tag, err := gcrname.NewTag(ref)
	if err != nil {
		return err
	}
	if err := remote.WriteIndex(tag, idx, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("pushing the demo image: %w", err)
	}
	fmt.Fprintf(out, "2. pushed %s (an index of linux/amd64 and linux/arm64)\n", ref)

	dir, err := os.MkdirTemp("", "ocisign-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	password := make([]byte, 16)
	if _, err := rand.Read(password); err != nil {
		return err
	}
	password = []byte(hex.EncodeToString(password))
	keyPath, pubPath, err := signing.GenerateKeyPair(filepath.Join(dir, "demo"), password, false)
	if err != nil {
		return err
	}
	signer, err := signing.LoadPrivateKey(keyPath, func() ([]byte, error) { return password, nil })
	if err != nil {
		return err
	}
	verifier, err := signing.LoadPublicKey(pubPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "3. generated a throwaway encrypted P-256 key pair (%s)\n", filepath.Base(keyPath))

	client := registry.New(registry.Options{})
	res, err := client.Sign(ctx, registry.SignRequest{Reference: ref, Signer: signer, Recursive: true})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "4. signed recursively (%d digests):\n", len(res.Signed))
	for _, s := range res.Signed {
		fmt.Fprintf(out, "   %s -> %s@%s\n", s.Digest, s.SignatureRef, s.SignatureDigest)
	}

	fmt.Fprintf(out, "5. verified with the public key:\n")
	for _, s := range res.Signed {
		v, err := client.Verify(ctx, registry.VerifyRequest{Reference: ref, Digest: s.Digest, Verifier: verifier})
		if err != nil {
			return fmt.Errorf("verifying %s: %w", s.Digest, err)
		}
		fmt.Fprintf(out, "   %s: %d valid signature(s)\n", s.Digest, v.Valid)
	}
	fmt.Fprintf(out, "done: every digest carries a cosign-compatible signature (cosign verify --key … --insecure-ignore-tlog accepts it)\n")
	return nil
}
