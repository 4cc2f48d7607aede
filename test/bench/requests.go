// HTTP requests and sequential round trips per signer and case, behind a token front.

package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ocisign/ocisign/internal/memregistry"
	th "github.com/ocisign/ocisign/test/internal/harness"
)

// requests renders a sorted "count × class" list.
func requests(recs []th.Record) string {
	counts := th.CountByClass(recs)
	var keys []string
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d× %s", counts[k], k))
	}
	return strings.Join(parts, "<br>")
}

// signTwice runs a CLI's first signature and an append on a fresh image
// and returns what the proxy recorded for each.
func (b *bench) signTwice(t tool) (first, appended []th.Record, err error) {
	ref, err := b.image()
	if err != nil {
		return nil, nil, err
	}
	b.proxy.Take()
	if _, err := b.sign(t, b.key, ref); err != nil {
		return nil, nil, err
	}
	first = b.proxy.Take()
	if _, err := b.sign(t, b.key, ref, "-a", "n=2"); err != nil {
		return nil, nil, err
	}
	return first, b.proxy.Take(), nil
}

// classDiff lists per request type what a has more (or fewer) than base.
func classDiff(a, base []th.Record) string {
	ca, cb := th.CountByClass(a), th.CountByClass(base)
	var keys []string
	for k := range ca {
		keys = append(keys, k)
	}
	for k := range cb {
		if _, ok := ca[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		if d := ca[k] - cb[k]; d != 0 {
			parts = append(parts, fmt.Sprintf("%+d× %s", d, k))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

func count401(recs []th.Record) int {
	n := 0
	for _, r := range recs {
		if r.Status == 401 {
			n++
		}
	}
	return n
}

func countClass(recs []th.Record, class string) int { return th.CountByClass(recs)[class] }

func (b *bench) requestCounts(runs int) error {
	b.logf("request counts")
	// Without auth first: the baseline for what a token adds, and what the
	// other sections (no auth) see.
	plain := map[string][2][]th.Record{}
	b.plainFirst = map[string][]th.Record{}
	for _, t := range b.cliTools() {
		first, appended, err := b.signTwice(t)
		if err != nil {
			return err
		}
		plain[t.name] = [2][]th.Record{first, appended}
		b.plainFirst[t.name] = first
	}
	front := newTokenFront(b.proxy.Addr)
	b.proxy.SetHook(front.hook())
	defer b.proxy.SetHook(nil)

	b.printf("## HTTP requests to sign one image (registry with token auth)\n\n")
	b.printf("| signer | case | requests | sequential round trips | requests by type |\n|---|---|---|---|---|\n")
	var tokenLines []string
	for _, t := range b.cliTools() {
		first, appended, err := b.signTwice(t)
		if err != nil {
			return err
		}
		b.printf("| %s CLI | first signature | %d | %d | %s |\n", t.name, len(first), th.RoundTrips(first), requests(first))
		b.printf("| %s CLI | append (1 existing) | %d | %d | %s |\n", t.name, len(appended), th.RoundTrips(appended), requests(appended))
		base := plain[t.name][1]
		tokenLines = append(tokenLines, fmt.Sprintf("- %s CLI, append: %d requests / %d round trips with token auth, %d / %d without; "+
			"the token adds %s (%d answered 401)", t.name, len(appended), th.RoundTrips(appended), len(base), th.RoundTrips(base),
			classDiff(appended, base), count401(appended)))
	}
	// The port keeps one transport (connection, token) per repository.
	p, err := th.StartPort(b.ocisign, b.env())
	if err != nil {
		return err
	}
	defer p.Close()
	ref, err := b.image()
	if err != nil {
		return err
	}
	repo, digest, _ := strings.Cut(ref, "@")
	warmDigest, err := memregistry.PushImage(b.reg.Addr + strings.TrimPrefix(repo, b.proxy.Addr) + ":warm")
	if err != nil {
		return err
	}
	b.proxy.Take()
	if err := b.portSign(p, repo+"@"+warmDigest, ""); err != nil {
		return err
	}
	warmUp := b.proxy.Take()
	var timelines []string
	for i, withDigest := range []bool{true, false} {
		b.proxy.Take()
		req := map[string]any{"id": i, "op": "sign", "reference": ref, "sign_key": b.key, "annotations": map[string]string{"n": fmt.Sprint(i)}}
		if withDigest {
			req["reference"], req["digest"] = repo+":v1", digest
		}
		if err := b.portCall(p, req); err != nil {
			return err
		}
		recs := b.proxy.Take()
		what := "first signature"
		if i > 0 {
			what = "append (1 existing)"
		}
		how := "repo@digest"
		if withDigest {
			how = "`digest` field"
		}
		b.printf("| ocisign port, warm | %s, %s | %d | %d | %s |\n", what, how, len(recs), th.RoundTrips(recs), requests(recs))
		timelines = append(timelines, timeline(fmt.Sprintf("ocisign port, warm, %s, %s", what, how), recs))
	}
	// The target is judged on several appends, not one.
	var st runStats
	tokens, unauthorized := 0, 0
	for i := 0; i < runs; i++ {
		b.proxy.Take()
		start := time.Now()
		if err := b.portCall(p, map[string]any{"id": 100 + i, "op": "sign", "reference": ref, "sign_key": b.key,
			"annotations": map[string]string{"n": fmt.Sprint(100 + i)}}); err != nil {
			return err
		}
		elapsed := time.Since(start)
		recs := b.proxy.Take()
		st.add(elapsed, recs)
		tokens += countClass(recs, "GET /token")
		unauthorized += count401(recs)
	}
	medRT, medReq := medianInt(st.rounds), medianInt(st.requests)
	b.warmAppend = medRT
	b.printf("| ocisign port, warm | append, median of %d runs (%d–%d existing) | %s | %s | round trips per run: %s |\n",
		runs, 2, runs+1, fmtMedian(medReq), fmtMedian(medRT), histogram(st.rounds))
	typical := closestToMedian(st.rounds)
	seq := sequence(st.recs[typical])
	b.target(medRT <= 4, "appending from a warm port with a warm token takes a median of %s sequential round trips over %d runs "+
		"(target ≤ 4; per run: %s; %d token requests and %d 401s in those runs). Sequence recorded in a run with %d: %s",
		fmtMedian(medRT), runs, histogram(st.rounds), tokens, unauthorized, st.rounds[typical], seq)
	timelines = append(timelines, timeline(fmt.Sprintf("ocisign port, warm, append run %d of %d (%d round trips)", typical+1, runs, st.rounds[typical]), st.recs[typical]))

	b.printf("\nWhat the token costs (same runs without the token front):\n\n%s\n", strings.Join(tokenLines, "\n"))
	b.printf("- ocisign port: its warm-up signature in the repository made %d requests, %d of them `GET /token`; the %d warm\n"+
		"  appends after it made %d token requests and got %d 401s — the port reuses the repository's token.\n",
		len(warmUp), countClass(warmUp, "GET /token"), runs, tokens, unauthorized)
	b.printf("\nRequests in one round (same `→` step of the sequence) overlap; Go's HTTP client can hand a request the\n")
	b.printf("connection another request of the same round has just released, which shows up as one more round trip.\n")
	b.printf("\nTimelines as the proxy saw them (start offset and duration of each request, ms):\n\n")
	for _, tl := range timelines {
		b.printf("%s\n", tl)
	}
	return nil
}

// timeline renders requests as "+start duration METHOD class" lines.
func timeline(title string, recs []th.Record) string {
	if len(recs) == 0 {
		return ""
	}
	t0 := recs[0].Start
	var lines []string
	for _, r := range recs {
		lines = append(lines, fmt.Sprintf("    +%5.1f %5.1f  %d %s", float64(r.Start.Sub(t0).Microseconds())/1000,
			float64(r.End.Sub(r.Start).Microseconds())/1000, r.Status, r.Class()))
	}
	return "- " + title + ":\n\n" + strings.Join(lines, "\n") + "\n"
}

// busy is the total time at least one request was open.
func busy(recs []th.Record) time.Duration {
	var total time.Duration
	var end time.Time
	for _, r := range recs { // sorted by start
		switch {
		case r.Start.After(end):
			total += r.End.Sub(r.Start)
			end = r.End
		case r.End.After(end):
			total += r.End.Sub(end)
			end = r.End
		}
	}
	return total
}
