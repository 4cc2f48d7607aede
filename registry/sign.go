package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ocisign/ocisign/internal/errcode"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocisign/ocisign/signing"
)

// parallelAppends bounds concurrent .sig pushes of one recursive Sign.
const parallelAppends = 4

// Sign signs the requested digest (and with Recursive every child of an
// index) and appends each signature to its sha256-<hex>.sig manifest.
func (c *Client) Sign(ctx context.Context, req SignRequest) (*SignResult, error) {
	if req.Signer == nil {
		return nil, &errcode.Error{Op: "sign", Ref: req.Reference, Code: errcode.CodeInvalidRequest, Detail: "no signing key given"}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	ref, subjConn, sigConn, err := c.connections(ctx, req.Reference, true)
	if err != nil {
		return nil, err
	}
	subjRepo := ref.Context()
	tagCheck := c.checkTagTarget(ctx, subjConn, ref, req.Digest)

	// With the digest known and no index to walk, the existence check (a
	// HEAD) runs alongside round 1, which only reads: one round trip fewer.
	// Nothing is written before it has answered.
	resolved := make(chan error, 1)
	var digests []string
	if d := knownDigest(ref, req.Digest); d != "" && !req.Recursive && checkDigest("resolve", req.Reference, d) == nil {
		digests = []string{d}
		go func() {
			_, err := c.subjects(ctx, subjConn, ref, req.Digest, false)
			resolved <- err
		}()
	} else {
		if digests, err = c.subjects(ctx, subjConn, ref, req.Digest, req.Recursive); err != nil {
			return nil, err
		}
		resolved <- nil
	}

	// Sign everything first: pure crypto, nothing leaves the machine.
	jobs := make([]*signJob, len(digests))
	for i, d := range digests {
		job, err := c.prepare(req, subjRepo, d)
		if err != nil {
			return nil, err
		}
		jobs[i] = job
	}
	bundles := &bundleChecker{tlog: req.Tlog, verifier: req.Signer.Verifier(), ref: req.Reference}

	// One writer per .sig tag on this host from round 1 to the read-back.
	unlock, err := c.lockTags(ctx, sigConn, jobs)
	if err != nil {
		return nil, transportError(ctx, "lock signature tag", req.Reference, err, 0, sigConn.allowHTTP, c.timeoutDesc())
	}
	defer unlock()

	// Round 1 for every digest: read the .sig manifest and
	// dedupe. Nothing is written yet, and nothing goes to the log yet, so a
	// re-sign that is already done never makes a new log entry.
	plans := make([]*appendPlan, len(jobs))
	planErr := c.forEach(len(jobs), func(i int) error {
		var err error
		plans[i], err = c.planAppend(ctx, sigConn, jobs[i], bundles, false)
		return err
	})
	if err := <-resolved; err != nil {
		return nil, err
	}
	if planErr != nil {
		return nil, planErr
	}

	// Round 2: record the new signatures in the log while their blobs are
	// PUT and the .sig tag is checked for a write since round 1. No manifest is pushed until every log entry is in: a log failure
	// leaves every .sig tag as it was (the blobs stay unreferenced).
	if err := c.forEach(len(jobs), func(i int) error {
		if plans[i].duplicate {
			return nil
		}
		var logErr error
		var wg sync.WaitGroup
		if req.Tlog != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				logErr = c.recordInLog(ctx, req.Tlog, subjRepo, jobs[i])
			}()
		}
		blobErr := c.putBlobsAndCheckTag(ctx, sigConn, jobs[i], plans[i])
		wg.Wait()
		if logErr != nil {
			return logErr
		}
		return blobErr
	}); err != nil {
		return nil, err
	}

	// Rounds 3 and 4: push each manifest and read it back.
	results := make([]SignedEntry, len(jobs))
	if err := c.forEach(len(jobs), func(i int) error {
		var err error
		results[i], err = c.finishAppend(ctx, sigConn, jobs[i], plans[i], bundles)
		return err
	}); err != nil {
		return nil, err
	}
	res := &SignResult{SignatureDigest: results[0].SignatureDigest, Signed: results}
	if w := <-tagCheck; w != "" {
		res.Warnings = append(res.Warnings, w)
	}
	return res, nil
}

