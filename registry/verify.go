package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/ocisign/ocisign/internal/errcode"

	"github.com/ocisign/ocisign/signing"
)

// parallelBlobReads bounds concurrent signature layer downloads.
const parallelBlobReads = 8

// Verify checks every layer of the image's .sig manifest against the key,
// the digest claim and the required annotations, as cosign verify --key
// does. The result is non-nil whenever signatures were read, also when the
// error is verification_failed.
func (c *Client) Verify(ctx context.Context, req VerifyRequest) (*VerifyResult, error) {
	if (req.Verifier == nil) == (req.Keyless == nil) {
		return nil, &errcode.Error{Op: "verify", Ref: req.Reference, Code: errcode.CodeInvalidRequest,
			Detail: "give either a public key or a keyless identity policy"}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	ref, subjConn, sigConn, err := c.connections(ctx, req.Reference, false)
	if err != nil {
		return nil, err
	}
	subj, err := c.resolve(ctx, subjConn, ref, req.Digest, false)
	if err != nil {
		return nil, err
	}
	tag := SignatureTag(subj.digest)
	sigRef := sigConn.repo.Tag(tag).Name()
	result := &VerifyResult{Digest: subj.digest, SignatureRef: sigRef, Signatures: []SignatureCheck{}}

	existing, err := c.readSignatures(ctx, sigConn, sigRef, tag)
	if err != nil {
		return nil, err
	}
	if existing == nil {
		return result, &errcode.Error{Op: "verify", Ref: ref.Context().Name() + "@" + subj.digest, Code: errcode.CodeVerificationFailed,
			Detail: "no signatures found (no " + sigRef + ")"}
	}
	layers := existing.manifest.Layers
	if len(layers) > maxSignatureLayers {
		return result, &errcode.Error{Op: "verify", Ref: sigRef, Code: errcode.CodeVerificationFailed,
			Detail: fmt.Sprintf("the signature manifest has %d layers, more than the %d cosign reads", len(layers), maxSignatureLayers)}
	}

	result.Signatures = make([]SignatureCheck, len(layers))
	sem := make(chan struct{}, parallelBlobReads)
	var wg sync.WaitGroup
	for i := range layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			result.Signatures[i] = c.checkLayer(ctx, sigConn, sigRef, i, existing, subj.digest, req)
		}()
	}
	wg.Wait()

	var reasons []string
	kept := 0
	for i, s := range result.Signatures {
		if s.Valid {
			result.Valid++
			if kept += len(s.Payload); kept > maxKeptPayloadBytes {
				result.Signatures[i].Payload = ""
			}
		} else {
			reasons = append(reasons, fmt.Sprintf("layer %d: %s", s.Layer, s.Error))
		}
	}
	if err := ctx.Err(); err != nil {
		return result, transportError(ctx, "verify", sigRef, err, 0, sigConn.allowHTTP, c.timeoutDesc())
	}
	if result.Valid == 0 {
		return result, &errcode.Error{Op: "verify", Ref: ref.Context().Name() + "@" + subj.digest, Code: errcode.CodeVerificationFailed,
			Detail: "no matching signatures: " + strings.Join(reasons, "; ")}
	}
	return result, nil
}

// checkKeyed verifies a layer's signature with the request's key and, when
// a bundle check is configured, its log bundle (required with RequireTlog).
// The entry is nil when the layer's log entry was not checked.
func (c *Client) checkKeyed(payload, sig []byte, l v1.Descriptor, req VerifyRequest, where string) (*signing.LogEntry, error) {
	if err := req.Verifier.Verify(payload, sig); err != nil {
		return nil, err
	}
	bundle, ok := l.Annotations[BundleAnnotation]
	switch {
	case ok && req.BundleCheck != nil:
		entry, err := req.BundleCheck(bundle, payload, sig)
		if err != nil && req.RequireTlog {
			return nil, fmt.Errorf("transparency log bundle: %v", err)
		}
		if err != nil {
			c.logf("%s: ignoring transparency log bundle that does not verify: %v", where, err)
		}
		return entry, nil
	case req.RequireTlog:
		return nil, errors.New("a transparency log bundle is required but no bundle check is configured")
	}
	return nil, nil
}

// checkLayer gives the verdict on one signature layer.
func (c *Client) checkLayer(ctx context.Context, conn *repoConn, sigRef string, i int, existing *existingSignatures,
	digest string, req VerifyRequest) SignatureCheck {
	l := existing.manifest.Layers[i]
	check := SignatureCheck{Layer: i, Digest: l.Digest.String()}
	fail := func(format string, args ...any) SignatureCheck {
		check.Error = fmt.Sprintf(format, args...)
		return check
	}
	// Everything that needs no download first: a hostile .sig costs no
	// more than its manifest until a layer passes these.
	if l.Digest.Algorithm != "sha256" {
		return fail("layer digest %s is not sha256", l.Digest)
	}
	if l.Size > maxPayloadBytes {
		return fail("payload of %d bytes is larger than the %d bytes a signature payload may have", l.Size, maxPayloadBytes)
	}
	sigB64, ok := l.Annotations[SignatureAnnotation]
	if !ok {
		return fail("no %s annotation", SignatureAnnotation)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(sigB64)
	if err != nil {
		return fail("signature annotation is not standard base64: %v", err)
	}
	_, hasBundle := l.Annotations[BundleAnnotation]
	if (req.RequireTlog || req.Keyless != nil) && !hasBundle {
		return fail("no transparency log bundle (%s) and one is required", BundleAnnotation)
	}
	var cert *signing.Certificate
	if req.Keyless != nil {
		if cert, err = keylessCertificate(l, req.Keyless); err != nil {
			return fail("%v", err)
		}
	}
	resp, err := conn.do(ctx, request{op: "read signature layer", ref: sigRef + " (" + l.Digest.String() + ")",
		method: http.MethodGet, url: conn.url("blobs", l.Digest.String()), ok: []int{http.StatusOK},
		readBody: true, maxBody: maxPayloadBytes})
	if err != nil {
		return fail("%v", err)
	}
	payload := resp.body
	if sha256Digest(payload) != l.Digest.String() {
		return fail("payload blob does not match its digest %s", l.Digest)
	}
	var logged *signing.LogEntry
	if cert != nil {
		if logged, err = checkKeyless(cert, l.Annotations[BundleAnnotation], payload, sig, req.Keyless); err != nil {
			return fail("%v", err)
		}
	} else if logged, err = c.checkKeyed(payload, sig, l, req, fmt.Sprintf("%s layer %d", sigRef, i)); err != nil {
		return fail("%v", err)
	}
	if logged != nil {
		idx := logged.LogIndex
		check.LogIndex, check.LogUUID = &idx, logged.UUID
	}
	p, err := signing.ParsePayload(payload)
	if err != nil {
		return fail("%v", err)
	}
	if got := p.Critical.Image.DockerManifestDigest; got != digest {
		return fail("signature is for %s, not %s", got, digest)
	}
	for k, want := range req.Annotations {
		got, ok := p.Optional[k]
		if !ok {
			return fail("annotation %q missing from the payload", k)
		}
		s, isString := got.(string)
		if !isString {
			gotJSON, _ := json.Marshal(got)
			return fail("annotation %q is %s (not a string), want %q", k, gotJSON, want)
		}
		if s != want {
			return fail("annotation %q is %q, want %q", k, s, want)
		}
	}
	// Only a valid layer's payload is kept: an invalid one may be anything.
	check.Valid, check.Payload = true, string(payload)
	return check
}
