package registry

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocisign/ocisign/internal/errcode"
	"github.com/ocisign/ocisign/internal/memregistry"
	"github.com/ocisign/ocisign/internal/memregistry/memtest"

	"github.com/ocisign/ocisign/signing"
)

// failsafe bounds every barrier in these fronts; hitting it fails the test.
const failsafe = 5 * time.Second

func await(ch chan struct{}, timedOut *atomic.Bool) {
	select {
	case <-ch:
	case <-time.After(failsafe):
		timedOut.Store(true)
	}
}

// raceFront forces the lost-update interleaving between two signers past the
// pre-push check: both read the (absent) .sig manifest and both run their
// pre-push HEAD before either pushes, and the read-backs wait until both
// have pushed, so the first writer's layer is overwritten.
type raceFront struct {
	inner                          http.Handler
	sigPath                        atomic.Value // string; empty until armed
	preChecks                      int32        // HEADs that are pre-push checks (2, or 0 without read-back)
	gets, heads, puts              atomic.Int32
	bothRead, bothChecked, bothPut chan struct{}
	timedOut                       atomic.Bool
}

func (f *raceFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, _ := f.sigPath.Load().(string)
	if p == "" || r.URL.Path != p {
		f.inner.ServeHTTP(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		if n := f.gets.Add(1); n <= 2 {
			if n == 2 {
				close(f.bothRead)
			}
			await(f.bothRead, &f.timedOut)
		}
	case http.MethodHead:
		if n := f.heads.Add(1); n <= f.preChecks {
			if n == f.preChecks {
				close(f.bothChecked)
			}
			await(f.bothChecked, &f.timedOut)
		} else {
			await(f.bothPut, &f.timedOut)
		}
	case http.MethodPut:
		f.inner.ServeHTTP(w, r)
		if f.puts.Add(1) == 2 {
			close(f.bothPut)
		}
		return
	}
	f.inner.ServeHTTP(w, r)
}

func runConcurrentSigners(t *testing.T, readBack bool) (layers int, logs []string, keysValid [2]int) {
	t.Helper()
	front := &raceFront{inner: memregistry.Handler(),
		bothRead: make(chan struct{}), bothChecked: make(chan struct{}), bothPut: make(chan struct{})}
	if readBack {
		front.preChecks = 2
	}
	host := memtest.Serve(t, front)
	digest := memtest.PushImage(t, host+"/app:v1")
	front.sigPath.Store("/v2/app/manifests/" + SignatureTag(digest))

	var mu sync.Mutex
	logf := func(f string, a ...any) { mu.Lock(); logs = append(logs, fmt.Sprintf(f, a...)); mu.Unlock() }
	keys := [2]*signing.Signer{mustSigner(t), mustSigner(t)}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newTestClient(Options{Logf: logf}) // two independent clients
			c.readBack = readBack
			_, errs[i] = c.Sign(ctx(t), SignRequest{Reference: host + "/app:v1", Signer: keys[i]})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if front.timedOut.Load() {
		t.Fatalf("a barrier of the race front timed out: the signers did not follow the expected rounds; logs %q", logs)
	}
	_, m, _ := readSig(t, host, "app", digest)
	for i, k := range keys {
		res, _ := newTestClient(Options{}).Verify(ctx(t), VerifyRequest{Reference: host + "/app:v1", Verifier: k.Verifier()})
		if res != nil {
			keysValid[i] = res.Valid
		}
	}
	return len(m.Layers), logs, keysValid
}

func TestConcurrentSignersKeepBothLayers(t *testing.T) {
	// Control: without the read-back the interleaving loses a layer, so the
	// front really reproduces the race.
	if n, _, valid := runConcurrentSigners(t, false); n != 1 || valid[0]+valid[1] != 1 {
		t.Fatalf("control run kept %d layers (valid %v); the race was not reproduced", n, valid)
	}
	n, logs, valid := runConcurrentSigners(t, true)
	if n != 2 || valid[0] != 1 || valid[1] != 1 {
		t.Fatalf("with read-back: %d layers, valid per key %v; logs %q", n, valid, logs)
	}
	if !containsLog(logs, "merging again") {
		t.Fatalf("the overwritten signer did not merge: %q", logs)
	}
}

func containsLog(logs []string, s string) bool {
	for _, l := range logs {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// hookFront passes everything to inner except requests for which hook
// returns true (it then answered them itself).
type hookFront struct {
	inner http.Handler
	hook  atomic.Value // func(w, r) bool
}

func (f *hookFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, _ := f.hook.Load().(func(http.ResponseWriter, *http.Request) bool); h != nil && h(w, r) {
		return
	}
	f.inner.ServeHTTP(w, r)
}

// hookedRegistry is one in-process registry behind two servers: the
// fronted one the signer under test uses and a direct one for the
// "other host" that writes behind its back.
func hookedRegistry(t *testing.T) (front *hookFront, host, direct string) {
	t.Helper()
	front = &hookFront{}
	host = memtest.Start(t, func(inner http.Handler) http.Handler { front.inner = inner; return front })
	return front, host, memtest.Serve(t, front.inner)
}

// serveThen serves r from inner through a recorder and returns it, so a
// hook can act after the registry answered.
func (f *hookFront) serve(w http.ResponseWriter, r *http.Request) {
	f.inner.ServeHTTP(w, r)
}

func foreignSign(t *testing.T, direct, repo string) *signing.Signer {
	t.Helper()
	k := mustSigner(t)
	if _, err := newTestClient(Options{}).Sign(ctx(t), SignRequest{Reference: direct + "/" + repo + ":v1", Signer: k}); err != nil {
		t.Errorf("foreign signer: %v", err)
	}
	return k
}

func validWith(t *testing.T, host, repo string, k *signing.Signer) int {
	t.Helper()
	res, _ := newTestClient(Options{}).Verify(ctx(t), VerifyRequest{Reference: host + "/" + repo + ":v1", Verifier: k.Verifier()})
	if res == nil {
		return 0
	}
	return res.Valid
}

// A write that lands between round 1 and round 2 is caught by the pre-push
// HEAD: the signer merges before pushing, so it never overwrites it.
func TestPrePushCheckMergesAWriteSinceRound1(t *testing.T) {
	front, host, direct := hookedRegistry(t)
	digest := memtest.PushImage(t, host+"/app:v1")
	sigPath := "/v2/app/manifests/" + SignatureTag(digest)
	var gets, manifestPuts atomic.Int32
	var foreign *signing.Signer
	front.hook.Store(func(w http.ResponseWriter, r *http.Request) bool {
		asDistribution(r) // the check runs alongside blob uploads; monolithic ones leave none for round 2
		if r.URL.Path != sigPath {
			return false
		}
		switch r.Method {
		case http.MethodGet:
			front.serve(w, r)
			if gets.Add(1) == 1 { // another host writes right after our round 1
				foreign = foreignSign(t, direct, "app")
			}
			return true
		case http.MethodPut:
			manifestPuts.Add(1)
		}
		return false
	})
	signMergingBeforePush(t, host, SignRequest{Reference: host + "/app:v1"}, &foreign, &manifestPuts)
}

// signMergingBeforePush signs req with a new key and checks that the
// foreign signature written meanwhile (*foreign, set by the test's hook)
// was merged before the only manifest push, as a pre-push check does.
func signMergingBeforePush(t *testing.T, host string, req SignRequest, foreign **signing.Signer, manifestPuts *atomic.Int32) {
	t.Helper()
	var logs []string
	var mu sync.Mutex
	c := newTestClient(Options{Logf: func(f string, a ...any) { mu.Lock(); logs = append(logs, fmt.Sprintf(f, a...)); mu.Unlock() }})
	k := mustSigner(t)
	req.Signer = k
	if _, err := c.Sign(ctx(t), req); err != nil {
		t.Fatal(err)
	}
	if *foreign == nil {
		t.Fatal("the foreign write did not happen")
	}
	if validWith(t, host, "app", k) != 1 || validWith(t, host, "app", *foreign) != 1 {
		t.Fatalf("a signature is missing; logs %q", logs)
	}
	if n := manifestPuts.Load(); n != 1 {
		t.Fatalf("the signer pushed %d manifests; the pre-push check should have merged before the only push (logs %q)", n, logs)
	}
	if !containsLog(logs, "another writer pushed while we prepared") {
		t.Fatalf("no merge before the push was logged: %q", logs)
	}
}

// The pre-push HEAD runs alongside the blob uploads (no round trip of its
// own): each waits at the front until the other has arrived.
func TestPrePushCheckOverlapsBlobPuts(t *testing.T) {
	front, host, _ := hookedRegistry(t)
	digest := memtest.PushImage(t, host+"/app:v1")
	sigPath := "/v2/app/manifests/" + SignatureTag(digest)
	headArrived, blobArrived := make(chan struct{}), make(chan struct{})
	var headOnce, blobOnce sync.Once
	var timedOut atomic.Bool
	front.hook.Store(func(w http.ResponseWriter, r *http.Request) bool {
		asDistribution(r)
		switch {
		case r.Method == http.MethodHead && r.URL.Path == sigPath:
			headOnce.Do(func() {
				close(headArrived)
				await(blobArrived, &timedOut)
			})
		case isBlobUpload(r):
			blobOnce.Do(func() {
				close(blobArrived)
				await(headArrived, &timedOut)
			})
		}
		return false
	})
	if _, err := newTestClient(Options{}).Sign(ctx(t), SignRequest{Reference: host + "/app@" + digest, Signer: mustSigner(t)}); err != nil {
		t.Fatal(err)
	}
	if timedOut.Load() {
		t.Fatal("the pre-push HEAD and the blob uploads did not overlap: the check costs a round trip")
	}
}

// When the blob PUTs outlast the pre-push HEAD by far (a loaded registry,
// the case with contention), the HEAD is repeated before the push: a write
// that lands after the first HEAD answered but before the PUTs end is
// merged, not overwritten (docs/design.md has the cross-host numbers).
func TestSlowUploadsRepeatThePrePushCheck(t *testing.T) {
	front, host, direct := hookedRegistry(t)
	digest := memtest.PushImage(t, host+"/app:v1")
	sigPath := "/v2/app/manifests/" + SignatureTag(digest)
	var heads, manifestPuts atomic.Int32
	var foreign *signing.Signer
	front.hook.Store(func(w http.ResponseWriter, r *http.Request) bool {
		asDistribution(r) // blobs are PUT in round 2, beside the HEAD
		switch {
		case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/"):
			time.Sleep(500 * time.Millisecond) // a loaded registry
		case r.URL.Path != sigPath:
		case r.Method == http.MethodHead:
			front.serve(w, r)
			if heads.Add(1) == 1 { // another host writes once our first check has its answer
				foreign = foreignSign(t, direct, "app")
			}
			return true
		case r.Method == http.MethodPut:
			manifestPuts.Add(1)
		}
		return false
	})
	signMergingBeforePush(t, host, SignRequest{Reference: host + "/app@" + digest, JustPushed: true}, &foreign, &manifestPuts)
}

// 400 MANIFEST_BLOB_UNKNOWN on the manifest PUT (a blob of the merged
// manifest not linked yet under contention) re-plans and uploads again.
func TestManifestBlobUnknownIsRetried(t *testing.T) {
	front, host, _ := hookedRegistry(t)
	digest := memtest.PushImage(t, host+"/app:v1")
	sigPath := "/v2/app/manifests/" + SignatureTag(digest)
	var manifestPuts, blobPuts atomic.Int32
	front.hook.Store(func(w http.ResponseWriter, r *http.Request) bool {
		if isBlobUpload(r) {
			blobPuts.Add(1)
		}
		if r.Method == http.MethodPut && r.URL.Path == sigPath && manifestPuts.Add(1) == 1 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}`)
			return true
		}
		return false
	})
	var logs []string
	var mu sync.Mutex
	c := newTestClient(Options{Logf: func(f string, a ...any) { mu.Lock(); logs = append(logs, fmt.Sprintf(f, a...)); mu.Unlock() }})
	k := mustSigner(t)
	if _, err := c.Sign(ctx(t), SignRequest{Reference: host + "/app:v1", Signer: k}); err != nil {
		t.Fatalf("blob-unknown was not retried: %v (logs %q)", err, logs)
	}
	if validWith(t, host, "app", k) != 1 {
		t.Fatal("signature missing")
	}
	if manifestPuts.Load() != 2 || blobPuts.Load() != 4 {
		t.Fatalf("manifest PUTs %d (want 2), blob uploads %d (want 4: both blobs again)", manifestPuts.Load(), blobPuts.Load())
	}
	if !containsLog(logs, "uploading again") {
		t.Fatalf("no log line: %q", logs)
	}
	// Any other 400 stays a hard error.
	front.hook.Store(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/sha256-") {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"errors":[{"code":"MANIFEST_INVALID","message":"bad"}]}`)
			return true
		}
		return false
	})
	_, err := c.Sign(ctx(t), SignRequest{Reference: host + "/app:v1", Signer: mustSigner(t)})
	if code, _ := errcode.Of(err); code != errcode.CodeRegistryError {
		t.Fatalf("MANIFEST_INVALID: got %v", err)
	}
}

