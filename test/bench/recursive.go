package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/ocisign/ocisign/internal/memregistry"
	th "github.com/ocisign/ocisign/test/internal/harness"
)

var parallelAppendsRE = regexp.MustCompile(`(?m)^const parallelAppends = (\d+)`)

// parallelAppends reads the concurrency bound of a recursive sign from the
// source that was built, so the report cannot drift from it.
func parallelAppends(root string) (int, bool) {
	src, err := os.ReadFile(filepath.Join(root, "registry", "sign.go"))
	if err != nil {
		return 0, false
	}
	m := parallelAppendsRE.FindSubmatch(src)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(string(m[1]))
	return n, err == nil
}

type recRow struct {
	signer, mode string
	platforms    int
	st           runStats
}

func (r recRow) median() time.Duration { return summarize(r.st.times).median }

var recSizes = []int{1, 4, 16}

func (b *bench) recursive(runs int) error {
	b.logf("recursive signing")
	var rows []recRow
	p, err := th.StartPort(b.ocisign, b.env())
	if err != nil {
		return err
	}
	defer p.Close()
	b.repoN++
	repo := fmt.Sprintf("bench/index%d", b.repoN)
	warm, err := memregistry.PushImage(b.reg.Addr + "/" + repo + ":warm")
	if err != nil {
		return err
	}
	if err := b.portSign(p, b.proxy.Addr+"/"+repo+"@"+warm, ""); err != nil {
		return err
	}
	for _, n := range recSizes {
		row := recRow{signer: "ocisign", mode: "port, warm", platforms: n}
		for r := 0; r < runs; r++ {
			d, _, err := memregistry.PushIndex(fmt.Sprintf("%s/%s:n%d-%d", b.reg.Addr, repo, n, r), memregistry.Platforms(n))
			if err != nil {
				return err
			}
			b.proxy.Take()
			b.counter++
			start := time.Now()
			if err := b.portCall(p, map[string]any{"id": b.counter, "op": "sign", "reference": b.proxy.Addr + "/" + repo + "@" + d,
				"sign_key": b.key, "recursive": true}); err != nil {
				return err
			}
			row.st.add(time.Since(start), b.proxy.Take())
		}
		rows = append(rows, row)
	}
	for _, t := range b.cliTools() {
		flagName := "-r"
		if t.name == "ocisign" {
			flagName = "--recursive"
		}
		for _, n := range recSizes {
			row := recRow{signer: t.name, mode: "CLI, cold process", platforms: n}
			for r := 0; r < runs; r++ {
				b.repoN++
				repo := fmt.Sprintf("bench/index%d", b.repoN)
				d, _, err := memregistry.PushIndex(b.reg.Addr+"/"+repo+":v1", memregistry.Platforms(n))
				if err != nil {
					return err
				}
				b.proxy.Take()
				res, err := b.sign(t, b.key, b.proxy.Addr+"/"+repo+"@"+d, flagName)
				if err != nil {
					return err
				}
				row.st.add(res.Elapsed, b.proxy.Take())
			}
			rows = append(rows, row)
		}
	}

	b.printf("## Recursive signing of an index (index + every platform manifest)\n\n")
	b.printf("%d runs per row, medians (min–max for the time). *Warm port*: one `ocisign port` that has decrypted the key and\n", runs)
	b.printf("signed in the repository before; *cold process*: one CLI run each (process start, key decryption, ping included).\n\n")
	b.printf("| signer | mode | platforms | signatures | wall time | min–max | per signature | requests | sequential round trips |\n")
	b.printf("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		s := summarize(r.st.times)
		sigs := r.platforms + 1
		b.printf("| %s | %s | %d | %d | %s | %s–%s | %s | %s | %s |\n", r.signer, r.mode, r.platforms, sigs, ms(s.median),
			ms(s.min), ms(s.max), ms(s.median/time.Duration(sigs)), fmtMedian(medianInt(r.st.requests)), fmtMedian(medianInt(r.st.rounds)))
	}
	b.printf("\nGrowth (medians; signatures = platforms + 1, so 1 → 16 platforms is 8.5× the signatures):\n\n")
	var warmRow [3]recRow
	for i := 0; i < len(rows); i += len(recSizes) {
		g := rows[i : i+len(recSizes)]
		t1, t4, t16 := g[0].median(), g[1].median(), g[2].median()
		rt4, rt16 := medianInt(g[1].st.rounds), medianInt(g[2].st.rounds)
		b.printf("- %s, %s: %s → %s → %s, %.1f× for 8.5× the signatures; each signature added between 4 and 16 platforms costs %s and %.2f sequential round trips\n",
			g[0].signer, g[0].mode, ms(t1), ms(t4), ms(t16), float64(t16)/float64(t1), ms((t16-t4)/12), (rt16-rt4)/12)
		if g[0].mode == "port, warm" {
			copy(warmRow[:], g)
		}
	}
	b.printf("\n")

	pa, paKnown := parallelAppends(b.root)
	bound := "a bounded number of appends at once (see registry/sign.go)"
	if paKnown {
		bound = fmt.Sprintf("at most %d appends at once (`parallelAppends = %d` in registry/sign.go)", pa, pa)
	}
	t1, t4, t16 := warmRow[0].median(), warmRow[1].median(), warmRow[2].median()
	ratio := float64(t16) / float64(t1)
	marginal := (t16 - t4) / 12
	rtPerSig := (medianInt(warmRow[2].st.rounds) - medianInt(warmRow[1].st.rounds)) / 12
	detail := fmt.Sprintf("on a warm port 16 platforms (17 signatures) take %.1f× the time of 1 platform (2 signatures; %s → %s → %s for 1, 4, 16 "+
		"platforms, medians of %d runs), against 8.5× for proportional growth; ocisign signs %s, so past that the time grows linearly: "+
		"each signature added between 4 and 16 platforms costs %s and %.2f sequential round trips, against %s and %s round trips for a lone "+
		"warm signature: the appends overlap %.1f-fold in time and %.1f-fold in round trips here",
		ratio, ms(t1), ms(t4), ms(t16), runs, bound, ms(marginal), rtPerSig, ms(b.warmSigMed), fmtMedian(b.warmRTMed),
		float64(b.warmSigMed)/float64(marginal), b.warmRTMed/rtPerSig)
	switch {
	case ratio >= 8.5:
		b.target(false, "recursive signing grows sub-linearly: %s", detail)
	case rtPerSig > 0:
		b.targetMark("**partly met**", "recursive signing grows less than in proportion to the signatures, not sub-linearly: %s", detail)
	default:
		b.target(true, "recursive signing grows sub-linearly: %s", detail)
	}
	return nil
}
