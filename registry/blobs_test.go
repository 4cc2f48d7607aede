package registry

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/ocisign/ocisign/internal/memregistry/memtest"
)

// Round 1 uploads two blobs before it knows whether it will write (one
// round trip fewer); on a registry that opens sessions instead
// (distribution), a plan that does not use them cancels them, so a
// deduplicated re-sign leaves no session open (it left two per digest).
func TestUnusedUploadSessionsAreCancelled(t *testing.T) {
	var opened, cancelled atomic.Int32
	reg := frontedRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		asDistribution(r)
		switch r.Method {
		case http.MethodPost:
			opened.Add(1)
		case http.MethodDelete:
			cancelled.Add(1)
		}
		return false
	})
	memtest.PushImage(t, reg.host+"/app:v1")
	signer := mustSigner(t)
	c := newTestClient(Options{})
	reg.armed.Store(true)
	if _, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: signer}); err != nil {
		t.Fatal(err)
	}
	if opened.Load() != 2 || cancelled.Load() != 0 {
		t.Fatalf("first signature: %d sessions opened, %d cancelled; want 2 used, none cancelled", opened.Load(), cancelled.Load())
	}
	res, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: signer})
	if err != nil || !res.Signed[0].Deduplicated {
		t.Fatalf("re-sign: %+v %v", res, err)
	}
	if opened.Load() != 4 || cancelled.Load() != 2 {
		t.Fatalf("after the deduplicated re-sign: %d sessions opened, %d cancelled; want 4 and 2", opened.Load(), cancelled.Load())
	}
}

// A registry that refuses a monolithic POST outright (instead of opening a
// session, as the spec asks) still gets the signature: the upload falls back
// to an empty POST and a PUT.
func TestMonolithicPostRefusedFallsBackToSession(t *testing.T) {
	var refused atomic.Int32
	reg := frontedRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && r.URL.Query().Has("digest") {
			refused.Add(1)
			w.WriteHeader(http.StatusMethodNotAllowed)
			return true
		}
		return false
	})
	memtest.PushImage(t, reg.host+"/app:v1")
	reg.armed.Store(true)
	signer := mustSigner(t)
	if _, err := newTestClient(Options{}).Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: signer}); err != nil {
		t.Fatal(err)
	}
	if refused.Load() != 2 {
		t.Fatalf("%d monolithic POSTs refused, want 2 (payload and config)", refused.Load())
	}
	res, err := newTestClient(Options{}).Verify(ctx(t), VerifyRequest{Reference: reg.host + "/app:v1", Verifier: signer.Verifier()})
	if err != nil || res.Valid != 1 {
		t.Fatalf("verify after the fallback: %+v %v", res, err)
	}
}
