// Rounds 2 to 4 of an append: upload, push, read back, and merge again
// when another writer got in between.

package registry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/ocisign/ocisign/internal/bounded"
	"github.com/ocisign/ocisign/internal/errcode"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// putBlobs finishes the plan's uploads, in parallel.
func (c *Client) putBlobs(ctx context.Context, conn *repoConn, plan *appendPlan) error {
	errs := make([]error, len(plan.blobs))
	var wg sync.WaitGroup
	for i, b := range plan.blobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.finishUpload(ctx, conn, plan.entry.SignatureRef, b.upload, b.digest, b.data)
		}()
	}
	wg.Wait()
	return firstError(errs)
}

// putBlobsAndCheckTag is round 2 for one job: the uploads round 1 did not
// finish and, alongside them (no extra round trip), a HEAD of the .sig tag. If another writer
// pushed since round 1 read the tag, plan.moved makes finishAppend merge
// again before pushing instead of overwriting that write. When the PUTs
// outlast the HEAD by far (a loaded registry: the case with contention),
// the tag is checked once more so the check stays close to our push.
func (c *Client) putBlobsAndCheckTag(ctx context.Context, conn *repoConn, job *signJob, plan *appendPlan) error {
	if !c.readBack || len(plan.blobs) == 0 {
		// Nothing to upload: the push follows round 1's read at once, so a
		// check would only add its own round trip to the window it guards.
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
	return errors.As(err, &e) && e.Status == http.StatusBadRequest &&
		hasRegistryCode(err, transport.ManifestBlobUnknownErrorCode, transport.BlobUnknownErrorCode, transport.DigestInvalidErrorCode)
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
	return bounded.Sleep(ctx, time.Duration(20+rand.IntN(80))*time.Millisecond<<min(attempt, 4))
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
