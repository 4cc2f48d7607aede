package port

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/signing"
)

// Requests waiting for a worker are bounded in bytes, not only in number:
// with 1 MiB frames the port stops reading after about maxAdmittedBytes of
// them (it used to take 1024, a GiB), and serves them all once work moves.
func TestAdmittedBytesAreBounded(t *testing.T) {
	const n = 40
	release := make(chan struct{})
	cfg := testConfig(nil)
	cfg.MaxConcurrent = 1
	cfg.MaxFrameBytes = 2 << 20
	cfg.LoadPublicKey = func(string) (*signing.Verifier, error) { return nil, nil }
	cfg.NewBackend = func(registry.Options) Backend {
		return &funcBackend{verify: func(ctx context.Context, req registry.VerifyRequest) (*registry.VerifyResult, error) {
			<-release
			return &registry.VerifyResult{Digest: req.Digest, Valid: 1}, nil
		}}
	}
	s := startSession(t, cfg)
	pad := strings.Repeat("x", 1<<20)
	var written atomic.Int32
	go func() {
		for i := range n {
			s.sendFrame([]byte(fmt.Sprintf(`{"id":%d,"op":"verify","reference":"r/x","public_key":"p","digest":"%s","annotations":{"pad":"%s"}}`, i, digestA, pad)))
			written.Add(1)
		}
	}()
	// Wait until the writer is stuck (no progress for half a second).
	last, still := int32(-1), 0
	for still < 5 {
		time.Sleep(100 * time.Millisecond)
		if w := written.Load(); w == last {
			still++
		} else {
			last, still = w, 0
		}
	}
	// + the one running, one being admitted, one read ahead; and in any case
	// well short of all of them.
	limit := min(int32(maxAdmittedBytes>>20)+3, n/2)
	if last > limit {
		t.Fatalf("the port read %d 1 MiB requests while none could run, want at most %d", last, limit)
	}
	close(release)
	for range n {
		if r := s.next(); !*r.OK {
			t.Fatalf("reply %s", r.raw)
		}
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
}
