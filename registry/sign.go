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

	digests, err := c.subjects(ctx, subjConn, ref, req.Digest, req.Recursive)
	if err != nil {
		return nil, err
	}

	// Sign (and log) everything before anything is pushed.
	jobs := make([]*signJob, len(digests))
	for i, d := range digests {
		job, err := c.prepare(ctx, req, subjRepo, d)
		if err != nil {
			return nil, err
		}
		jobs[i] = job
	}

	results := make([]SignedEntry, len(jobs))
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, parallelAppends)
	var wg sync.WaitGroup
	for i, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i], errs[i] = c.appendSignature(ctx, sigConn, job)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return &SignResult{SignatureDigest: results[0].SignatureDigest, Signed: results}, nil
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
	payload     []byte
	payloadHash v1.Hash
	annotations map[string]string // layer annotations
	verifier    *signing.Verifier
	tlog        *TlogEntry
}

func (c *Client) prepare(ctx context.Context, req SignRequest, repo name.Repository, digest string) (*signJob, error) {
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
	job := &signJob{subject: digest, payload: payload, payloadHash: h, verifier: req.Signer.Verifier(),
		annotations: map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}}
	if req.Tlog != nil {
		pub, err := job.verifier.PublicKeyPEM()
		if err != nil {
			return nil, &Error{Op: "tlog upload", Ref: repo.Name() + "@" + digest, Code: CodeInternal, Err: err}
		}
		entry, err := req.Tlog.Upload(ctx, payload, sig, pub)
		if err != nil {
			if code, _ := ErrorCode(err); code != CodeInternal {
				return nil, err
			}
			return nil, &Error{Op: "tlog upload", Ref: repo.Name() + "@" + digest, Code: CodeTlogError,
				Retryable: retryableNetError(err), Err: err}
		}
		if entry == nil || entry.BundleAnnotation == "" {
			return nil, &Error{Op: "tlog upload", Ref: repo.Name() + "@" + digest, Code: CodeTlogError,
				detail: "the transparency log returned no bundle"}
		}
		job.tlog = entry
		job.annotations[BundleAnnotation] = entry.BundleAnnotation
	}
	return job, nil
}

// uploadSession is an open blob upload (POST /blobs/uploads/).
type uploadSession struct {
	location *url.URL
	err      error
}

