// One signature on its way: the job, what it has seen of the .sig tag, and
// the transparency log step.

package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/ocisign/ocisign/internal/errcode"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocisign/ocisign/signing"
)

// signJob is one signature ready to be appended.
type signJob struct {
	subject     string // signed digest
	sigRef      string // repo:sha256-<hex>.sig
	tag         string
	payload     []byte
	payloadHash v1.Hash
	signature   []byte
	annotations map[string]string // layer annotations
	verifier    *signing.Verifier
	wantLog     bool              // a transparency log entry was asked for
	tlog        *signing.LogEntry // set once the log has recorded the signature
	certificate *signing.Certificate
	justPushed  bool // SignRequest.JustPushed
	// seen: other signers' layers read from the tag during this append, in
	// first-seen order; one that disappears was dropped by a stale writer.
	seen     map[string]json.RawMessage
	seenKeys []string
	// headUnreliable: the tag's HEAD digest disagreed with an unchanged
	// GET, so the pre-push check is not trusted for this append.
	headUnreliable bool
	// cancels wait for the DELETEs of upload sessions its plans left unused.
	cancels []func()
}

// layerKey identifies a signature layer: payload digest and signature.
func layerKey(l v1.Descriptor) string {
	return l.Digest.String() + "\x00" + l.Annotations[SignatureAnnotation]
}

// observe records the layers of a manifest read from the tag (ours excluded).
func (job *signJob) observe(existing *existingSignatures) {
	if existing == nil {
		return
	}
	if job.seen == nil {
		job.seen = map[string]json.RawMessage{}
	}
	for i, l := range existing.manifest.Layers {
		if l.Annotations[SignatureAnnotation] == "" || isOurs(l, job) {
			continue
		}
		k := layerKey(l)
		if _, ok := job.seen[k]; !ok {
			job.seen[k] = existing.rawLayers[i]
			job.seenKeys = append(job.seenKeys, k)
		}
	}
}

// dropped returns the raw descriptors of seen layers existing lacks.
func (job *signJob) dropped(existing *existingSignatures) (raws []json.RawMessage, digests []v1.Hash) {
	have := map[string]bool{}
	if existing != nil {
		for _, l := range existing.manifest.Layers {
			have[layerKey(l)] = true
		}
	}
	for _, k := range job.seenKeys {
		if have[k] {
			continue
		}
		var d v1.Descriptor
		if json.Unmarshal(job.seen[k], &d) != nil {
			continue
		}
		raws = append(raws, job.seen[k])
		digests = append(digests, d.Digest)
	}
	return raws, digests
}

func (c *Client) prepare(req SignRequest, repo name.Repository, digest string) (*signJob, error) {
	payload, err := signing.Payload(repo.Name(), digest, req.Annotations)
	if err != nil {
		return nil, &errcode.Error{Op: "build payload", Ref: repo.Name() + "@" + digest, Code: errcode.CodeInternal, Err: err}
	}
	sig, err := req.Signer.Sign(payload)
	if err != nil {
		return nil, &errcode.Error{Op: "sign payload", Ref: repo.Name() + "@" + digest, Code: errcode.CodeInternal, Err: err}
	}
	h, err := v1.NewHash(sha256Digest(payload))
	if err != nil {
		return nil, err
	}
	job := &signJob{subject: digest, payload: payload, payloadHash: h, signature: sig, verifier: req.Signer.Verifier(),
		wantLog: req.Tlog != nil, certificate: req.Certificate, justPushed: req.JustPushed,
		annotations: map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}}
	if c := req.Certificate; c != nil {
		job.annotations[CertificateAnnotation] = string(c.LeafPEM)
		if len(c.ChainPEM) > 0 {
			job.annotations[ChainAnnotation] = string(c.ChainPEM)
		}
	}
	return job, nil
}

// recordInLog uploads job's signature to the transparency log and puts the
// returned bundle on its layer.
func (c *Client) recordInLog(ctx context.Context, tl TransparencyLog, repo name.Repository, job *signJob) error {
	ref := repo.Name() + "@" + job.subject
	pub, err := job.verifier.PublicKeyPEM()
	if err != nil {
		return &errcode.Error{Op: "tlog upload", Ref: ref, Code: errcode.CodeInternal, Err: err}
	}
	if job.certificate != nil {
		pub = job.certificate.LeafPEM // the log records who signed, not just a key
	}
	entry, err := tl.Upload(ctx, job.payload, job.signature, pub)
	if err != nil {
		if code, _ := errcode.Of(err); code != errcode.CodeInternal {
			return err
		}
		return &errcode.Error{Op: "tlog upload", Ref: ref, Code: errcode.CodeTlogError, Retryable: retryableNetError(err), Err: err}
	}
	if entry == nil || entry.BundleAnnotation == "" {
		return &errcode.Error{Op: "tlog upload", Ref: ref, Code: errcode.CodeTlogError, Detail: "the transparency log returned no bundle"}
	}
	if c := job.certificate; c != nil {
		at := time.Unix(entry.IntegratedTime, 0)
		if at.Before(c.Leaf.NotBefore) || at.After(c.Leaf.NotAfter) {
			return &errcode.Error{Op: "tlog upload", Ref: ref, Code: errcode.CodeTlogError,
				Detail: fmt.Sprintf("the log recorded the signature at %s, outside the certificate's validity (%s to %s); nothing was pushed",
					at.UTC().Format(time.RFC3339), c.Leaf.NotBefore.UTC().Format(time.RFC3339), c.Leaf.NotAfter.UTC().Format(time.RFC3339))}
		}
	}
	job.tlog = entry
	job.annotations[BundleAnnotation] = entry.BundleAnnotation
	return nil
}

// bundleChecker gets the log's bundle check once per Sign, and only when an
// existing layer needs it (getting it may fetch the log's key).
type bundleChecker struct {
	tlog     TransparencyLog
	verifier *signing.Verifier
	ref      string

	mu    sync.Mutex
	done  bool
	check signing.BundleCheck
	err   error
}

func (b *bundleChecker) get(ctx context.Context) (signing.BundleCheck, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		b.check, b.err = b.tlog.BundleCheck(ctx, b.verifier)
		if b.err != nil {
			if code, _ := errcode.Of(b.err); code == errcode.CodeInternal {
				b.err = &errcode.Error{Op: "tlog public key", Ref: b.ref, Code: errcode.CodeTlogError, Retryable: retryableNetError(b.err), Err: b.err}
			}
		}
		b.done = ctx.Err() == nil // a cancelled fetch may be retried by a later round
	}
	return b.check, b.err
}