// forEach runs fn for 0..n-1, at most parallelAppends at a time, and
// returns the first error in index order.
func (c *Client) forEach(n int, fn func(i int) error) error {
	errs := make([]error, n)
	sem := make(chan struct{}, parallelAppends)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return firstError(errs)
}

// knownDigest is the digest a request names (the explicit one wins), "" for a tag.
func knownDigest(ref name.Reference, digest string) string {
	if digest != "" {
		return digest
	}
	if d, ok := ref.(name.Digest); ok {
		return d.DigestStr()
	}
	return ""
}

// connections parses reference and connects to the subject's repository
// and to the one holding its .sig tags (the same connection unless
// COSIGN_REPOSITORY moves them). push asks for write access to the
// signature repository; the subject is only ever read.
func (c *Client) connections(ctx context.Context, reference string, push bool) (name.Reference, *repoConn, *repoConn, error) {
	ref, err := parseReference(reference)
	if err != nil {
		return nil, nil, nil, err
	}
	subjRepo := ref.Context()
	sigRepo, err := c.signatureRepository(subjRepo)
	if err != nil {
		return nil, nil, nil, err
	}
	same := sigRepo.Name() == subjRepo.Name()
	subjConn, err := c.conn(ctx, "resolve", subjRepo, push && same)
	if err != nil {
		return nil, nil, nil, err
	}
	if same {
		return ref, subjConn, subjConn, nil
	}
	sigConn, err := c.conn(ctx, "connect", sigRepo, push)
	if err != nil {
		return nil, nil, nil, err
	}
	return ref, subjConn, sigConn, nil
}

func (c *Client) signatureRepository(subj name.Repository) (name.Repository, error) {
	if c.opts.SignatureRepository == "" {
		return subj, nil
	}
	return parseRepository(c.opts.SignatureRepository)
}

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
	// seen: other signers' layers read from the tag during this append, in
	// first-seen order; one that disappears was dropped by a stale writer.
	seen     map[string]json.RawMessage
	seenKeys []string
	// headUnreliable: the tag's HEAD digest disagreed with an unchanged
	// GET, so the pre-push check is not trusted for this append.
	headUnreliable bool
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
	return &signJob{subject: digest, payload: payload, payloadHash: h, signature: sig, verifier: req.Signer.Verifier(),
		wantLog:     req.Tlog != nil,
		annotations: map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}}, nil
}

