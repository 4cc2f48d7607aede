package registry

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"
)

// A re-sign that is deduplicated writes nothing and opens no upload session
// (each run used to leave two orphaned sessions per digest).
func TestDeduplicatedResignOpensNoUpload(t *testing.T) {
	var posts atomic.Int32
	reg := frontedRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
		return false
	})
	pushRandomImage(t, reg.host, "app", "v1")
	signer := mustSigner(t)
	c := newTestClient(Options{})
	if _, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: signer}); err != nil {
		t.Fatal(err)
	}
	reg.armed.Store(true)
	res, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: signer})
	if err != nil || !res.Signed[0].Deduplicated {
		t.Fatalf("re-sign: %+v %v", res, err)
	}
	if n := posts.Load(); n != 0 {
		t.Fatalf("a deduplicated re-sign sent %d POST(s)", n)
	}
}

// A registry without monolithic uploads answers the POST with 202 and a
// session (ignoring body and digest): the blob then goes in with one PUT.
func TestUploadFallsBackToASession(t *testing.T) {
	var sessions, puts atomic.Int32
	reg := frontedRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.Method == http.MethodPost && r.URL.Query().Get("digest") != "":
			sessions.Add(1)
			_, _ = io.Copy(io.Discard, r.Body)
			r.URL.RawQuery, r.Body, r.ContentLength = "", http.NoBody, 0
		case isBlobUpload(r):
			puts.Add(1)
		}
		return false
	})
	digest := pushRandomImage(t, reg.host, "app", "v1")
	reg.armed.Store(true)
	signer := mustSigner(t)
	if _, err := newTestClient(Options{}).Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: signer}); err != nil {
		t.Fatal(err)
	}
	if sessions.Load() != 2 || puts.Load() != 2 {
		t.Fatalf("%d sessions and %d PUTs, want 2 and 2 (payload and config)", sessions.Load(), puts.Load())
	}
	res, err := newTestClient(Options{}).Verify(ctx(t), VerifyRequest{Reference: reg.host + "/app@" + digest, Verifier: signer.Verifier()})
	if err != nil || res.Valid != 1 {
		t.Fatalf("verify after the fallback: %+v %v", res, err)
	}
}
