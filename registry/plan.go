// Round 1 of an append: read the .sig manifest, dedupe, plan the blobs
// and the config.

package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/ocisign/ocisign/internal/errcode"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocisign/ocisign/signing"
)

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
	upload blobUpload // round 1's upload it finishes
}

// planAppend is round 1 (docs/design.md): GET the .sig manifest ‖ upload
// the payload ‖ upload the config of a first signature where it is likely
// used (uploadModes: a freshly pushed image, or a registry answering with a
// session any blob can use), so that often nothing is left to upload after
// round 1; dedupe; compute the config and the blobs still missing. Upload
// sessions the plan does not use are cancelled (job.cancels waits for
// that), so none is left open. With uploadAll every blob is uploaded
// again, even one the manifest references.
func (c *Client) planAppend(ctx context.Context, conn *repoConn, job *signJob, bundles *bundleChecker, uploadAll bool) (*appendPlan, error) {
	job.tag = SignatureTag(job.subject)
	job.sigRef = conn.repo.Tag(job.tag).Name()
	var firstConfig []byte
	if job.justPushed || c.uploadModes.opensSessions(conn.repo.RegistryStr()) {
		var err error
		if firstConfig, _, err = mergedConfig(nil, nil, []v1.Hash{job.payloadHash}); err != nil {
			return nil, &errcode.Error{Op: "append signature", Ref: job.sigRef, Code: errcode.CodeInternal, Err: err}
		}
	}
	var existing *existingSignatures
	var headerDigest string
	var readErr error
	uploads := make([]blobUpload, 2) // payload, config; a zero upload: not sent
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		existing, headerDigest, readErr = c.readSignaturesDigest(ctx, conn, job.sigRef, job.tag)
	}()
	go func() {
		defer wg.Done()
		uploads[0] = c.startUpload(ctx, conn, job.sigRef, job.payloadHash.String(), job.payload)
	}()
	if firstConfig != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			uploads[1] = c.startUpload(ctx, conn, job.sigRef, sha256Digest(firstConfig), firstConfig)
		}()
	}
	wg.Wait()
	plan, err := c.planWith(ctx, conn, job, bundles, uploadAll, existing, headerDigest, readErr, uploads)
	var pending []pendingBlob
	if err == nil {
		pending = plan.blobs
	}
	job.cancels = append(job.cancels, c.cancelUploads(ctx, conn, unusedSessions(uploads, pending)))
	return plan, err
}

// unusedSessions is the round-1 upload sessions no pending blob finishes.
func unusedSessions(uploads []blobUpload, pending []pendingBlob) []blobUpload {
	var unused []blobUpload
	for _, up := range uploads {
		if !slices.ContainsFunc(pending, func(b pendingBlob) bool { return b.upload.location == up.location }) {
			unused = append(unused, up)
		}
	}
	return unused
}

// planWith is planAppend once round 1's requests have answered.
func (c *Client) planWith(ctx context.Context, conn *repoConn, job *signJob, bundles *bundleChecker, uploadAll bool,
	existing *existingSignatures, headerDigest string, readErr error, uploads []blobUpload) (*appendPlan, error) {
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
	// Blobs the repository does not provably have yet, less those round 1 stored.
	if uploadAll || !manifestHasBlob(existing, job.payloadHash.String()) {
		plan.blobs = append(plan.blobs, pendingBlob{job.payload, job.payloadHash.String(), uploads[0]})
	}
	if uploadAll || existing == nil || existing.manifest.Config.Digest != configHash {
		plan.blobs = append(plan.blobs, pendingBlob{config, configHash.String(), uploads[1]})
	}
	plan.blobs = slices.DeleteFunc(plan.blobs, func(b pendingBlob) bool { return b.upload.done(b.digest) })
	return plan, nil
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

// nextConfig is the config of the merged manifest (mergedConfig), fetching
// the existing config blob when the merge needs it.
func (c *Client) nextConfig(ctx context.Context, conn *repoConn, sigRef string, existing *existingSignatures, added []v1.Hash) ([]byte, error) {
	config, fetch, err := mergedConfig(existing, nil, added)
	if fetch {
		cfg := existing.manifest.Config
		resp, err := conn.do(ctx, request{op: "read signature config", ref: sigRef + " (" + cfg.Digest.String() + ")",
			method: http.MethodGet, url: conn.url("blobs", cfg.Digest.String()), ok: []int{http.StatusOK}, readBody: true})
		if err != nil {
			return nil, err
		}
		if sha256Digest(resp.body) != cfg.Digest.String() {
			return nil, &errcode.Error{Op: "read signature config", Ref: sigRef, Code: errcode.CodeRegistryError,
				Detail: "the config blob does not match its digest " + cfg.Digest.String()}
		}
		config, _, err = mergedConfig(existing, resp.body, added)
	}
	if err != nil {
		return nil, &errcode.Error{Op: "append signature", Ref: sigRef, Code: errcode.CodeInternal, Err: err}
	}
	return config, nil
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