// recordInLog uploads job's signature to the transparency log and puts the
// returned bundle on its layer.
func (c *Client) recordInLog(ctx context.Context, tl TransparencyLog, repo name.Repository, job *signJob) error {
	ref := repo.Name() + "@" + job.subject
	pub, err := job.verifier.PublicKeyPEM()
	if err != nil {
		return &errcode.Error{Op: "tlog upload", Ref: ref, Code: errcode.CodeInternal, Err: err}
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

// appendPlan is round 1's outcome for one job: the .sig manifest as read,
// the config to write and the blobs to upload.
type appendPlan struct {
	existing *existingSignatures
	// moved: the pre-push check found the tag changed since existing was read.
	moved bool
	// headerDigest: the Docker-Content-Digest of round 1's GET, if any.
	headerDigest string
	config       []byte
	configDesc   v1.Descriptor
	blobs        []pendingBlob
	// duplicate: an equivalent signature is already there; entry says which.
	duplicate bool
	entry     SignedEntry
}

type pendingBlob struct {
	data   []byte
	digest string
}

// planAppend is round 1 (docs/design.md): GET the .sig manifest; dedupe;
// compute the config and the blobs still missing. Nothing is opened on the
// registry until a write is certain (round 2 uploads each blob in one
// request where the registry allows).
// With uploadAll every blob is PUT again, even one the manifest references.
func (c *Client) planAppend(ctx context.Context, conn *repoConn, job *signJob, bundles *bundleChecker, uploadAll bool) (*appendPlan, error) {
	job.tag = SignatureTag(job.subject)
	job.sigRef = conn.repo.Tag(job.tag).Name()
	existing, headerDigest, readErr := c.readSignaturesDigest(ctx, conn, job.sigRef, job.tag)
	if readErr != nil {
		return nil, readErr
	}
	plan := &appendPlan{existing: existing, headerDigest: headerDigest, entry: SignedEntry{Digest: job.subject, SignatureRef: job.sigRef}}
	if existing != nil {
		found, logged, err := c.findDuplicate(ctx, existing, job, bundles)
		if err != nil {
			return nil, err
		}
		if found {
			plan.duplicate = true
			plan.entry.SignatureDigest, plan.entry.Deduplicated = existing.digest, true
			if logged != nil {
				idx := logged.LogIndex
				plan.entry.LogIndex, plan.entry.LogUUID = &idx, logged.UUID
			}
			c.logf("%s already signed with this key and annotations in %s (deduplicated)", job.subject, job.sigRef)
			return plan, nil
		}
		if len(existing.manifest.Layers) >= maxSignatureLayers {
			return nil, &errcode.Error{Op: "append signature", Ref: job.sigRef, Code: errcode.CodeRegistryError,
				Detail: fmt.Sprintf("the signature manifest already has %d layers; cosign reads at most %d, refusing to append",
					len(existing.manifest.Layers), maxSignatureLayers)}
		}
	}
	// Layers a stale writer dropped since we saw them go back in, before ours.
	restored, restoredDigests := job.dropped(existing)
	job.observe(existing)
	config, err := c.nextConfig(ctx, conn, job.sigRef, existing, append(restoredDigests, job.payloadHash))
	if err != nil {
		return nil, err
	}
	if len(restored) > 0 {
		if n := len(existing.manifestLayers()) + len(restored); n >= maxSignatureLayers {
			return nil, &errcode.Error{Op: "append signature", Ref: job.sigRef, Code: errcode.CodeRegistryError,
				Detail: fmt.Sprintf("the signature manifest would have %d layers; cosign reads at most %d, refusing to append", n+1, maxSignatureLayers)}
		}
		c.logf("%s: restoring %d signature layer(s) a concurrent writer dropped", job.sigRef, len(restored))
		existing = withLayers(existing, restored)
		plan.existing = existing
	}
	configHash, _ := v1.NewHash(sha256Digest(config))
	plan.config = config
	plan.configDesc = v1.Descriptor{MediaType: configMediaType(manifestType(existing)), Size: int64(len(config)), Digest: configHash}
	// Blobs the repository does not provably have yet.
	if uploadAll || !manifestHasBlob(existing, job.payloadHash.String()) {
		plan.blobs = append(plan.blobs, pendingBlob{job.payload, job.payloadHash.String()})
	}
	if uploadAll || existing == nil || existing.manifest.Config.Digest != configHash {
		plan.blobs = append(plan.blobs, pendingBlob{config, configHash.String()})
	}
	return plan, nil
}

// putBlobs uploads the plan's blobs, each in one request where it can, in parallel.
func (c *Client) putBlobs(ctx context.Context, conn *repoConn, plan *appendPlan) error {
	errs := make([]error, len(plan.blobs))
	var wg sync.WaitGroup
	for i, b := range plan.blobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.uploadBlob(ctx, conn, plan.entry.SignatureRef, b.digest, b.data)
		}()
	}
	wg.Wait()
	return firstError(errs)
}

// putBlobsAndCheckTag is round 2 for one job: the blob PUTs and, alongside
// them (no extra round trip), a HEAD of the .sig tag. If another writer
// pushed since round 1 read the tag, plan.moved makes finishAppend merge
// again before pushing instead of overwriting that write. When the PUTs
// outlast the HEAD by far (a loaded registry: the case with contention),
// the tag is checked once more so the check stays close to our push.
func (c *Client) putBlobsAndCheckTag(ctx context.Context, conn *repoConn, job *signJob, plan *appendPlan) error {
	if !c.readBack {
		return c.putBlobs(ctx, conn, plan)
	}
	check := func() bool {
		// Advisory: if the HEAD fails, the read-back after the push remains.
		current, known, err := c.tagDigest(ctx, conn, job.sigRef, job.tag)
		if err == nil && known && !job.headUnreliable {
			plan.moved = !plan.isRead(current)
		}
		return err == nil && known
	}
	// The PUTs are sent first: the HEAD then lands as late as it can.
	var err error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		err = c.putBlobs(ctx, conn, plan)
	}()
	start := time.Now()
	checked := check()
	answered := time.Now()
	wg.Wait()
	if err == nil && checked && !plan.moved && time.Since(answered) > max(2*answered.Sub(start), staleCheckAfter) {
		check()
	}
	return err
}

