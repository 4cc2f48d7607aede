package main

import (
	"crypto/x509"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ocisign/ocisign/internal/settings"
	"github.com/ocisign/ocisign/keyless"
	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/signing"
	"github.com/ocisign/ocisign/tlog"
)

func signKeylessFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "keyless", Usage: "sign with an OIDC identity instead of a key: a key made for this signing, a short-lived certificate from Fulcio, the signature in Rekor (default: the config's keyless; also chosen when no key is configured and an identity token is available)"},
		&cli.StringFlag{Name: "identity-token", Usage: "`FILE` holding the OIDC identity token, or - for standard input (default $" + keyless.EnvIDToken + ", then GitHub Actions' token endpoint)"},
		&cli.StringFlag{Name: "fulcio-url", Usage: "Fulcio at `URL` (default $" + settings.EnvFulcioURL + ", the config's fulcio_url, then " + keyless.DefaultFulcioURL + ")"},
		fulcioRootFlag("the certificate Fulcio issues must chain to one before anything is pushed"),
		&cli.BoolFlag{Name: "insecure-ignore-sct", Usage: "accept a certificate without a certificate-transparency timestamp (a private Fulcio without a CT log)"},
	}
}

// tokenSources are the places a keyless sign may take its identity from.
func tokenSources(c *cli.Context) keyless.TokenSources {
	return keyless.TokenSources{File: c.String("identity-token"), Stdin: os.Stdin, Getenv: os.Getenv}
}

// useKeyless decides between a key and an OIDC identity: keyless when asked
// for (an explicit --key beats the config's keyless, as sign_key beats it
// in the port), or (with a notice) when no key is configured and a token is
// at hand.
func (op *operation) useKeyless(c *cli.Context) (bool, error) {
	if c.Bool("keyless") && c.IsSet("key") {
		return false, usagef("--keyless and --key exclude each other: sign with one or the other")
	}
	if op.set.Keyless && !c.IsSet("key") {
		return true, nil
	}
	if op.set.SignKey == "" && tokenSources(c).Available() {
		fmt.Fprintf(op.stderr, "notice: no signing key configured and an OIDC identity token is available: signing keylessly (Fulcio + Rekor)\n")
		return true, nil
	}
	return false, nil
}

// keylessIdentity gets the token, the key and Fulcio's certificate.
func (op *operation) keylessIdentity(c *cli.Context) (*keyless.Identity, error) {
	opts := keyless.Options{Tokens: tokenSources(c), FulcioURL: op.set.FulcioURL,
		InsecureIgnoreSCT: c.Bool("insecure-ignore-sct"),
		Logf:              func(format string, args ...any) { fmt.Fprintf(op.stderr, format+"\n", args...) }}
	if path := op.set.FulcioRoot; path != "" {
		roots, err := withinTimeout(op, path, func() ([]*x509.Certificate, error) { return signing.LoadRootCertificates(path) })
		if err != nil {
			return nil, usagef("--fulcio-root: %v", err)
		}
		opts.Roots = roots
	}
	return keyless.Obtain(op.ctx, opts)
}

// keylessLog is the log a keyless sign records in: the one configured, else
// the public Rekor. Keyless signing without a log is refused.
func (op *operation) keylessLog(c *cli.Context) (*tlog.Client, error) {
	if c.IsSet("tlog-upload") && !c.Bool("tlog-upload") {
		return nil, usagef("--tlog-upload=false: a keyless signature needs the transparency log (its certificate expires within minutes; only the log's time shows it was valid)")
	}
	url := op.set.RekorURL
	if url == "" {
		url = tlog.PublicURL
	}
	return op.newLogClient(url, op.set.RekorPublicKey)
}

func fulcioRootFlag(why string) cli.Flag {
	return &cli.StringFlag{Name: "fulcio-root", Usage: "PEM `FILE` of trusted Fulcio root certificates: " + why +
		" (default $" + settings.EnvFulcioRoot + ", then the config's fulcio_root)"}
}

func verifyKeylessFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "certificate-identity", Usage: "keyless: the signer's identity `NAME` (an email or URI in the certificate)"},
		&cli.StringFlag{Name: "certificate-identity-regexp", Usage: "keyless: the signer's identity matches `REGEXP` (whole value)"},
		&cli.StringFlag{Name: "certificate-oidc-issuer", Usage: "keyless: the OIDC issuer `URL` that vouched for the identity"},
		&cli.StringFlag{Name: "certificate-oidc-issuer-regexp", Usage: "keyless: the OIDC issuer matches `REGEXP` (whole value)"},
		fulcioRootFlag("a keyless signature's certificate must chain to one"),
	}
}

func identityPolicy(c *cli.Context) signing.IdentityPolicy {
	return signing.IdentityPolicy{Identity: c.String("certificate-identity"), IdentityRegexp: c.String("certificate-identity-regexp"),
		Issuer: c.String("certificate-oidc-issuer"), IssuerRegexp: c.String("certificate-oidc-issuer-regexp")}
}

// keylessPolicy loads what a keyless verification trusts: the Fulcio roots
// and the log keys (a keyless signature is worthless without its entry).
func (op *operation) keylessPolicy(c *cli.Context, identity signing.IdentityPolicy) (*registry.KeylessPolicy, error) {
	if err := identity.Validate(); err != nil {
		return nil, usagef("%v", err)
	}
	rootPath := op.set.FulcioRoot
	if rootPath == "" {
		return nil, usagef("a keyless verification needs the Fulcio root certificates: --fulcio-root FILE, $%s or fulcio_root in the config", settings.EnvFulcioRoot)
	}
	roots, err := withinTimeout(op, rootPath, func() ([]*x509.Certificate, error) { return signing.LoadRootCertificates(rootPath) })
	if err != nil {
		return nil, usagef("--fulcio-root: %v", err)
	}
	keys, err := op.logKeys(c)
	if err != nil {
		return nil, err
	}
	return &registry.KeylessPolicy{Roots: roots, Identity: identity, LogKeys: keys}, nil
}

// logKeys are the trusted log keys: a key file, else the key of the log at
// the configured URL (fetched once); a usage error names the sources.
func (op *operation) logKeys(c *cli.Context) (*signing.RekorKeys, error) {
	if path := op.set.RekorPublicKey; path != "" {
		keys, err := withinTimeout(op, path, func() (*signing.RekorKeys, error) { return tlog.TrustedKeys(nil, path) })
		if err != nil {
			return nil, op.fail(err)
		}
		return keys, nil
	}
	if op.set.RekorURL == "" {
		return nil, usagef("a keyless verification needs the transparency log's public key: --rekor-public-key FILE, $%s, rekor_public_key in the config, or --rekor-url to fetch it", tlog.EnvPublicKey)
	}
	client, err := op.newLogClient(op.set.RekorURL, "")
	if err != nil {
		return nil, err
	}
	keys, err := client.PublicKeys(op.ctx)
	if err != nil {
		return nil, op.fail(err)
	}
	return keys, nil
}
