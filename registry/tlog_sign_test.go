package registry

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ocisign/ocisign/internal/errcode"
	"github.com/ocisign/ocisign/internal/memregistry/memtest"

	"github.com/ocisign/ocisign/signing"
)

// signingLog is an in-memory transparency log that makes real bundles: a
// hashedrekord body and a Signed Entry Timestamp signed with its own ECDSA
// key, checked with signing.VerifyRekorBundle as tlog.Client does (the
// registry package cannot import tlog). It counts uploads and key look-ups
// and can be told to fail.
type signingLog struct {
	key     *ecdsa.PrivateKey
	keys    *signing.RekorKeys
	logID   string
	fail    atomic.Bool
	uploads atomic.Int32
	checks  atomic.Int32
	next    atomic.Int64
	events  *eventLog // optional
}

func newSigningLog(t *testing.T) *signingLog {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := signing.NewRekorKeys(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	id, err := signing.RekorLogID(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &signingLog{key: k, keys: keys, logID: id}
}

func (l *signingLog) Upload(_ context.Context, payload, sig, pub []byte) (*signing.LogEntry, error) {
	l.uploads.Add(1)
	l.events.add("log upload")
	if l.fail.Load() {
		return nil, &errcode.Error{Op: "transparency log upload", Ref: "http://127.0.0.1:1", Code: errcode.CodeTlogError, Retryable: true,
			Err: errors.New("POST /api/v1/log/entries: HTTP 500 Internal Server Error")}
	}
	body, err := json.Marshal(signing.NewHashedRekord(payload, sig, pub))
	if err != nil {
		return nil, err
	}
	p := signing.RekorPayload{Body: base64.StdEncoding.EncodeToString(body), IntegratedTime: 1700000000,
		LogIndex: l.next.Add(1) - 1, LogID: l.logID}
	digest := sha256.Sum256(signing.CanonicalSETPayload(p))
	set, err := ecdsa.SignASN1(rand.Reader, l.key, digest[:])
	if err != nil {
		return nil, err
	}
	annotation, err := (&signing.RekorBundle{SignedEntryTimestamp: set, Payload: p}).Annotation()
	if err != nil {
		return nil, err
	}
	return &signing.LogEntry{BundleAnnotation: annotation, LogIndex: p.LogIndex, UUID: signing.RekorEntryUUID(body)}, nil
}

// BundleCheck checks bundles with the log's key.
func (l *signingLog) BundleCheck(_ context.Context, v *signing.Verifier) (signing.BundleCheck, error) {
	l.checks.Add(1)
	return func(bundle string, payload, sig []byte) (*signing.LogEntry, error) {
		e, err := signing.VerifyRekorBundle(bundle, payload, sig, v, l.keys)
		if err != nil {
			return nil, err
		}
		return &signing.LogEntry{BundleAnnotation: bundle, LogIndex: e.LogIndex, UUID: e.UUID}, nil
	}, nil
}

// uploadOnlyLog records entries but cannot check bundles.
type uploadOnlyLog struct{ inner *signingLog }

func (uploadOnlyLog) BundleCheck(context.Context, *signing.Verifier) (signing.BundleCheck, error) {
	return nil, nil
}

func (u uploadOnlyLog) Upload(ctx context.Context, payload, sig, pub []byte) (*signing.LogEntry, error) {
	return u.inner.Upload(ctx, payload, sig, pub)
}

// eventLog records registry requests and log uploads in the order they happen.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (e *eventLog) add(s string) {
	if e == nil {
		return
	}
	e.mu.Lock()
	e.events = append(e.events, s)
	e.mu.Unlock()
}

func (e *eventLog) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.events...)
}

type eventTransport struct {
	inner  http.RoundTripper
	events *eventLog
}

func (t eventTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.events.add(r.Method + " " + memtest.PathClass(r.URL.Path))
	return t.inner.RoundTrip(r)
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// The log is asked only after the .sig manifest was read and deduplication
// found nothing, and the manifest is pushed only after the log answered.
func TestTlogUploadComesAfterDedupeAndBeforeManifestPush(t *testing.T) {
	reg := newTestRegistry(t)
	memtest.PushImage(t, reg.host+"/app:v1")
	events := &eventLog{}
	tl := newSigningLog(t)
	tl.events = events
	c := newTestClient(Options{Transport: eventTransport{http.DefaultTransport, events}})
	key := mustSigner(t)
	if _, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: key, Tlog: tl}); err != nil {
		t.Fatal(err)
	}
	got := events.list()
	read, upload, push := indexOf(got, "GET manifest .sig tag"), indexOf(got, "log upload"), indexOf(got, "PUT manifest .sig tag")
	if read < 0 || upload < 0 || push < 0 || !(read < upload && upload < push) {
		t.Fatalf("want GET .sig < log upload < PUT manifest, got %q", got)
	}
}