// isRead reports whether digest (from a HEAD; "" = no tag) is the
// manifest round 1 read.
func (p *appendPlan) isRead(digest string) bool {
	if p.existing == nil {
		return digest == ""
	}
	return digest == p.existing.digest || (p.headerDigest != "" && digest == p.headerDigest)
}

// replan redoes rounds 1 and 2 for job after contention was seen.
func (c *Client) replan(ctx context.Context, conn *repoConn, job *signJob, bundles *bundleChecker, uploadAll bool) (*appendPlan, error) {
	plan, err := c.planAppend(ctx, conn, job, bundles, uploadAll)
	if err != nil || plan.duplicate {
		return plan, err
	}
	return plan, c.putBlobsAndCheckTag(ctx, conn, job, plan)
}

// Bounds for one append under contention.
const (
	// maxReplans bounds merges before a push (tag moved, blob unknown).
	maxReplans = 8
	// settleChecks is how many delayed read-backs follow a push that saw
	// contention: a writer that read the tag before our push may still be
	// about to overwrite it.
	settleChecks = 2
	// staleCheckAfter: a pre-push check older than this (and than twice its
	// own latency) when the blob PUTs end is repeated before the push.
	staleCheckAfter = 25 * time.Millisecond
)

// finishAppend is rounds 3 and 4: PUT the manifest (old layers + ours) and
// read the tag back. It merges again (re-read, rebuild, re-upload, push)
// when the tag moved before our push, when the registry lacks a blob the
// merged manifest names, or when our layer is gone after the push. Only
// when contention was seen does it also re-check after a jittered delay.
// The log entry, if any, is reused, never uploaded twice.
func (c *Client) finishAppend(ctx context.Context, conn *repoConn, job *signJob, plan *appendPlan, bundles *bundleChecker) (SignedEntry, error) {
	contended := false
	lost, replans := 0, 0
	for {
		entry := plan.entry
		if plan.duplicate {
			return entry, nil
		}
		if job.tlog != nil {
			idx := job.tlog.LogIndex
			entry.LogIndex, entry.LogUUID = &idx, job.tlog.UUID
		}
		if plan.moved && replans < maxReplans {
			contended = true
			replans++
			c.logf("%s: another writer pushed while we prepared our signature; merging again", job.sigRef)
			before := plan.existing
			var err error
			if plan, err = c.planAppend(ctx, conn, job, bundles, false); err != nil {
				return plan.entryOr(job), err
			}
			if sameManifest(before, plan.existing) {
				// The HEAD said "moved" but the manifest is what we read: a
				// registry whose HEAD digest differs from its GET. Stop asking it.
				job.headUnreliable = true
			}
			if !plan.duplicate {
				if err := c.putBlobsAndCheckTag(ctx, conn, job, plan); err != nil {
					return plan.entry, err
				}
			}
			continue
		}
		newLayer, _, err := layerDescriptor(job.payload, job.annotations)
		if err != nil {
			return entry, &errcode.Error{Op: "append signature", Ref: job.sigRef, Code: errcode.CodeInternal, Err: err}
		}
		manifest, err := buildManifest(plan.existing, manifestType(plan.existing), plan.configDesc, newLayer)
		if err != nil {
			return entry, &errcode.Error{Op: "append signature", Ref: job.sigRef, Code: errcode.CodeInternal, Err: err}
		}
		pushed, err := c.putManifest(ctx, conn, job.sigRef, job.tag, manifest, string(manifestType(plan.existing)))
		if err != nil {
			if !blobUnknown(err) || replans >= maxReplans {
				return entry, err
			}
			// A concurrent writer's blob (or ours) is not linked yet:
			// contention, not a broken registry. Upload everything again.
			contended = true
			replans++
			c.logf("%s: the registry does not have every blob of the merged manifest yet (%v); uploading again", job.sigRef, err)
			if err := sleepJitter(ctx, min(replans-1, 3)); err != nil {
				return entry, transportError(ctx, "push signature manifest", job.sigRef, err, 0, conn.allowHTTP, c.timeoutDesc())
			}
			if plan, err = c.replan(ctx, conn, job, bundles, true); err != nil {
				return plan.entryOr(job), err
			}
			continue
		}
		entry.SignatureDigest = pushed
		if !c.readBack {
			return entry, nil
		}
		kept, moved, err := c.layerSurvived(ctx, conn, job.sigRef, job.tag, pushed, job)
		if err != nil {
			return entry, err
		}
		contended = contended || moved
		if kept != "" && contended {
			if kept, err = c.settle(ctx, conn, job, kept); err != nil {
				return entry, err
			}
		}
		if kept != "" {
			entry.SignatureDigest = kept
			return entry, nil
		}
		contended = true
		lost++
		if lost >= c.maxPushRetries {
			return entry, &errcode.Error{Op: "push signature manifest", Ref: job.sigRef, Code: errcode.CodeUnavailable, Retryable: true,
				Detail: fmt.Sprintf("concurrent writers replaced the signature manifest %d times; our layer is not in it", lost)}
		}
		c.logf("%s: a concurrent writer replaced the signature manifest; merging again", job.sigRef)
		if err := sleepJitter(ctx, lost-1); err != nil {
			return entry, transportError(ctx, "push signature manifest", job.sigRef, err, 0, conn.allowHTTP, c.timeoutDesc())
		}
		if plan, err = c.replan(ctx, conn, job, bundles, false); err != nil {
			return plan.entryOr(job), err
		}
	}
}

