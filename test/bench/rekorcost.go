package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ocisign/ocisign/internal/memregistry"
	th "github.com/ocisign/ocisign/test/internal/harness"
	"github.com/ocisign/ocisign/test/rekor"
)

// rekorCost measures what recording each signature in a transparency log
// adds on a warm port: a local Rekor (test/rekor) behind its own recording
// proxy, the same repository signed with and without rekor_url.
func (b *bench) rekorCost(cfg config) error {
	b.printf("## Transparency log: extra cost per signature (issue 5)\n\n")
	if !cfg.rekor {
		why := "`-rekor=false`"
		if cfg.rekorMissing != nil {
			why = fmt.Sprintf("the Rekor tools are missing (%v)", cfg.rekorMissing)
		}
		b.printf("Not measured in this run: %s. `test/rekor/install.sh` installs them; `-rekor` then runs this step.\n\n", why)
		return nil
	}
	b.logf("transparency log: starting a local Rekor")
	l, err := rekor.Start(context.Background(), rekor.Options{Logf: b.logf})
	if err != nil {
		return fmt.Errorf("starting the local Rekor (-rekor=false skips this step): %w", err)
	}
	defer func() {
		if err := l.Stop(); err != nil {
			b.logf("stopping the local Rekor: %v", err)
		}
	}()
	u, err := url.Parse(l.URL)
	if err != nil {
		return err
	}
	logProxy, err := th.StartProxy(u.Host)
	if err != nil {
		return err
	}
	defer logProxy.Close()

	p, err := th.StartPort(b.ocisign, b.env())
	if err != nil {
		return err
	}
	defer p.Close()
	b.repoN++
	repo := fmt.Sprintf("bench/tlog%d", b.repoN)
	digest, err := memregistry.PushImage(b.reg.Addr + "/" + repo + ":v1")
	if err != nil {
		return err
	}
	ref := b.proxy.Addr + "/" + repo + "@" + digest
	type mode struct {
		name       string
		withLog    bool
		st         runStats
		reg, logRq []int
	}
	modes := []*mode{{name: "no log", withLog: false}, {name: "local Rekor", withLog: true}}
	signOnce := func(m *mode, annotation string) (time.Duration, error) {
		b.counter++
		req := map[string]any{"id": b.counter, "op": "sign", "reference": ref, "sign_key": b.key,
			"annotations": map[string]string{"n": annotation}}
		if m.withLog {
			req["rekor_url"], req["rekor_public_key"] = "http://"+logProxy.Addr, l.PublicKeyFile
		}
		start := time.Now()
		r, err := p.Call(req)
		elapsed := time.Since(start)
		if err != nil {
			return 0, fmt.Errorf("port: %v\n%s", err, p.Stderr)
		}
		if !r.OK || len(r.Signed) == 0 || r.Signed[0].Deduplicated {
			return 0, fmt.Errorf("port sign (%s) did not append a new signature: %s", m.name, r.Raw)
		}
		return elapsed, nil
	}
	for _, m := range modes {
		// Warm-up: key, registry connection, log connection.
		if _, err := signOnce(m, m.name+" warm-up"); err != nil {
			return err
		}
		for i := 0; i < cfg.runs; i++ {
			b.proxy.Take()
			logProxy.Take()
			d, err := signOnce(m, fmt.Sprintf("%s %d", m.name, i))
			if err != nil {
				return err
			}
			regRecs, logRecs := b.proxy.Take(), logProxy.Take()
			m.st.add(d, merge(regRecs, logRecs))
			m.reg, m.logRq = append(m.reg, len(regRecs)), append(m.logRq, len(logRecs))
		}
	}

	b.printf("`ocisign port`, warm (key decrypted, registry and log connections open), %d signatures per row appended to one\n", cfg.runs)
	b.printf("image; with the log each signature is uploaded as a hashedrekord entry (`rekor_url`, log key pinned with\n")
	b.printf("`rekor_public_key`, so the key is not fetched). Log: rekor-server + Trillian + MariaDB on loopback, started by\n")
	b.printf("test/rekor (%s), behind a second recording proxy.\n\n", sequencerNote(l))
	b.printf("| mode | median | min | max | registry requests | log requests | sequential round trips (registry + log) |\n|---|---|---|---|---|---|---|\n")
	for _, m := range modes {
		s := summarize(m.st.times)
		b.printf("| %s | %s | %s | %s | %s | %s | %s |\n", m.name, ms(s.median), ms(s.min), ms(s.max),
			fmtMedian(medianInt(m.reg)), fmtMedian(medianInt(m.logRq)), fmtMedian(medianInt(m.st.rounds)))
	}
	without, with := summarize(modes[0].st.times).median, summarize(modes[1].st.times).median
	typical := closestToMedian(modes[1].st.rounds)
	var entryTimes []time.Duration
	for _, recs := range modes[1].st.recs {
		for _, r := range recs {
			if r.Method == "POST" && r.Path == "/api/v1/log/entries" {
				entryTimes = append(entryTimes, r.End.Sub(r.Start))
			}
		}
	}
	b.printf("\nThe log adds %s per signature (difference of the medians; %.1f× the time without it); log requests per\n",
		ms(with-without), float64(with)/float64(without))
	b.printf("signature: %s; sequential round trips: %s with the log, %s without (medians).", fmtMedian(medianInt(modes[1].logRq)),
		fmtMedian(medianInt(modes[1].st.rounds)), fmtMedian(medianInt(modes[0].st.rounds)))
	if len(entryTimes) > 0 {
		e := summarize(entryTimes)
		b.printf(" The entry upload (`POST /api/v1/log/entries`) itself took a median of %s (min %s, max %s);\n", ms(e.median), ms(e.min), ms(e.max))
		b.printf("its reply carries the inclusion proof, so rekor-server answers once the Trillian signer has integrated the entry\n")
		b.printf("(compare the signer interval above).")
		if medianInt(modes[1].st.rounds) <= medianInt(modes[0].st.rounds) {
			b.printf(" It runs alongside the blob uploads, so it lengthens a round rather than adding one.")
		}
	}
	b.printf("\nRequests of a run with the log, round by round: %s.\n\n", sequence(modes[1].st.recs[typical]))
	b.printf("%s\n", timeline(fmt.Sprintf("with the local Rekor, run %d of %d", typical+1, cfg.runs), modes[1].st.recs[typical]))
	return nil
}

// sequencerNote reads the Trillian signer's batching interval from its
// command line: an entry is answered once it is integrated, so it bounds the
// log's latency.
func sequencerNote(l *rekor.Log) string {
	for _, pid := range l.PIDs() {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		for _, arg := range bytes.Split(cmdline, []byte{0}) {
			if v, ok := strings.CutPrefix(string(arg), "--sequencer_interval="); ok {
				return "Trillian signer `--sequencer_interval=" + v + "`"
			}
		}
	}
	return "Trillian signer interval not found"
}