func TestTlogDedupe(t *testing.T) {
	reg := newTestRegistry(t)
	digest := memtest.PushImage(t, reg.host+"/app:v1")
	counter := memtest.NewCounter()
	c := newTestClient(Options{Transport: counter})
	ref := reg.host + "/app:v1"
	key := mustSigner(t)
	tl := newSigningLog(t)
	layers := func() []map[string]string {
		_, m, _ := readSig(t, reg.host, "app", digest)
		var out []map[string]string
		for _, l := range m.Layers {
			out = append(out, l.Annotations)
		}
		return out
	}

	// A plain signature (no bundle) does not dedupe a log-backed request.
	if _, err := c.Sign(ctx(t), SignRequest{Reference: ref, Signer: key}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Sign(ctx(t), SignRequest{Reference: ref, Signer: key, Tlog: tl})
	if err != nil || res.Signed[0].Deduplicated || res.Signed[0].LogIndex == nil {
		t.Fatalf("log-backed sign over a plain signature: %v %+v", err, res)
	}
	if n := tl.uploads.Load(); n != 1 {
		t.Fatalf("%d uploads, want 1", n)
	}
	if ls := layers(); len(ls) != 2 || ls[0][BundleAnnotation] != "" || ls[1][BundleAnnotation] == "" {
		t.Fatalf("want the plain layer then a log-backed one, got %v", ls)
	}
	first := *res.Signed[0].LogIndex
	uuid := res.Signed[0].LogUUID
	counter.Snapshot()

	// Re-sign: deduplicated without a single log request, reporting the
	// existing entry.
	res, err = c.Sign(ctx(t), SignRequest{Reference: ref, Signer: key, Tlog: tl})
	if err != nil || !res.Signed[0].Deduplicated {
		t.Fatalf("log-backed re-sign not deduplicated: %v %+v", err, res)
	}
	if n := tl.uploads.Load(); n != 1 {
		t.Fatalf("a deduplicated re-sign uploaded to the log (%d uploads)", n)
	}
	if res.Signed[0].LogIndex == nil || *res.Signed[0].LogIndex != first || res.Signed[0].LogUUID != uuid {
		t.Fatalf("deduplicated result should name the existing entry %d %s: %+v", first, uuid, res.Signed[0])
	}
	n, detail := counter.Snapshot()
	t.Logf("deduplicated log-backed re-sign: %d registry requests (%s), 0 log requests", n, detail)
	if strings.Contains(detail, "PUT") {
		t.Fatalf("deduplicated re-sign wrote to the registry: %s", detail)
	}

	// Without a log the log-backed layer dedupes as any valid signature does.
	res, err = c.Sign(ctx(t), SignRequest{Reference: ref, Signer: key})
	if err != nil || !res.Signed[0].Deduplicated {
		t.Fatalf("plain re-sign: %v %+v", err, res)
	}

	// A bundle from another log (keys not trusted) does not dedupe.
	other := newSigningLog(t)
	res, err = c.Sign(ctx(t), SignRequest{Reference: ref, Signer: key, Tlog: other})
	if err != nil || res.Signed[0].Deduplicated || other.uploads.Load() != 1 || len(layers()) != 3 {
		t.Fatalf("sign with another log: %v %+v, %d uploads", err, res, other.uploads.Load())
	}

	// Other annotations: a new payload, so a new entry.
	res, err = c.Sign(ctx(t), SignRequest{Reference: ref, Signer: key, Tlog: tl, Annotations: map[string]string{"env": "prod"}})
	if err != nil || res.Signed[0].Deduplicated || tl.uploads.Load() != 2 {
		t.Fatalf("other annotations: %v %+v", err, res)
	}
}

// A bundle copied from another layer (another payload) is not a log entry
// for this signature, so it does not dedupe.
func TestTlogForeignBundleDoesNotDedupe(t *testing.T) {
	reg := newTestRegistry(t)
	digest := memtest.PushImage(t, reg.host+"/app:v1")
	memtest.PushImage(t, reg.host+"/app:v2")
	c := newTestClient(Options{})
	key := mustSigner(t)
	tl := newSigningLog(t)
	res, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v2", Signer: key, Tlog: tl})
	if err != nil {
		t.Fatal(err)
	}
	_, m2, _ := readSig(t, reg.host, "app", res.Signed[0].Digest)
	foreign := m2.Layers[0].Annotations[BundleAnnotation]

	// v1 gets a plain signature, then that layer is given v2's bundle.
	if _, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: key}); err != nil {
		t.Fatal(err)
	}
	raw, _, _ := readSig(t, reg.host, "app", digest)
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	layer := doc["layers"].([]any)[0].(map[string]any)
	layer["annotations"].(map[string]any)[BundleAnnotation] = foreign
	forged, _ := json.Marshal(doc)
	rawPutManifest(t, reg.host, "app", SignatureTag(digest), doc["mediaType"].(string), forged)

	before := tl.uploads.Load()
	res, err = c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: key, Tlog: tl})
	if err != nil || res.Signed[0].Deduplicated || tl.uploads.Load() != before+1 {
		t.Fatalf("a foreign bundle deduplicated the request: %v %+v", err, res)
	}
}

