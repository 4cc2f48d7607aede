// Request handlers: sign, verify and public_key, with the settings and
// keys they resolve.

package port

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/ocisign/ocisign/internal/errcode"

	"github.com/ocisign/ocisign/internal/settings"
	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/signing"
)

func (s *server) handle(ctx context.Context, req *request) {
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Logf("request %s (%s) panicked: %v\n%s", idText(req.id), req.op, p, debug.Stack())
			s.replyError(req.id, CodeInternal, fmt.Sprintf("internal error while handling %s", req.op), false)
		}
	}()
	// The port owns the deadline so timeout_ms can be longer than the
	// clients' default and a timeout reply names the limit that applied.
	limit, limitName := s.cfg.Registry.Timeout, "the default timeout"
	if req.timeout > 0 {
		limit, limitName = req.timeout, "timeout_ms"
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	ctx = context.WithValue(ctx, deadlineKey{}, fmt.Sprintf("%s (%s)", limit, limitName))
	switch req.op {
	case "sign":
		s.sign(ctx, req, s.settings(req))
	case "verify":
		s.verify(ctx, req, s.settings(req))
	case "public_key":
		s.publicKey(ctx, req, s.settings(req))
	case "identity":
		s.identity(ctx, req, s.settings(req))
	case "connect":
		if err := s.backend(req.allowInsecure).Connect(ctx, req.reference); err != nil {
			s.replyFailure(ctx, req, err)
			return
		}
		s.reply(req.id, okHead(req.id))
	default:
		s.replyError(req.id, CodeInternal, "no handler for op "+req.op, false)
	}
}

// settings resolves the request's fields over the environment and the
// config file, the CLI's order (internal/settings).
func (s *server) settings(req *request) settings.Values {
	op := settings.Sign
	if req.op == "verify" {
		op = settings.Verify
	}
	return settings.Resolve(settings.Values{SignKey: req.signKey, RekorURL: req.rekorURL, RekorPublicKey: req.rekorPublicKey,
		Annotations: req.annotations, Recursive: req.recursive, Keyless: req.keyless, FulcioURL: req.fulcioURL,
		FulcioRoot: req.fulcioRoot}, s.cfg.Getenv, s.cfg.Defaults, op)
}

func (s *server) sign(ctx context.Context, req *request, set settings.Values) {
	var signReq registry.SignRequest
	var identity *keylessReply
	if s.useKeyless(req, set) {
		var ok bool
		if signReq, identity, ok = s.keylessSignRequest(ctx, req, set); !ok {
			return
		}
	} else {
		signer, ok := s.signer(ctx, req, set.SignKey)
		if !ok {
			return
		}
		signReq.Signer = signer
		if set.RekorURL != "" {
			logClient, err := s.logClient(ctx, set.RekorURL, set.RekorPublicKey)
			if err != nil {
				s.replyFailure(ctx, req, err)
				return
			}
			signReq.Tlog = logClient
		}
	}
	signReq.Reference, signReq.Digest, signReq.JustPushed = req.reference, req.digest, req.justPushed
	signReq.Annotations, signReq.Recursive = set.Annotations, set.Recursive
	res, err := s.backend(req.allowInsecure).Sign(ctx, signReq)
	if err == nil && res == nil {
		err = errors.New("registry returned no result")
	}
	if err != nil {
		s.replyFailure(ctx, req, err)
		return
	}
	if w := signReq.Signer.Warning(); w != "" {
		res.Warnings = append([]string{w}, res.Warnings...)
	}
	s.reply(req.id, signReply{replyHead: okHead(req.id), SignResult: res, Keyless: identity})
}

func (s *server) verify(ctx context.Context, req *request, set settings.Values) {
	verifyReq := registry.VerifyRequest{Reference: req.reference, Digest: req.digest, Annotations: set.Annotations, RequireTlog: req.requireTlog}
	if req.identity != (signing.IdentityPolicy{}) {
		policy, ok := s.keylessPolicy(ctx, req, set)
		if !ok {
			return
		}
		verifyReq.Keyless = policy
	} else {
		verifier, err := s.loadPublicKey(ctx, req.publicKey)
		if err != nil {
			s.replyFailure(ctx, req, err)
			return
		}
		check, ok := s.bundleCheck(ctx, req, set, verifier)
		if !ok {
			return
		}
		verifyReq.Verifier, verifyReq.BundleCheck = verifier, check
	}
	res, err := s.backend(req.allowInsecure).Verify(ctx, verifyReq)
	if err == nil && (res == nil || res.Valid == 0) {
		err = &errcode.Error{Op: "verify", Ref: req.reference, Code: CodeVerifyFailed, Err: errors.New("no valid signature")}
	}
	if err != nil {
		if code, _ := errcode.Of(err); code == CodeVerifyFailed && res != nil {
			message := withLayerReasons(err.Error(), res)
			s.logFailure(req, code, message)
			s.replyError(req.id, code, message, false)
			return
		}
		s.replyFailure(ctx, req, err)
		return
	}
	s.reply(req.id, verifyReply{replyHead: okHead(req.id), VerifyResult: res})
}

func (s *server) publicKey(ctx context.Context, req *request, set settings.Values) {
	signer, ok := s.signer(ctx, req, set.SignKey)
	if !ok {
		return
	}
	pemBytes, err := signer.Verifier().PublicKeyPEM()
	if err != nil {
		s.replyFailure(ctx, req, err)
		return
	}
	s.reply(req.id, publicKeyReply{replyHead: okHead(req.id), PublicKey: string(pemBytes), Algorithm: string(signer.Algorithm())})
}

// signer loads the resolved key (request sign_key > OCIBUILD_SIGN_KEY > the
// config's sign_key) through the key cache, waiting no longer than ctx;
// on failure it has replied.
func (s *server) signer(ctx context.Context, req *request, path string) (*signing.Signer, bool) {
	if path == "" {
		s.replyError(req.id, CodeInvalidRequest, noSignKeyMessage, false)
		return nil, false
	}
	signer, err := s.keys.get(ctx, path)
	if err != nil {
		s.replyFailure(ctx, req, err)
		return nil, false
	}
	return signer, true
}

// noSignKeyMessage is the invalid_request message when no key source names
// a signing key.
const noSignKeyMessage = `no sign_key in the request, OCIBUILD_SIGN_KEY is not set, and no config file gives a sign_key (ocisign --config FILE port, or OCISIGN_CONFIG)`

// loadPublicKey loads a verification key, waiting no longer than ctx.
// Pipes and devices are refused, as for signing keys.
func (s *server) loadPublicKey(ctx context.Context, path string) (*signing.Verifier, error) {
	return waitFor(ctx, path, func() (*signing.Verifier, error) { return s.cfg.LoadPublicKey(path) })
}

// withLayerReasons makes sure the message says why each signature layer
// was refused, adding the reasons the error text does not already carry.
func withLayerReasons(message string, res *registry.VerifyResult) string {
	var missing []string
	for _, c := range res.Signatures {
		if c.Valid {
			continue
		}
		reason := c.Error
		if reason == "" {
			reason = "not valid"
		}
		if c.Error == "" || !strings.Contains(message, c.Error) {
			missing = append(missing, fmt.Sprintf("layer %d (%s): %s", c.Layer, c.Digest, reason))
		}
	}
	if len(missing) == 0 {
		return message
	}
	return message + ": " + strings.Join(missing, "; ")
}
