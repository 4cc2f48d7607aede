package keyless

import (
	"context"
	"crypto/x509"
	"net/http"
	"time"

	"github.com/ocisign/ocisign/internal/errcode"
	"github.com/ocisign/ocisign/signing"
)

// Options configure one keyless signing.
type Options struct {
	Tokens    TokenSources
	FulcioURL string // "" = DefaultFulcioURL
	// Roots, when set (--fulcio-root / SIGSTORE_ROOT_FILE), must be reached
	// by the certificate's chain before anything is signed or pushed.
	Roots []*x509.Certificate
	// InsecureIgnoreSCT accepts a certificate without a certificate
	// transparency timestamp (a private Fulcio without a CT log).
	InsecureIgnoreSCT bool
	HTTP              *http.Client
	Logf              func(format string, args ...any)
}

// Identity is what a keyless signing signs with: a key made for it (never
// written anywhere) and the certificate Fulcio issued for that key.
type Identity struct {
	Signer      *signing.Signer
	Certificate *signing.Certificate
	Token       *Token
}

// Obtain gets a token, makes a key, asks Fulcio for its certificate and
// checks the certificate (key, chain to Roots, SCT) before returning.
func Obtain(ctx context.Context, opts Options) (*Identity, error) {
	if opts.Tokens.HTTP == nil {
		opts.Tokens.HTTP = opts.HTTP
	}
	tok, err := opts.Tokens.FindToken(ctx)
	if err != nil {
		return nil, err
	}
	url := opts.FulcioURL
	if url == "" {
		url = DefaultFulcioURL
	}
	ca, err := NewFulcio(url)
	if err != nil {
		return nil, err
	}
	ca.HTTP = opts.HTTP
	signer, err := signing.GenerateSigner()
	if err != nil {
		return nil, &errcode.Error{Op: "keyless", Code: errcode.CodeInternal, Err: err}
	}
	cert, detachedSCT, err := ca.SigningCertificate(ctx, tok, signer)
	if err != nil {
		return nil, err
	}
	if len(opts.Roots) > 0 {
		if err := cert.VerifyChain(opts.Roots, time.Now()); err != nil {
			return nil, ca.caError(0, false, err.Error()+" (--fulcio-root / SIGSTORE_ROOT_FILE); nothing was signed")
		}
	} else if opts.Logf != nil {
		opts.Logf("notice: the certificate chain from %s is not checked before signing (no --fulcio-root or SIGSTORE_ROOT_FILE); verifiers check it", ca.Where())
	}
	if !cert.HasSCT() && len(detachedSCT) == 0 && !opts.InsecureIgnoreSCT {
		return nil, ca.caError(0, false, "the certificate has no certificate-transparency timestamp (SCT); a Fulcio without a CT log needs --insecure-ignore-sct")
	}
	return &Identity{Signer: signer, Certificate: cert, Token: tok}, nil
}
