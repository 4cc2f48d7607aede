package registry

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

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
		return nil, &Error{Op: "sign", Ref: req.Reference, Code: CodeInvalidRequest, detail: "no signing key given"}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	ref, err := parseReference(req.Reference)
	if err != nil {
		return nil, err
	}
	subjRepo := ref.Context()
	sigRepo, err := c.signatureRepository(subjRepo)
	if err != nil {
		return nil, err
	}
	same := sigRepo.Name() == subjRepo.Name()
	subjConn, err := c.conn(ctx, "resolve", subjRepo, same)
	if err != nil {
		return nil, err
	}
	sigConn := subjConn
	if !same {
		if sigConn, err = c.conn(ctx, "connect", sigRepo, true); err != nil {
			return nil, err
		}
	}

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
	logRef := ""
	if req.Tlog != nil {
		logRef = req.Reference
	}
	bundles := &bundleChecker{tlog: req.Tlog, verifier: req.Signer.Verifier(), ref: logRef}

	// One writer per .sig tag on this host from round 1 to the read-back.
	unlock, err := c.lockTags(ctx, sigConn, jobs)
	if err != nil {
		return nil, transportError(ctx, "lock signature tag", req.Reference, err, 0, sigConn.allowHTTP, c.timeoutDesc())
	}
	defer unlock()

	// Round 1 for every digest: read the .sig manifest (‖ open uploads) and
	// dedupe. Nothing is written yet, and nothing goes to the log yet, so a
	// re-sign that is already done never makes a new log entry.
	plans := make([]*appendPlan, len(jobs))
	planErr := c.forEach(len(jobs), func(i int) error {
		var err error
		plans[i], err = c.planAppend(ctx, sigConn, jobs[i], bundles)
		return err
	})
	if err := <-resolved; err != nil {
		return nil, err
	}
	if planErr != nil {
		return nil, planErr
	}

	// Round 2: record the new signatures in the log while their blobs are
	// PUT. No manifest is pushed until every log entry is in: a log failure
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
		blobErr := c.putBlobs(ctx, sigConn, plans[i])
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
	return &SignResult{SignatureDigest: results[0].SignatureDigest, Signed: results}, nil
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
	wantLog     bool       // a transparency log entry was asked for
	tlog        *TlogEntry // set once the log has recorded the signature
}