// appendSignature adds job's layer to the .sig manifest in few round trips
// (docs/design.md): GET manifest ‖ open two uploads; PUT blobs ‖; PUT
// manifest; read back the tag and merge again if a concurrent writer
// dropped our layer.
func (c *Client) appendSignature(ctx context.Context, conn *repoConn, job *signJob) (SignedEntry, error) {
	tag := SignatureTag(job.subject)
	sigRef := conn.repo.Tag(tag).Name()
	entry := SignedEntry{Digest: job.subject, SignatureRef: sigRef}
	if job.tlog != nil {
		idx := job.tlog.LogIndex
		entry.LogIndex, entry.LogUUID = &idx, job.tlog.UUID
	}
	for attempt := 0; ; attempt++ {
		// Round 1.
		var existing *existingSignatures
		var readErr error
		uploads := make([]uploadSession, 2)
		var wg sync.WaitGroup
		wg.Add(3)
		go func() {
			defer wg.Done()
			existing, readErr = c.readSignatures(ctx, conn, sigRef, tag)
		}()
		for i := range uploads {
			go func() {
				defer wg.Done()
				uploads[i] = c.openUpload(ctx, conn, sigRef)
			}()
		}
		wg.Wait()
		if readErr != nil {
			return entry, readErr
		}
		if existing != nil && hasSignature(existing, job, true) {
			entry.SignatureDigest, entry.Deduplicated = existing.digest, true
			c.logf("%s already signed with this key and annotations in %s (deduplicated)", job.subject, sigRef)
			return entry, nil
		}
		if existing != nil && len(existing.manifest.Layers) >= maxSignatureLayers {
			return entry, &Error{Op: "append signature", Ref: sigRef, Code: CodeRegistryError,
				detail: fmt.Sprintf("the signature manifest already has %d layers; cosign reads at most %d, refusing to append",
					len(existing.manifest.Layers), maxSignatureLayers)}
		}

		newLayer, _, err := layerDescriptor(job.payload, job.annotations)
		if err != nil {
			return entry, &Error{Op: "append signature", Ref: sigRef, Code: CodeInternal, Err: err}
		}
		config, err := c.nextConfig(ctx, conn, sigRef, existing, job.payloadHash)
		if err != nil {
			return entry, err
		}
		mt := configMediaType(manifestType(existing))
		configHash, _ := v1.NewHash(sha256Digest(config))
		configDesc := v1.Descriptor{MediaType: mt, Size: int64(len(config)), Digest: configHash}
		manifest, err := buildManifest(existing, manifestType(existing), configDesc, newLayer)
		if err != nil {
			return entry, &Error{Op: "append signature", Ref: sigRef, Code: CodeInternal, Err: err}
		}

		// Round 2: blobs the repository does not provably have yet.
		type blob struct {
			data   []byte
			digest string
			upload uploadSession
		}
		var blobs []blob
		if !manifestHasBlob(existing, job.payloadHash.String()) {
			blobs = append(blobs, blob{job.payload, job.payloadHash.String(), uploads[0]})
		}
		if existing == nil || existing.manifest.Config.Digest != configHash {
			blobs = append(blobs, blob{config, configHash.String(), uploads[1]})
		}
		blobErrs := make([]error, len(blobs))
		for i, b := range blobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				blobErrs[i] = c.putBlob(ctx, conn, sigRef, b.upload, b.digest, b.data)
			}()
		}
		wg.Wait()
		if err := firstError(blobErrs); err != nil {
			return entry, err
		}

		// Round 3.
		pushed, err := c.putManifest(ctx, conn, sigRef, tag, manifest, string(manifestType(existing)))
		if err != nil {
			return entry, err
		}
		entry.SignatureDigest = pushed

		// Round 4.
		if !c.readBack {
			break
		}
		kept, err := c.layerSurvived(ctx, conn, sigRef, tag, pushed, job)
		if err != nil {
			return entry, err
		}
		if kept != "" {
			entry.SignatureDigest = kept
			break
		}
		if attempt+1 >= c.maxPushRetries {
			return entry, &Error{Op: "push signature manifest", Ref: sigRef, Code: CodeUnavailable, Retryable: true,
				detail: fmt.Sprintf("concurrent writers replaced the signature manifest %d times; our layer is not in it", attempt+1)}
		}
		c.logf("%s: a concurrent writer replaced the signature manifest; merging again", sigRef)
		if err := sleepJitter(ctx, attempt); err != nil {
			return entry, transportError(ctx, "push signature manifest", sigRef, err, 0, conn.allowHTTP, c.timeoutDesc())
		}
	}
	c.logf("signed %s → %s (%s)", job.subject, sigRef, entry.SignatureDigest)
	return entry, nil
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

// hasSignature reports whether existing already holds job's signature:
// the same payload and media type, every new annotation present with the
// same value and, for dedupe, an existing signature that verifies with our
// key (ECDSA signatures differ every time, so bytes cannot be compared).
func hasSignature(existing *existingSignatures, job *signJob, dedupe bool) bool {
	for _, l := range existing.manifest.Layers {
		if l.Digest != job.payloadHash || l.MediaType != SimpleSigningMediaType {
			continue
		}
		if !dedupe {
			if l.Annotations[SignatureAnnotation] == job.annotations[SignatureAnnotation] {
				return true
			}
			continue
		}
		same := true
		for k, v := range job.annotations {
			if k == SignatureAnnotation {
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
		if err == nil && job.verifier.Verify(job.payload, sig) == nil {
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
	if hasSignature(current, job, false) {
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
