package registry

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

// Round 1 sends the config of a first signature only where it is likely
// used: for a just-pushed image, or on a registry this client has seen open
// sessions (a session takes whatever config the plan needs). Elsewhere —
// a cold client on a registry that stores the POST, the CLI's case — an
// append would make that upload a request for nothing, so the config waits
// for the plan. Observed as the POSTs that reach the registry while round
// 1's GET of the .sig tag is held.
func TestRoundOneSendsTheConfigWhereItIsLikelyUsed(t *testing.T) {
	for _, tc := range []struct {
		name         string
		distribution bool
		justPushed   bool
		warm         bool // the client signed in this registry before
		want         int32
	}{
		{name: "stores POSTs, cold, just pushed", justPushed: true, want: 2},
		{name: "stores POSTs, cold", want: 1},
		{name: "stores POSTs, warm", warm: true, want: 1},
		{name: "sessions, cold", distribution: true, want: 1},
		{name: "sessions, warm", distribution: true, warm: true, want: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var posts atomic.Int32
			var held atomic.Int32 // POSTs seen while the GET was held; -1 until then
			held.Store(-1)
			reg := frontedRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
				if tc.distribution {
					asDistribution(r)
				}
				switch {
				case !strings.HasPrefix(r.URL.Path, "/v2/app/"):
				case r.Method == http.MethodPost:
					posts.Add(1)
				case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, ".sig") && held.Load() == -1:
					deadline := time.Now().Add(500 * time.Millisecond)
					for posts.Load() < 2 && time.Now().Before(deadline) {
						time.Sleep(5 * time.Millisecond)
					}
					held.Store(posts.Load())
				}
				return false
			})
			reg.armed.Store(true)
			c := newTestClient(Options{})
			if tc.warm {
				memtest.PushImage(t, reg.host+"/warm:v1")
				if _, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/warm:v1", Signer: mustSigner(t)}); err != nil {
					t.Fatal(err)
				}
			}
			digest := memtest.PushImage(t, reg.host+"/app:v1")
			posts.Store(0) // the image's own blobs
			if _, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app@" + digest, Signer: mustSigner(t), JustPushed: tc.justPushed}); err != nil {
				t.Fatal(err)
			}
			if got := held.Load(); got != tc.want {
				t.Fatalf("%d blob POSTs in round 1, want %d", got, tc.want)
			}
		})
	}
}