func (c *Client) prepare(req SignRequest, repo name.Repository, digest string) (*signJob, error) {
	payload, err := signing.Payload(repo.Name(), digest, req.Annotations)
	if err != nil {
		return nil, &Error{Op: "build payload", Ref: repo.Name() + "@" + digest, Code: CodeInternal, Err: err}
	}
	sig, err := req.Signer.Sign(payload)
	if err != nil {
		return nil, &Error{Op: "sign payload", Ref: repo.Name() + "@" + digest, Code: CodeInternal, Err: err}
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
func (c *Client) recordInLog(ctx context.Context, tl TlogUploader, repo name.Repository, job *signJob) error {
	ref := repo.Name() + "@" + job.subject
	pub, err := job.verifier.PublicKeyPEM()
	if err != nil {
		return &Error{Op: "tlog upload", Ref: ref, Code: CodeInternal, Err: err}
	}
	entry, err := tl.Upload(ctx, job.payload, job.signature, pub)
	if err != nil {
		if code, _ := ErrorCode(err); code != CodeInternal {
			return err
		}
		return &Error{Op: "tlog upload", Ref: ref, Code: CodeTlogError, Retryable: retryableNetError(err), Err: err}
	}
	if entry == nil || entry.BundleAnnotation == "" {
		return &Error{Op: "tlog upload", Ref: ref, Code: CodeTlogError, detail: "the transparency log returned no bundle"}
	}
	job.tlog = entry
	job.annotations[BundleAnnotation] = entry.BundleAnnotation
	return nil
}

// TlogBundleChecker is implemented by transparency log clients that can
// check a bundle annotation offline (tlog.Client). Sign uses it to tell
// whether an existing log-backed signature makes a new one unnecessary;
// with an uploader that lacks it, a log-backed request never deduplicates.
type TlogBundleChecker interface {
	BundleCheck(ctx context.Context, v *signing.Verifier) (func(bundleJSON string, payload, signature []byte) (*TlogEntry, error), error)
}

// bundleChecker gets the log's bundle check once per Sign, and only when an
// existing layer needs it (getting it may fetch the log's key).
type bundleChecker struct {
	tlog     TlogUploader
	verifier *signing.Verifier
	ref      string

	mu    sync.Mutex
	done  bool
	check func(string, []byte, []byte) (*TlogEntry, error)
	err   error
}

func (b *bundleChecker) get(ctx context.Context) (func(string, []byte, []byte) (*TlogEntry, error), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		if tc, ok := b.tlog.(TlogBundleChecker); ok {
			b.check, b.err = tc.BundleCheck(ctx, b.verifier)
			if b.err != nil {
				if code, _ := ErrorCode(b.err); code == CodeInternal {
					b.err = &Error{Op: "tlog public key", Ref: b.ref, Code: CodeTlogError, Retryable: retryableNetError(b.err), Err: b.err}
				}
			}
		}
		b.done = ctx.Err() == nil // a cancelled fetch may be retried by a later round
	}
	return b.check, b.err
}

// uploadSession is an open blob upload (POST /blobs/uploads/).
type uploadSession struct {
	location *url.URL
	err      error
}

// appendPlan is round 1's outcome for one job: the .sig manifest as read,
// the open upload sessions, the config to write and the blobs to PUT.
type appendPlan struct {
	existing   *existingSignatures
	config     []byte
	configDesc v1.Descriptor
	blobs      []pendingBlob
	// duplicate: an equivalent signature is already there; entry says which.
	duplicate bool
	entry     SignedEntry
}

type pendingBlob struct {
	data   []byte
	digest string
	upload uploadSession
}

// planAppend is round 1 (docs/design.md): GET the .sig manifest ‖ open two
// uploads; dedupe; compute the config and the blobs still missing.
func (c *Client) planAppend(ctx context.Context, conn *repoConn, job *signJob, bundles *bundleChecker) (*appendPlan, error) {
	job.tag = SignatureTag(job.subject)
	job.sigRef = conn.repo.Tag(job.tag).Name()
	var existing *existingSignatures
	var readErr error
	uploads := make([]uploadSession, 2)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		existing, readErr = c.readSignatures(ctx, conn, job.sigRef, job.tag)
	}()
	for i := range uploads {
		go func() {
			defer wg.Done()
			uploads[i] = c.openUpload(ctx, conn, job.sigRef)
		}()
	}
	wg.Wait()
	if readErr != nil {
		return nil, readErr
	}
	plan := &appendPlan{existing: existing, entry: SignedEntry{Digest: job.subject, SignatureRef: job.sigRef}}
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
			return nil, &Error{Op: "append signature", Ref: job.sigRef, Code: CodeRegistryError,
				detail: fmt.Sprintf("the signature manifest already has %d layers; cosign reads at most %d, refusing to append",
					len(existing.manifest.Layers), maxSignatureLayers)}
		}
	}
	config, err := c.nextConfig(ctx, conn, job.sigRef, existing, job.payloadHash)
	if err != nil {
		return nil, err
	}
	configHash, _ := v1.NewHash(sha256Digest(config))
	plan.config = config
	plan.configDesc = v1.Descriptor{MediaType: configMediaType(manifestType(existing)), Size: int64(len(config)), Digest: configHash}
	// Blobs the repository does not provably have yet.
	if !manifestHasBlob(existing, job.payloadHash.String()) {
		plan.blobs = append(plan.blobs, pendingBlob{job.payload, job.payloadHash.String(), uploads[0]})
	}
	if existing == nil || existing.manifest.Config.Digest != configHash {
		plan.blobs = append(plan.blobs, pendingBlob{config, configHash.String(), uploads[1]})
	}
	return plan, nil
}

// putBlobs is round 2: the plan's blobs, monolithic and in parallel.
func (c *Client) putBlobs(ctx context.Context, conn *repoConn, plan *appendPlan) error {
	errs := make([]error, len(plan.blobs))
	var wg sync.WaitGroup
	for i, b := range plan.blobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.putBlob(ctx, conn, plan.entry.SignatureRef, b.upload, b.digest, b.data)
		}()
	}
	wg.Wait()
	return firstError(errs)
}

