package rekor

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocisign/ocisign/internal/memregistry"
	"github.com/ocisign/ocisign/internal/testgate"
	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/signing"
	"github.com/ocisign/ocisign/test/internal/harness"
	"github.com/ocisign/ocisign/tlog"
)

type countingRoundTripper struct {
	inner http.RoundTripper
	n     atomic.Int64
}

func (c *countingRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.inner.RoundTrip(r)
}

// BenchmarkLogCostPerSignature measures what the log adds to one signature:
// registry.Client.Sign (warm client) against a docker-registry process, with
// no log, with the real local Rekor (pinned key), and a deduplicated
// re-sign with the log. Each op appends a new signature (a fresh
// annotation) to the same image. Reported: registry and log requests per
// op and the median time per op.
//
//	OCISIGN_E2E=1 go test ./test/rekor/ -run '^$' -bench LogCost -benchtime 20x -count 3
func BenchmarkLogCostPerSignature(b *testing.B) {
	if !testgate.On() || shared == nil {
		b.Skip("set OCISIGN_E2E=1 to run against a real local Rekor")
	}
	if shared.stopped {
		b.Skip("the local Rekor was stopped by the tests; run the benchmark with -run '^$'")
	}
	regBin, err := harness.ToolPath("OCISIGN_REGISTRY_BIN", "/usr/bin/docker-registry")
	if err != nil {
		b.Fatal(err)
	}
	reg, err := harness.StartRegistry(regBin, filepath.Join(b.TempDir(), "registry"))
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Stop()
	signer, err := signing.GenerateSigner()
	if err != nil {
		b.Fatal(err)
	}

	for _, mode := range []string{"no-log", "rekor", "rekor-dedupe"} {
		b.Run(mode, func(b *testing.B) {
			digest, err := memregistry.PushImage(fmt.Sprintf("%s/bench/%s:v1", reg.Addr, mode))
			if err != nil {
				b.Fatal(err)
			}
			image := fmt.Sprintf("%s/bench/%s@%s", reg.Addr, mode, digest)
			regCount := &countingRoundTripper{inner: http.DefaultTransport}
			logCount := &countingRoundTripper{inner: http.DefaultTransport}
			client := registry.New(registry.Options{Transport: regCount})
			var logClient registry.TransparencyLog
			if mode != "no-log" {
				if logClient, err = tlog.New(shared.URL, tlog.Options{PublicKeyFile: shared.PublicKeyFile,
					HTTPClient: &http.Client{Transport: logCount}}); err != nil {
					b.Fatal(err)
				}
			}
			sign := func(annotation string) *registry.SignResult {
				res, err := client.Sign(context.Background(), registry.SignRequest{Reference: image, Signer: signer,
					Annotations: map[string]string{"n": annotation}, Tlog: logClient})
				if err != nil {
					b.Fatal(err)
				}
				return res
			}
			sign("warm-up") // token, connections; the dedupe mode re-signs this one
			regCount.n.Store(0)
			logCount.n.Store(0)
			times := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				annotation := fmt.Sprint(i)
				if mode == "rekor-dedupe" {
					annotation = "warm-up"
				}
				start := time.Now()
				res := sign(annotation)
				times = append(times, time.Since(start))
				if res.Signed[0].Deduplicated != (mode == "rekor-dedupe") {
					b.Fatalf("%s: deduplicated=%v", mode, res.Signed[0].Deduplicated)
				}
			}
			b.StopTimer()
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			b.ReportMetric(float64(regCount.n.Load())/float64(b.N), "registry-req/op")
			b.ReportMetric(float64(logCount.n.Load())/float64(b.N), "log-req/op")
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
		})
	}
}
