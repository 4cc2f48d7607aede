package registry

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/ocisign/ocisign/signing"
)

// raceFront forces the lost-update interleaving between two signers: both
// read the (absent) .sig manifest before either writes, and read-backs wait
// until both have written, so the first writer's layer is overwritten.
type raceFront struct {
	inner             http.Handler
	sigPath           atomic.Value // string; empty until armed
	gets, puts        atomic.Int32
	bothRead, bothPut chan struct{}
}

func (f *raceFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, _ := f.sigPath.Load().(string)
	if p == "" || r.URL.Path != p {
		f.inner.ServeHTTP(w, r)
		return
	}
	wait := func(ch chan struct{}) {
		select {
		case <-ch:
		case <-time.After(5 * time.Second): // failsafe: the assertions report it
		}
	}
	switch r.Method {
	case http.MethodGet:
		if n := f.gets.Add(1); n <= 2 {
			if n == 2 {
				close(f.bothRead)
			}
			wait(f.bothRead)
		}
		f.inner.ServeHTTP(w, r)
	case http.MethodPut:
		f.inner.ServeHTTP(w, r)
		if f.puts.Add(1) == 2 {
			close(f.bothPut)
		}
	case http.MethodHead:
		wait(f.bothPut)
		f.inner.ServeHTTP(w, r)
	default:
		f.inner.ServeHTTP(w, r)
	}
}

func runConcurrentSigners(t *testing.T, readBack bool) (layers int, logs []string, keysValid [2]int) {
	t.Helper()
	front := &raceFront{inner: gcrregistry.New(gcrregistry.Logger(log.New(io.Discard, "", 0))),
		bothRead: make(chan struct{}), bothPut: make(chan struct{})}
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	digest := pushRandomImage(t, host, "app", "v1")
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
	// Two clients in one process would otherwise wait for each other (taglock.go).
	localTagLocks = false
	t.Cleanup(func() { localTagLocks = true })
	// Control: without the read-back the interleaving loses a layer, so the
	// front really reproduces the race.
	if n, _, valid := runConcurrentSigners(t, false); n != 1 || valid[0]+valid[1] != 1 {
		t.Fatalf("control run kept %d layers (valid %v); the race was not reproduced", n, valid)
	}
	n, logs, valid := runConcurrentSigners(t, true)
	if n != 2 || valid[0] != 1 || valid[1] != 1 {
		t.Fatalf("with read-back: %d layers, valid per key %v; logs %q", n, valid, logs)
	}
	merged := false
	for _, l := range logs {
		merged = merged || strings.Contains(l, "merging again")
	}
	if !merged {
		t.Fatalf("the overwritten signer did not merge: %q", logs)
	}
}
