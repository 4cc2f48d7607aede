package registry

import (
	"net/http"
	"sync/atomic"
	"testing"
)

// Round 1 opens two upload sessions before it knows whether it will write
// (one round trip fewer); a plan that does not use them cancels them, so a
// deduplicated re-sign leaves no session open (it left two per digest).
func TestUnusedUploadSessionsAreCancelled(t *testing.T) {
	var opened, cancelled atomic.Int32
	reg := frontedRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		switch r.Method {
		case http.MethodPost:
			opened.Add(1)
		case http.MethodDelete:
			cancelled.Add(1)
		}
		return false
	})
	pushRandomImage(t, reg.host, "app", "v1")
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
