// Wall time per signature: CLI runs against a warm port.

package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/ocisign/ocisign/internal/memregistry"
	th "github.com/ocisign/ocisign/test/internal/harness"
)

func (b *bench) wallTimes(runs, portSigs int) error {
	b.logf("wall times")
	results := map[string]stats{}
	var order []string
	for _, t := range b.cliTools() {
		var ds []time.Duration
		for i := 0; i < runs; i++ {
			ref, err := b.image()
			if err != nil {
				return err
			}
			r, err := b.sign(t, b.key, ref)
			if err != nil {
				return err
			}
			ds = append(ds, r.Elapsed)
		}
		name := t.name + " CLI (cold process)"
		results[name] = summarize(ds)
		order = append(order, name)
	}
	p, err := th.StartPort(b.ocisign, b.env())
	if err != nil {
		return err
	}
	defer p.Close()
	// Every image in one repository: the port's transport for it stays warm.
	b.repoN++
	repo := fmt.Sprintf("bench/warm%d", b.repoN)
	refs := make([]string, portSigs+1)
	for i := range refs {
		d, err := memregistry.PushImage(fmt.Sprintf("%s/%s:v%d", b.reg.Addr, repo, i))
		if err != nil {
			return err
		}
		refs[i] = b.proxy.Addr + "/" + repo + "@" + d
	}
	if err := b.portSign(p, refs[0], ""); err != nil { // decrypts the key once, opens the connection
		return err
	}
	var st runStats
	var inRegistry []time.Duration
	for _, ref := range refs[1:] {
		b.proxy.Take()
		start := time.Now()
		if err := b.portSign(p, ref, ""); err != nil {
			return err
		}
		elapsed := time.Since(start)
		recs := b.proxy.Take()
		st.add(elapsed, recs)
		inRegistry = append(inRegistry, busy(recs))
	}
	name := fmt.Sprintf("ocisign port, warm (%d signatures, one port)", portSigs)
	results[name] = summarize(st.times)
	order = append(order, name)
	r := summarize(inRegistry)
	b.warmRegMed, b.warmSigMed = r.median, results[name].median
	b.warmReqMed, b.warmRTMed = medianInt(st.requests), medianInt(st.rounds)

	b.printf("## Wall time per signature (first signature of a fresh image)\n\n")
	b.printf("%d runs per CLI; each CLI run is a new process that decrypts the key (scrypt) and pings the registry.\n", runs)
	b.printf("The port signs %d images of one repository after one warm-up signature there (key decrypted, connection open).\n\n", portSigs)
	b.printf("| signer | median | min | max | speed-up vs cosign v2.6.5 (its median / this) | speed-up vs cosign v3.1.3 |\n|---|---|---|---|---|---|\n")
	c2, c3 := results["cosign v2.6.5 CLI (cold process)"], results["cosign v3.1.3 CLI (cold process)"]
	for _, n := range order {
		s := results[n]
		b.printf("| %s | %s | %s | %s | %.1f× | %.1f× |\n", n, ms(s.median), ms(s.min), ms(s.max),
			float64(c2.median)/float64(s.median), float64(c3.median)/float64(s.median))
	}
	cosignBest := min(c2.median, c3.median)
	warmRatio := float64(cosignBest) / float64(results[name].median)
	b.target(warmRatio >= 20, "a warm port signature is %.1f× faster than a cosign CLI run (median %s vs %s / %s; target ≥ 20×)%s",
		warmRatio, ms(results[name].median), ms(c2.median), ms(c3.median), b.gapNote(warmRatio, cosignBest))
	b.printf("\nOf a warm port signature, the registry is busy with at least one of its requests for a median of %s\n", ms(r.median))
	b.printf("(min %s, max %s; union of the request intervals seen by the proxy): the rest is the port itself\n", ms(r.min), ms(r.max))
	b.printf("(frame decoding, signing, JSON) and the client's HTTP stack. Per warm signature: median %s requests, %s sequential\n",
		fmtMedian(b.warmReqMed), fmtMedian(b.warmRTMed))
	b.printf("round trips (per run: %s).\n\n", histogram(st.rounds))
	return nil
}

// gapNote explains, from the measurements, why a ratio target is missed.
func (b *bench) gapNote(ratio float64, cosign time.Duration) string {
	if ratio >= 20 {
		return ""
	}
	reg, total := b.warmRegMed, b.warmSigMed
	var cosignReqs []string
	for _, t := range b.cliTools()[1:] {
		recs := b.plainFirst[t.name]
		cosignReqs = append(cosignReqs, fmt.Sprintf("%s %d requests / %d round trips", t.name, len(recs), th.RoundTrips(recs)))
	}
	return fmt.Sprintf(". Gap: of the warm port's median %s, the registry is busy with at least one request for a median of %s (%.0f%%), "+
		"over a median of %s requests in %s sequential round trips per signature (cosign CLI, same first signature: %s); so even a "+
		"client with no overhead of its own would be at most %.1f× faster than cosign against this registry on this machine",
		ms(total), ms(reg), 100*float64(reg)/float64(total), fmtMedian(b.warmReqMed), fmtMedian(b.warmRTMed),
		strings.Join(cosignReqs, ", "), float64(cosign)/float64(reg))
}