// sameManifest reports whether two reads returned the same manifest bytes.
func sameManifest(a, b *existingSignatures) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.digest == b.digest
}

// settle re-reads the tag settleChecks times after jittered delays, for
// writers that read it before our push and push after our read-back. It
// returns the digest holding our layer, "" if our layer is gone.
func (c *Client) settle(ctx context.Context, conn *repoConn, job *signJob, kept string) (string, error) {
	for i := 0; i < settleChecks; i++ {
		if err := sleepJitter(ctx, i+1); err != nil {
			return "", transportError(ctx, "read back signatures", job.sigRef, err, 0, conn.allowHTTP, c.timeoutDesc())
		}
		now, _, err := c.layerSurvived(ctx, conn, job.sigRef, job.tag, kept, job)
		if err != nil || now == "" {
			return "", err
		}
		kept = now
	}
	return kept, nil
}

// blobUnknown reports a manifest PUT refused because a blob it references
// is not (yet) in the repository.
func blobUnknown(err error) bool {
	var e *errcode.Error
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
		return false
	}
	return strings.Contains(e.Detail, "MANIFEST_BLOB_UNKNOWN") || strings.Contains(e.Detail, "BLOB_UNKNOWN") ||
		strings.Contains(e.Detail, "DIGEST_INVALID")
}

func (p *appendPlan) entryOr(job *signJob) SignedEntry {
	if p != nil {
		return p.entry
	}
	return SignedEntry{Digest: job.subject, SignatureRef: job.sigRef}
}

