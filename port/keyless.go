// Keyless signing and verification for port requests: the same choices
// and checks as the CLI (cmd/ocisign/keyless.go), fed from request fields.

package port

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/ocisign/ocisign/internal/settings"
	"github.com/ocisign/ocisign/keyless"
	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/signing"
	"github.com/ocisign/ocisign/tlog"
)

// tokenSources are the request's identity_token, then the port's
// environment (SIGSTORE_ID_TOKEN, GitHub Actions' variables).
func (s *server) tokenSources(req *request) keyless.TokenSources {
	return keyless.TokenSources{Token: req.identityToken, Getenv: s.cfg.Getenv}
}

// useKeyless: asked for (request or config), or no key anywhere and an
// identity token at hand.
func (s *server) useKeyless(req *request, set settings.Values) bool {
	if set.Keyless && req.signKey == "" {
		return true
	}
	if set.SignKey == "" && s.tokenSources(req).Available() {
		s.cfg.Logf("request %s: no signing key configured and an OIDC identity token is available: signing keylessly", idText(req.id))
		return true
	}
	return false
}

// keylessSignRequest gets Fulcio's certificate for a key made now and the
// log (required: the configured one, else the public Rekor); on failure it
// has replied.
func (s *server) keylessSignRequest(ctx context.Context, req *request, set settings.Values) (registry.SignRequest, *keylessReply, bool) {
	rekorURL := set.RekorURL
	if rekorURL == "" {
		rekorURL = tlog.PublicURL
	}
	logClient, err := s.logClient(ctx, rekorURL, set.RekorPublicKey)
	if err != nil {
		s.replyFailure(ctx, req, err)
		return registry.SignRequest{}, nil, false
	}
	opts := keyless.Options{Tokens: s.tokenSources(req), FulcioURL: set.FulcioURL, InsecureIgnoreSCT: req.insecureIgnoreSCT,
		Logf: func(format string, args ...any) {
			s.cfg.Logf("request %s: "+format, append([]any{idText(req.id)}, args...)...)
		}}
	if set.FulcioRoot != "" {
		if opts.Roots, err = s.loadRoots(ctx, set.FulcioRoot); err != nil {
			s.replyFailure(ctx, req, err)
			return registry.SignRequest{}, nil, false
		}
	}
	id, err := keyless.Obtain(ctx, opts)
	if err != nil {
		s.replyFailure(ctx, req, err)
		return registry.SignRequest{}, nil, false
	}
	reply := &keylessReply{Identities: id.Certificate.Identities(), Issuer: id.Certificate.Issuer(),
		NotAfter: id.Certificate.Leaf.NotAfter.UTC().Format(time.RFC3339)}
	return registry.SignRequest{Signer: id.Signer, Certificate: id.Certificate, Tlog: logClient}, reply, true
}

// keylessPolicy is what a keyless verify trusts: the Fulcio roots and the
// log keys, both required; on failure it has replied.
func (s *server) keylessPolicy(ctx context.Context, req *request, set settings.Values) (*registry.KeylessPolicy, bool) {
	if set.FulcioRoot == "" {
		s.replyError(req.id, CodeInvalidRequest, "a keyless verify needs the Fulcio root certificates: give fulcio_root, or set "+
			settings.EnvFulcioRoot, false)
		return nil, false
	}
	roots, err := s.loadRoots(ctx, set.FulcioRoot)
	if err != nil {
		s.replyFailure(ctx, req, err)
		return nil, false
	}
	var keys *signing.RekorKeys
	switch {
	case set.RekorPublicKey != "":
		keys, err = s.loadLogKeys(ctx, set.RekorPublicKey)
	case set.RekorURL != "":
		var c *tlog.Client
		if c, err = s.logClient(ctx, set.RekorURL, ""); err == nil {
			keys, err = c.PublicKeys(ctx)
		}
	default:
		s.replyError(req.id, CodeInvalidRequest, "a keyless verify needs the log's public key: give rekor_public_key or rekor_url, or set "+
			tlog.EnvPublicKey+" or "+tlog.EnvURL, false)
		return nil, false
	}
	if err != nil {
		s.replyFailure(ctx, req, err)
		return nil, false
	}
	return &registry.KeylessPolicy{Roots: roots, Identity: req.identity, LogKeys: keys}, true
}

// loadRoots reads a PEM file of Fulcio roots, waiting no longer than ctx.
func (s *server) loadRoots(ctx context.Context, path string) ([]*x509.Certificate, error) {
	return waitFor(ctx, path, func() ([]*x509.Certificate, error) { return signing.LoadRootCertificates(path) })
}

// identity checks, before anything is pushed, what a keyless sign will
// need and can be checked without Fulcio: an identity token that is
// unexpired and for Fulcio's audience, a usable Fulcio URL and root file.
// It does not ask Fulcio for a certificate (one lives ten minutes; a build
// may take longer).
func (s *server) identity(ctx context.Context, req *request, set settings.Values) {
	if set.FulcioURL != "" {
		if _, err := keyless.NewFulcio(set.FulcioURL); err != nil {
			s.replyFailure(ctx, req, err)
			return
		}
	}
	if set.FulcioRoot != "" {
		if _, err := s.loadRoots(ctx, set.FulcioRoot); err != nil {
			s.replyFailure(ctx, req, err)
			return
		}
	}
	tok, err := s.tokenSources(req).FindToken(ctx)
	if err != nil {
		s.replyFailure(ctx, req, err)
		return
	}
	s.reply(req.id, identityReply{replyHead: okHead(req.id), Issuer: tok.Issuer, Subject: tok.Principal(), Source: tok.Source,
		Expires: tok.Expiry.UTC().Format(time.RFC3339)})
}