// After contention was seen, a stale writer that overwrites the tag after
// our read-back is caught by the delayed settle read-back, and the merge
// puts back both our layer and a foreign layer we had seen that the stale
// write dropped.
func TestSettleReadBackRepairsALateStaleOverwrite(t *testing.T) {
	front, host, direct := hookedRegistry(t)
	digest := memtest.PushImage(t, host+"/app:v1")
	sigTag := SignatureTag(digest)
	sigPath := "/v2/app/manifests/" + sigTag
	early := foreignSign(t, direct, "app") // the tag holds [early]
	stale, _ := rawGet(t, direct, "app", "manifests", sigTag)
	staleType := string(parseManifest(t, stale).MediaType)
	var gets, heads atomic.Int32
	var late *signing.Signer
	front.hook.Store(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != sigPath {
			return false
		}
		switch r.Method {
		case http.MethodGet:
			front.serve(w, r)
			if gets.Add(1) == 1 { // contention: [early, late] right after our round 1
				late = foreignSign(t, direct, "app")
			}
			return true
		case http.MethodHead:
			// HEAD 1: pre-push check (sees the late write); HEAD 2: pre-push
			// check after merging; HEAD 3: read-back of [early, late, ours].
			// Then a stale writer pushes [early] again.
			front.serve(w, r)
			if heads.Add(1) == 3 {
				rawPutManifest(t, direct, "app", sigTag, staleType, stale)
			}
			return true
		}
		return false
	})
	var logs []string
	var mu sync.Mutex
	c := newTestClient(Options{Logf: func(f string, a ...any) { mu.Lock(); logs = append(logs, fmt.Sprintf(f, a...)); mu.Unlock() }})
	k := mustSigner(t)
	if _, err := c.Sign(ctx(t), SignRequest{Reference: host + "/app:v1", Signer: k}); err != nil {
		t.Fatal(err)
	}
	if late == nil || heads.Load() < 4 {
		t.Fatalf("the interleaving did not happen (HEADs %d); logs %q", heads.Load(), logs)
	}
	for name, s := range map[string]*signing.Signer{"ours": k, "early": early, "late": late} {
		if validWith(t, host, "app", s) != 1 {
			t.Errorf("the %s signature is missing after the stale overwrite; logs %q", name, logs)
		}
	}
	_, m, _ := readSig(t, host, "app", digest)
	if len(m.Layers) != 3 {
		t.Errorf("%d layers, want 3", len(m.Layers))
	}
	if !containsLog(logs, "a concurrent writer replaced the signature manifest") || !containsLog(logs, "restoring 1 signature layer(s)") {
		t.Fatalf("the late overwrite was not repaired: %q", logs)
	}
}