func firstError(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func sleepJitter(ctx context.Context, attempt int) error {
	d := time.Duration(20+rand.IntN(80)) * time.Millisecond << min(attempt, 4)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func manifestType(existing *existingSignatures) types.MediaType {
	if existing == nil {
		return types.OCIManifestSchema1
	}
	return existing.mediaType
}

func manifestHasBlob(existing *existingSignatures, digest string) bool {
	if existing == nil {
		return false
	}
	for _, l := range existing.manifest.Layers {
		if l.Digest.String() == digest {
			return true
		}
	}
	return false
}

// findDuplicate reports whether existing already holds a signature
// equivalent to job's: the same payload (so the same image, reference and
// annotations) and media type, and a signature that verifies with our key
// (ECDSA signatures differ every time, so bytes cannot be compared). When a log entry is asked for, the layer must also carry a
// bundle that verifies for that payload, signature and key; its entry is
// returned.
func (c *Client) findDuplicate(ctx context.Context, existing *existingSignatures, job *signJob, bundles *bundleChecker) (bool, *signing.LogEntry, error) {
	for _, l := range existing.manifest.Layers {
		// The payload's digest covers everything signed: the image digest,
		// the reference and the -a annotations (the payload's "optional"
		// map; layers carry no annotations of their own but the signature
		// and the bundle). An equal digest whose signature verifies with
		// this key is therefore the same signature.
		if l.Digest != job.payloadHash || l.MediaType != SimpleSigningMediaType {
			continue
		}
		sig, err := base64.StdEncoding.Strict().DecodeString(l.Annotations[SignatureAnnotation])
		if err != nil || job.verifier.Verify(job.payload, sig) != nil {
			continue
		}
		if !job.wantLog {
			return true, nil, nil
		}
		bundle, ok := l.Annotations[BundleAnnotation]
		if !ok {
			continue
		}
		check, err := bundles.get(ctx)
		if err != nil {
			return false, nil, err
		}
		if check == nil {
			return false, nil, nil // the uploader cannot check bundles: upload again
		}
		if entry, err := check(bundle, job.payload, sig); err == nil && entry != nil {
			return true, entry, nil
		} else if err != nil {
			c.logf("%s: an existing signature has a log bundle that does not verify (%v); recording a new one", job.sigRef, err)
		}
	}
	return false, nil, nil
}

// isOurs reports whether l is job's very layer.
func isOurs(l v1.Descriptor, job *signJob) bool {
	return l.Digest == job.payloadHash && l.MediaType == SimpleSigningMediaType &&
		l.Annotations[SignatureAnnotation] == job.annotations[SignatureAnnotation]
}

// hasSignature reports whether existing holds job's very layer (the same
// payload, media type and signature bytes): the read-back check.
func hasSignature(existing *existingSignatures, job *signJob) bool {
	return slices.ContainsFunc(existing.manifest.Layers, func(l v1.Descriptor) bool { return isOurs(l, job) })
}

// readSignatures GETs the .sig manifest; nil when there is none yet.
func (c *Client) readSignatures(ctx context.Context, conn *repoConn, sigRef, tag string) (*existingSignatures, error) {
	existing, _, err := c.readSignaturesDigest(ctx, conn, sigRef, tag)
	return existing, err
}

// readSignaturesDigest is readSignatures plus the Docker-Content-Digest the
// registry sent (what its HEAD will say for the same manifest).
func (c *Client) readSignaturesDigest(ctx context.Context, conn *repoConn, sigRef, tag string) (*existingSignatures, string, error) {
	resp, err := conn.do(ctx, request{op: "read signatures", ref: sigRef, method: http.MethodGet,
		url: conn.url("manifests", tag), accept: manifestAccept, ok: []int{http.StatusOK, http.StatusNotFound}, readBody: true})
	if err != nil {
		return nil, "", err
	}
	if resp.status == http.StatusNotFound {
		return nil, "", nil
	}
	existing, err := parseSignatureManifest(resp.body, resp.header.Get("Content-Type"))
	if err != nil {
		return nil, "", &errcode.Error{Op: "read signatures", Ref: sigRef, Code: errcode.CodeRegistryError, Detail: err.Error()}
	}
	return existing, resp.header.Get("Docker-Content-Digest"), nil
}

// putManifest pushes the manifest to the tag and returns its digest.
func (c *Client) putManifest(ctx context.Context, conn *repoConn, sigRef, tag string, manifest []byte, mediaType string) (string, error) {
	resp, err := conn.do(ctx, request{op: "push signature manifest", ref: sigRef, method: http.MethodPut,
		url: conn.url("manifests", tag), body: manifest, contentType: mediaType,
		ok: []int{http.StatusCreated, http.StatusOK, http.StatusNoContent}})
	if err != nil {
		return "", err
	}
	computed := sha256Digest(manifest)
	if d := resp.header.Get("Docker-Content-Digest"); d != "" && d != computed {
		return "", &errcode.Error{Op: "push signature manifest", Ref: sigRef, Code: errcode.CodeRegistryError,
			Detail: fmt.Sprintf("the registry stored digest %s, the manifest we sent is %s", d, computed)}
	}
	return computed, nil
}

// tagDigest HEADs the .sig tag: its digest ("" when there is none) and
// whether the registry said (known is false without Docker-Content-Digest).
func (c *Client) tagDigest(ctx context.Context, conn *repoConn, sigRef, tag string) (digest string, known bool, err error) {
	resp, err := conn.do(ctx, request{op: "read back signatures", ref: sigRef, method: http.MethodHead,
		url: conn.url("manifests", tag), accept: manifestAccept, ok: []int{http.StatusOK, http.StatusNotFound}})
	if err != nil {
		return "", false, err
	}
	if resp.status == http.StatusNotFound {
		return "", true, nil
	}
	d := resp.header.Get("Docker-Content-Digest")
	return d, d != "", nil
}

// layerSurvived reads the tag back after our push. It returns the digest the
// tag now points to if our layer is in it, "" if a concurrent writer
// replaced the manifest without it; moved says the tag is no longer pushed.
func (c *Client) layerSurvived(ctx context.Context, conn *repoConn, sigRef, tag, pushed string, job *signJob) (kept string, moved bool, err error) {
	current, known, err := c.tagDigest(ctx, conn, sigRef, tag)
	if err != nil {
		return "", false, err
	}
	if known && current == pushed {
		return pushed, false, nil
	}
	existing, err := c.readSignatures(ctx, conn, sigRef, tag)
	if err != nil || existing == nil {
		return "", true, err
	}
	if existing.digest == pushed {
		return pushed, false, nil
	}
	// A layer we saw is gone: a stale writer overwrote the tag. Merging
	// again puts ours (if needed) and theirs back.
	if raws, _ := job.dropped(existing); len(raws) > 0 {
		return "", true, nil
	}
	job.observe(existing)
	if hasSignature(existing, job) {
		return existing.digest, true, nil
	}
	return "", true, nil
}

// nextConfig returns the config blob for the old layers plus added (ours
// last): the canonical mutate.Append form when the old config is canonical
// (or there is none); otherwise the old config fetched and extended, or
// regenerated when it is not an image config at all (some signers store the
// payload as the config).
func (c *Client) nextConfig(ctx context.Context, conn *repoConn, sigRef string, existing *existingSignatures, added []v1.Hash) ([]byte, error) {
	var diffIDs []v1.Hash
	if existing != nil {
		for _, l := range existing.manifest.Layers {
			diffIDs = append(diffIDs, l.Digest)
		}
	}
	canonical := func() ([]byte, error) {
		b, err := canonicalConfig(append(diffIDs[:len(diffIDs):len(diffIDs)], added...))
		if err != nil {
			return nil, &errcode.Error{Op: "append signature", Ref: sigRef, Code: errcode.CodeInternal, Err: err}
		}
		return b, nil
	}
	if existing == nil {
		return canonical()
	}
	old, err := canonicalConfig(diffIDs)
	if err != nil {
		return nil, &errcode.Error{Op: "append signature", Ref: sigRef, Code: errcode.CodeInternal, Err: err}
	}
	cfg := existing.manifest.Config
	if cfg.Digest.String() == sha256Digest(old) {
		return canonical()
	}
	if (cfg.MediaType != types.OCIConfigJSON && cfg.MediaType != types.DockerConfigJSON) || cfg.Size > 4<<20 {
		return canonical()
	}
	resp, err := conn.do(ctx, request{op: "read signature config", ref: sigRef + " (" + cfg.Digest.String() + ")",
		method: http.MethodGet, url: conn.url("blobs", cfg.Digest.String()), ok: []int{http.StatusOK}, readBody: true})
	if err != nil {
		return nil, err
	}
	if sha256Digest(resp.body) != cfg.Digest.String() {
		return nil, &errcode.Error{Op: "read signature config", Ref: sigRef, Code: errcode.CodeRegistryError,
			Detail: "the config blob does not match its digest " + cfg.Digest.String()}
	}
	extended := resp.body
	for _, layer := range added {
		var ok bool
		if extended, ok, err = extendConfig(extended, layer); err != nil {
			return nil, &errcode.Error{Op: "append signature", Ref: sigRef, Code: errcode.CodeInternal, Err: err}
		}
		if !ok {
			return canonical()
		}
	}
	return extended, nil
}

// withLayers is existing with raw layers appended (a copy).
func withLayers(existing *existingSignatures, raws []json.RawMessage) *existingSignatures {
	if existing == nil {
		existing = &existingSignatures{mediaType: types.OCIManifestSchema1}
	}
	out := *existing
	out.rawLayers = append(existing.rawLayers[:len(existing.rawLayers):len(existing.rawLayers)], raws...)
	out.manifest.Layers = existing.manifest.Layers[:len(existing.manifest.Layers):len(existing.manifest.Layers)]
	for _, r := range raws {
		var d v1.Descriptor
		_ = json.Unmarshal(r, &d) // checked by dropped
		out.manifest.Layers = append(out.manifest.Layers, d)
	}
	return &out
}

// manifestLayers is existing's layers (none when there is no manifest).
func (e *existingSignatures) manifestLayers() []v1.Descriptor {
	if e == nil {
		return nil
	}
	return e.manifest.Layers
}
