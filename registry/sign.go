package registry

import (
	"context"
	"sync"

	"github.com/ocisign/ocisign/internal/errcode"

	"github.com/google/go-containerregistry/pkg/name"
)

// parallelAppends bounds concurrent .sig pushes of one recursive Sign.
const parallelAppends = 4

// Sign signs the requested digest (and with Recursive every child of an
// index) and appends each signature to its sha256-<hex>.sig manifest.
func (c *Client) Sign(ctx context.Context, req SignRequest) (*SignResult, error) {
	if req.Signer == nil {
		return nil, &errcode.Error{Op: "sign", Ref: req.Reference, Code: errcode.CodeInvalidRequest, Detail: "no signing key given"}
	}
	if req.Certificate != nil && req.Tlog == nil {
		return nil, &errcode.Error{Op: "sign", Ref: req.Reference, Code: errcode.CodeInvalidRequest,
			Detail: "a keyless signature needs a transparency log: its certificate expires within minutes, and only the log's time shows it was valid when signing"}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	ref, subjConn, sigConn, err := c.connections(ctx, req.Reference, true)
	if err != nil {
		return nil, err
	}
	subjRepo := ref.Context()

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
	// Before the deadline ends (deferred calls run last first): the DELETEs
	// of unused upload sessions, which run alongside the later rounds.
	defer func() {
		for _, job := range jobs {
			for _, wait := range job.cancels {
				wait()
			}
		}
	}()
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

	// Rounds 3 and 4: push each manifest and read it back; the check that
	// a named tag still points at the signed digest runs alongside, where
	// only one other request is in flight (it needs no connection of its own).
	tagCheck := c.checkTagTarget(ctx, subjConn, ref, req.Digest)
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