// finishAppend is rounds 3 and 4: PUT the manifest (old layers + ours), read
// the tag back and, if a concurrent writer dropped our layer, plan and push
// again (the log entry, if any, is reused).
func (c *Client) finishAppend(ctx context.Context, conn *repoConn, job *signJob, plan *appendPlan, bundles *bundleChecker) (SignedEntry, error) {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			var err error
			if plan, err = c.planAppend(ctx, conn, job, bundles); err != nil {
				return plan.entryOr(job), err
			}
			if !plan.duplicate {
				if err := c.putBlobs(ctx, conn, plan); err != nil {
					return plan.entry, err
				}
			}
		}
		entry := plan.entry
		if plan.duplicate {
			return entry, nil
		}
		if job.tlog != nil {
			idx := job.tlog.LogIndex
			entry.LogIndex, entry.LogUUID = &idx, job.tlog.UUID
		}
		newLayer, _, err := layerDescriptor(job.payload, job.annotations)
		if err != nil {
			return entry, &Error{Op: "append signature", Ref: job.sigRef, Code: CodeInternal, Err: err}
		}
		manifest, err := buildManifest(plan.existing, manifestType(plan.existing), plan.configDesc, newLayer)
		if err != nil {
			return entry, &Error{Op: "append signature", Ref: job.sigRef, Code: CodeInternal, Err: err}
		}
		pushed, err := c.putManifest(ctx, conn, job.sigRef, job.tag, manifest, string(manifestType(plan.existing)))
		if err != nil {
			return entry, err
		}
		entry.SignatureDigest = pushed
		if !c.readBack {
			c.logf("signed %s → %s (%s)", job.subject, job.sigRef, entry.SignatureDigest)
			return entry, nil
		}
		kept, err := c.layerSurvived(ctx, conn, job.sigRef, job.tag, pushed, job)
		if err != nil {
			return entry, err
		}
		if kept != "" {
			entry.SignatureDigest = kept
			c.logf("signed %s → %s (%s)", job.subject, job.sigRef, entry.SignatureDigest)
			return entry, nil
		}
		if attempt+1 >= c.maxPushRetries {
			return entry, &Error{Op: "push signature manifest", Ref: job.sigRef, Code: CodeUnavailable, Retryable: true,
				detail: fmt.Sprintf("concurrent writers replaced the signature manifest %d times; our layer is not in it", attempt+1)}
		}
		c.logf("%s: a concurrent writer replaced the signature manifest; merging again", job.sigRef)
		if err := sleepJitter(ctx, attempt); err != nil {
			return entry, transportError(ctx, "push signature manifest", job.sigRef, err, 0, conn.allowHTTP, c.timeoutDesc())
		}
	}
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
	d := time.Duration(20+rand.IntN(80)) * time.Millisecond << attempt
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
// equivalent to job's: the same payload and media type, every annotation
// of ours present with the same value, and a signature that verifies with
// our key (ECDSA signatures differ every time, so bytes cannot be
// compared). When a log entry is asked for, the layer must also carry a
// bundle that verifies for that payload, signature and key; its entry is
// returned.
func (c *Client) findDuplicate(ctx context.Context, existing *existingSignatures, job *signJob, bundles *bundleChecker) (bool, *TlogEntry, error) {
	for _, l := range existing.manifest.Layers {
		if l.Digest != job.payloadHash || l.MediaType != SimpleSigningMediaType {
			continue
		}
		same := true
		for k, v := range job.annotations {
			if k == SignatureAnnotation || k == BundleAnnotation {
				continue
			}
			if got, ok := l.Annotations[k]; !ok || got != v {
				same = false
			}
		}
		if !same {
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

// hasSignature reports whether existing holds job's very layer (the same
// payload, media type and signature bytes): the read-back check.
func hasSignature(existing *existingSignatures, job *signJob) bool {
	for _, l := range existing.manifest.Layers {
		if l.Digest == job.payloadHash && l.MediaType == SimpleSigningMediaType &&
			l.Annotations[SignatureAnnotation] == job.annotations[SignatureAnnotation] {
			return true
		}
	}
	return false
}

// readSignatures GETs the .sig manifest; nil when there is none yet.
func (c *Client) readSignatures(ctx context.Context, conn *repoConn, sigRef, tag string) (*existingSignatures, error) {
	resp, err := conn.do(ctx, request{op: "read signatures", ref: sigRef, method: http.MethodGet,
		url: conn.url("manifests", tag), accept: manifestAccept, ok: []int{http.StatusOK, http.StatusNotFound}, readBody: true})
	if err != nil {
		return nil, err
	}
	if resp.status == http.StatusNotFound {
		return nil, nil
	}
	existing, err := parseSignatureManifest(resp.body, resp.header.Get("Content-Type"))
	if err != nil {
		return nil, &Error{Op: "read signatures", Ref: sigRef, Code: CodeRegistryError, detail: err.Error()}
	}
	return existing, nil
}

func (c *Client) openUpload(ctx context.Context, conn *repoConn, sigRef string) uploadSession {
	resp, err := conn.do(ctx, request{op: "upload blob", ref: sigRef, method: http.MethodPost,
		url: conn.url("blobs", "uploads/"), ok: []int{http.StatusAccepted}})
	if err != nil {
		return uploadSession{err: err}
	}
	loc := resp.header.Get("Location")
	if loc == "" {
		return uploadSession{err: &Error{Op: "upload blob", Ref: sigRef, Code: CodeRegistryError,
			detail: "the registry opened an upload without a Location header"}}
	}
	u, err := resp.url.Parse(loc)
	if err != nil {
		return uploadSession{err: &Error{Op: "upload blob", Ref: sigRef, Code: CodeRegistryError, Err: err,
			detail: "the registry returned a bad upload Location"}}
	}
	return uploadSession{location: u}
}

// putBlob finishes an upload session with one monolithic PUT.
func (c *Client) putBlob(ctx context.Context, conn *repoConn, sigRef string, up uploadSession, digest string, data []byte) error {
	if up.err != nil {
		return up.err
	}
	u := *up.location
	q := u.Query()
	q.Set("digest", digest)
	u.RawQuery = q.Encode()
	_, err := conn.do(ctx, request{op: "upload blob", ref: sigRef + " (" + digest + ")", method: http.MethodPut,
		url: u.String(), body: data, contentType: "application/octet-stream",
		ok: []int{http.StatusCreated, http.StatusOK, http.StatusNoContent}})
	return err
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
		return "", &Error{Op: "push signature manifest", Ref: sigRef, Code: CodeRegistryError,
			detail: fmt.Sprintf("the registry stored digest %s, the manifest we sent is %s", d, computed)}
	}
	return computed, nil
}

// layerSurvived reads the tag back after our push. It returns the digest the
// tag now points to if our layer is in it, "" if a concurrent writer
// replaced the manifest without it.
func (c *Client) layerSurvived(ctx context.Context, conn *repoConn, sigRef, tag, pushed string, job *signJob) (string, error) {
	resp, err := conn.do(ctx, request{op: "read back signatures", ref: sigRef, method: http.MethodHead,
		url: conn.url("manifests", tag), accept: manifestAccept, ok: []int{http.StatusOK, http.StatusNotFound}})
	if err != nil {
		return "", err
	}
	if resp.status == http.StatusOK && resp.header.Get("Docker-Content-Digest") == pushed {
		return pushed, nil
	}
	current, err := c.readSignatures(ctx, conn, sigRef, tag)
	if err != nil || current == nil {
		return "", err
	}
	if hasSignature(current, job) {
		return current.digest, nil
	}
	return "", nil
}

// nextConfig returns the config blob for the old layers plus ours: the
// canonical mutate.Append form when the old config is canonical (or there
// is none); otherwise the old config fetched and extended, or regenerated
// when it is not an image config at all (some signers store the payload as
// the config).
func (c *Client) nextConfig(ctx context.Context, conn *repoConn, sigRef string, existing *existingSignatures, layer v1.Hash) ([]byte, error) {
	var diffIDs []v1.Hash
	if existing != nil {
		for _, l := range existing.manifest.Layers {
			diffIDs = append(diffIDs, l.Digest)
		}
	}
	canonical := func() ([]byte, error) {
		b, err := canonicalConfig(append(diffIDs[:len(diffIDs):len(diffIDs)], layer))
		if err != nil {
			return nil, &Error{Op: "append signature", Ref: sigRef, Code: CodeInternal, Err: err}
		}
		return b, nil
	}
	if existing == nil {
		return canonical()
	}
	old, err := canonicalConfig(diffIDs)
	if err != nil {
		return nil, &Error{Op: "append signature", Ref: sigRef, Code: CodeInternal, Err: err}
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
		return nil, &Error{Op: "read signature config", Ref: sigRef, Code: CodeRegistryError,
			detail: "the config blob does not match its digest " + cfg.Digest.String()}
	}
	extended, ok, err := extendConfig(resp.body, layer)
	if err != nil {
		return nil, &Error{Op: "append signature", Ref: sigRef, Code: CodeInternal, Err: err}
	}
	if !ok {
		return canonical()
	}
	return extended, nil
}