// An uploader that cannot check bundles never deduplicates a log-backed
// request: it cannot tell that the existing entry is sound.
func TestTransparencyLogWithoutBundleCheckUploadsAgain(t *testing.T) {
	reg := newTestRegistry(t)
	memtest.PushImage(t, reg.host+"/app:v1")
	c := newTestClient(Options{})
	key := mustSigner(t)
	tl := uploadOnlyLog{newSigningLog(t)}
	for i := 0; i < 2; i++ {
		res, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: key, Tlog: tl})
		if err != nil || res.Signed[0].Deduplicated {
			t.Fatalf("round %d: %v %+v", i, err, res)
		}
	}
	if n := tl.inner.uploads.Load(); n != 2 {
		t.Fatalf("%d uploads, want 2", n)
	}
}

// A failed upload pushes no manifest: an existing .sig stays byte for byte,
// and for a recursive index no digest gets a .sig at all.
func TestTlogFailedUploadPushesNothing(t *testing.T) {
	reg := newTestRegistry(t)
	digest := memtest.PushImage(t, reg.host+"/app:v1")
	counter := memtest.NewCounter()
	c := newTestClient(Options{Transport: counter})
	key := mustSigner(t)
	if _, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: key}); err != nil {
		t.Fatal(err)
	}
	before := rawManifestBytes(t, reg.host, "app", SignatureTag(digest))
	tl := newSigningLog(t)
	tl.fail.Store(true)
	counter.Snapshot()
	_, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: key, Tlog: tl})
	if code, retry := errcode.Of(err); code != errcode.CodeTlogError || !retry || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("got %v (%s %v)", err, code, retry)
	}
	_, detail := counter.Snapshot()
	if strings.Contains(detail, "PUT manifest") {
		t.Fatalf("a manifest was pushed although the upload failed: %s", detail)
	}
	if !bytes.Equal(before, rawManifestBytes(t, reg.host, "app", SignatureTag(digest))) {
		t.Fatal("the .sig manifest changed although the upload failed")
	}

	idx := memtest.PushIndex(t, reg.host+"/multi:latest", 2)
	_, err = c.Sign(ctx(t), SignRequest{Reference: reg.host + "/multi:latest", Signer: key, Recursive: true, Tlog: tl})
	if code, _ := errcode.Of(err); code != errcode.CodeTlogError {
		t.Fatalf("recursive: %v", err)
	}
	if _, status := rawGet(t, reg.host, "multi", "manifests", SignatureTag(idx)); status != http.StatusNotFound {
		t.Fatalf("the index got a .sig although the log failed: %d", status)
	}
	if _, detail := counter.Snapshot(); strings.Contains(detail, "PUT manifest") {
		t.Fatalf("recursive sign pushed a manifest although the log failed: %s", detail)
	}
}

// Request counts with a log: the log upload runs alongside the blob PUTs,
// so a log-backed append costs one log request and no extra registry round.
func TestTlogRequestCounts(t *testing.T) {
	reg := newTestRegistry(t)
	memtest.PushImage(t, reg.host+"/app:v1")
	counter := memtest.NewCounter()
	c := newTestClient(Options{Transport: counter})
	ref := reg.host + "/app:v1"
	key := mustSigner(t)
	tl := newSigningLog(t)
	if _, err := c.Sign(ctx(t), SignRequest{Reference: ref, Signer: mustSigner(t)}); err != nil {
		t.Fatal(err)
	}
	counter.Snapshot()
	if _, err := c.Sign(ctx(t), SignRequest{Reference: ref, Signer: key, Tlog: tl}); err != nil {
		t.Fatal(err)
	}
	n, detail := counter.Snapshot()
	t.Logf("log-backed append, warm client: %d registry requests (%s) + %d log upload", n, detail, tl.uploads.Load())
	// The config blob is already there: its session is cancelled (+1 DELETE).
	if n > 9 || tl.uploads.Load() != 1 {
		t.Fatalf("log-backed append: %d registry requests (bound 9), %d uploads (want 1)", n, tl.uploads.Load())
	}
	if _, err := c.Sign(ctx(t), SignRequest{Reference: ref, Signer: key, Tlog: tl}); err != nil {
		t.Fatal(err)
	}
	n, detail = counter.Snapshot()
	t.Logf("log-backed deduplicated re-sign: %d registry requests (%s), %d bundle-check set-ups", n, detail, tl.checks.Load())
	// HEAD resolve; GET .sig ‖ 2×POST upload; 2×DELETE of the unused sessions.
	if n > 6 || tl.uploads.Load() != 1 || tl.checks.Load() != 1 {
		t.Fatalf("dedupe: %d requests (bound 6), %d uploads, %d checks", n, tl.uploads.Load(), tl.checks.Load())
	}
}