// A registry whose HEAD digest never matches its GET must not make every
// append merge again and again: one merge, then the HEAD is not trusted.
func TestInconsistentHeadDigestMergesOnce(t *testing.T) {
	front, host, _ := hookedRegistry(t)
	digest := memtest.PushImage(t, host+"/app:v1")
	sigPath := "/v2/app/manifests/" + SignatureTag(digest)
	var manifestPuts atomic.Int32
	front.hook.Store(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != sigPath {
			return false
		}
		switch r.Method {
		case http.MethodHead:
			rec := httptest.NewRecorder()
			front.serve(rec, r)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			if rec.Code == http.StatusOK {
				w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("0", 64))
			}
			w.WriteHeader(rec.Code)
			return true
		case http.MethodPut:
			manifestPuts.Add(1)
		}
		return false
	})
	for i := 0; i < 2; i++ { // the second sign appends to an existing tag
		var logs []string
		var mu sync.Mutex
		c := newTestClient(Options{Logf: func(f string, a ...any) { mu.Lock(); logs = append(logs, fmt.Sprintf(f, a...)); mu.Unlock() }})
		k := mustSigner(t)
		if _, err := c.Sign(ctx(t), SignRequest{Reference: host + "/app:v1", Signer: k}); err != nil {
			t.Fatal(err)
		}
		merges := 0
		for _, l := range logs {
			if strings.Contains(l, "merging again") {
				merges++
			}
		}
		if validWith(t, host, "app", k) != 1 || merges > 1 {
			t.Fatalf("sign %d: %d merges (want at most 1); logs %q", i, merges, logs)
		}
	}
	if n := manifestPuts.Load(); n != 2 {
		t.Fatalf("%d manifest PUTs for 2 signs", n)
	}
}
