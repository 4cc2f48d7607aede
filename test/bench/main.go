// Command bench measures ocisign side by side with cosign v2.6.5 and v3.1.3
// against a real docker-registry behind a request-counting proxy, and writes
// docs/benchmarks.md. Run it with `make bench` (not part of `make test`).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocisign/ocisign/internal/memregistry"
	th "github.com/ocisign/ocisign/test/internal/harness"
	"github.com/ocisign/ocisign/test/rekor"
)

const password = "bench-password-not-secret"

type bench struct {
	tmp, home, tuf string
	root, commit   string
	// measured in one section, quoted in another
	plainFirst map[string][]th.Record // CLI first signature without auth, by tool
	warmAppend float64                // median round trips of a warm port append (token auth)
	warmRegMed time.Duration          // warm port: registry busy, median
	warmSigMed time.Duration          // warm port: wall time per signature, median
	warmReqMed float64
	warmRTMed  float64
	ocisign    string
	tools      th.Tools
	reg        *th.Registry
	proxy      *th.Proxy
	mono       string // a registry that stores monolithic blob POSTs
	key, pub   string
	out        bytes.Buffer
	repoN      int
	counter    int
	targets    []string
}

func main() {
	outPath := flag.String("out", "docs/benchmarks.md", "report file")
	runs := flag.Int("runs", 10, "CLI runs per tool for wall times, and warm appends for the round-trip target")
	portSigs := flag.Int("port-signatures", 100, "warm port signatures")
	recRuns := flag.Int("recursive-runs", 5, "runs per platform count for recursive signing")
	rssSigs := flag.Int("rss-signatures", 1000, "signatures for the port's peak RSS")
	trials := flag.Int("trials", 5, "concurrent-signer trials per tool")
	latencyRuns := flag.Int("latency-runs", 5, "runs per signer and added round-trip time")
	rttList := flag.String("rtts", "0ms,10ms,50ms", "added round-trip times for the latency table")
	only := flag.String("only", "", "run only these sections (comma-separated: requests, monolithic, wall, latency, recursive, rekor, rss, size, concurrency); "+
		"the report then lacks the others and targets that quote them")
	_, rekorErr := rekor.FindTools("")
	withRekor := flag.Bool("rekor", rekorErr == nil, "measure the transparency log's cost per signature against a local Rekor "+
		"(default: on when the Rekor tools are in the tools cache)")
	flag.Parse()
	cfg := config{outPath: *outPath, runs: max(*runs, 1), portSigs: max(*portSigs, 1), recRuns: max(*recRuns, 1),
		rssSigs: max(*rssSigs, 1), trials: max(*trials, 1), latencyRuns: max(*latencyRuns, 1),
		rekor: *withRekor, rekorMissing: rekorErr, only: *only}
	for _, f := range strings.Split(*rttList, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d < 0 {
			fmt.Fprintf(os.Stderr, "bench: -rtts: %q is not a duration like 10ms\n", f)
			os.Exit(2)
		}
		cfg.rtts = append(cfg.rtts, d)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

type config struct {
	outPath                                  string
	runs, portSigs, recRuns, rssSigs, trials int
	latencyRuns                              int
	only                                     string
	rtts                                     []time.Duration
	rekor                                    bool
	rekorMissing                             error
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func (b *bench) printf(format string, args ...any) { fmt.Fprintf(&b.out, format, args...) }

func run(cfg config) error {
	started := time.Now()
	root, err := th.RepoRoot(".")
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "ocisign-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &bench{tmp: tmp, home: filepath.Join(tmp, "home"), tuf: filepath.Join(tmp, "tuf"), root: root}
	for _, d := range []string{b.home, filepath.Join(b.home, ".docker"), b.tuf} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if b.tools, err = th.FindTools(); err != nil {
		return err
	}
	// Read the commit before building: the report names what was measured.
	b.commit = commitOf(root)
	b.ocisign = filepath.Join(tmp, "ocisign")
	b.logf("building ocisign at %s", b.commit)
	if err := th.BuildOcisign(root, b.ocisign, "-trimpath", "-ldflags=-s -w"); err != nil {
		return err
	}
	plain := filepath.Join(tmp, "ocisign-plain")
	if err := th.BuildOcisign(root, plain); err != nil {
		return err
	}
	if b.reg, err = th.StartRegistry(b.tools.Registry, filepath.Join(tmp, "registry")); err != nil {
		return err
	}
	defer b.reg.Stop()
	if b.proxy, err = th.StartProxy(b.reg.Addr); err != nil {
		return err
	}
	defer b.proxy.Close()
	var stopMono func()
	if b.mono, stopMono, err = memregistry.Start(); err != nil {
		return err
	}
	defer stopMono()
	b.key, b.pub, err = b.newKey("bench")
	if err != nil {
		return err
	}

	b.header(plain)
	steps := []struct {
		name string
		run  func() error
	}{
		{"requests", func() error { return b.requestCounts(cfg.runs) }},
		{"monolithic", func() error { return b.monolithicRounds(cfg.runs) }},
		{"wall", func() error { return b.wallTimes(cfg.runs, cfg.portSigs) }},
		{"latency", func() error { return b.latency(cfg.latencyRuns, cfg.rtts) }},
		{"recursive", func() error { return b.recursive(cfg.recRuns) }},
		{"rekor", func() error { return b.rekorCost(cfg) }},
		{"rss", func() error { return b.peakRSS(cfg.rssSigs) }},
		{"size", func() error { return b.sizes(plain) }},
		{"concurrency", func() error { return b.concurrency(cfg.trials) }},
	}
	for _, s := range steps {
		if cfg.only != "" && !slices.Contains(strings.Split(cfg.only, ","), s.name) {
			continue
		}
		if err := s.run(); err != nil {
			return err
		}
	}
	b.printf("%s%s", notes, reproduce(time.Since(started).Round(time.Second).String()))
	report := strings.Replace(b.out.String(), targetsMark, "## Targets (issues 4 and 11)\n\n"+strings.Join(b.targets, "\n")+"\n\n", 1)
	b.out.Reset()
	b.out.WriteString(report)
	outPath := cfg.outPath
	if !filepath.IsAbs(outPath) {
		outPath = filepath.Join(root, outPath)
	}
	os.Stdout.Write(b.out.Bytes())
	return os.WriteFile(outPath, b.out.Bytes(), 0o644)
}

// commitOf is `git rev-parse --short HEAD`, with "-dirty" when tracked files
// differ from it (untracked files are ignored, as in `git describe --dirty`).
func commitOf(root string) string {
	head, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (git rev-parse failed)"
	}
	commit := strings.TrimSpace(string(head))
	status, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output()
	if err != nil || len(bytes.TrimSpace(status)) > 0 {
		commit += "-dirty"
	}
	return commit
}

func (b *bench) env(extra ...string) []string {
	return th.IsolatedEnv(b.home, b.tuf, append([]string{"COSIGN_PASSWORD=" + password}, extra...)...)
}

func (b *bench) newKey(name string) (string, string, error) {
	prefix := filepath.Join(b.tmp, "keys", name)
	if err := os.MkdirAll(filepath.Dir(prefix), 0o700); err != nil {
		return "", "", err
	}
	r, err := th.Run(b.env(), time.Minute, b.ocisign, "generate-key-pair", "--output-key-prefix", prefix)
	if err != nil {
		return "", "", err
	}
	if r.Code != 0 {
		return "", "", fmt.Errorf("generate-key-pair:\n%s", r)
	}
	return prefix + ".key", prefix + ".pub", nil
}

// image pushes a fresh image straight to the registry (not counted) and
// returns "proxy/repo@digest".
func (b *bench) image() (string, error) {
	b.repoN++
	repo := fmt.Sprintf("bench/app%d", b.repoN)
	d, err := memregistry.PushImage(b.reg.Addr + "/" + repo + ":v1")
	if err != nil {
		return "", err
	}
	return b.proxy.Addr + "/" + repo + "@" + d, nil
}

// tool is one signer under test.
type tool struct {
	name string
	bin  string
	args func(key string, extra ...string) []string
}

func (b *bench) cliTools() []tool {
	ocisign := tool{"ocisign", b.ocisign, func(key string, extra ...string) []string {
		return append([]string{"sign", "--key", key}, extra...)
	}}
	out := []tool{ocisign}
	for _, v := range []string{"v2", "v3"} {
		out = append(out, tool{"cosign " + th.CosignPins[v], b.tools.Cosign[v], func(key string, extra ...string) []string {
			return append(th.CosignSignArgs(v, key), extra...)
		}})
	}
	return out
}

func (b *bench) sign(t tool, key, ref string, extra ...string) (th.Result, error) {
	args := append(t.args(key, extra...), ref)
	r, err := th.Run(b.env(), 3*time.Minute, t.bin, args...)
	if err != nil {
		return r, err
	}
	if r.Code != 0 {
		return r, fmt.Errorf("%s failed:\n%s", t.name, r)
	}
	return r, nil
}

func (b *bench) header(plain string) {
	goVersion, _ := exec.Command("go", "version").Output()
	cpu := "unknown"
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := "unknown"
	if info, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kib int
		fmt.Sscanf(strings.SplitN(string(info), "\n", 2)[0], "MemTotal: %d kB", &kib)
		mem = fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
	}
	var args []string
	flag.VisitAll(func(f *flag.Flag) { args = append(args, fmt.Sprintf("-%s=%s", f.Name, f.Value)) })
	b.printf("# Benchmarks: ocisign vs cosign\n\n")
	b.printf("Generated by `go run ./test/bench %s` (`make bench` runs it with `-out docs/benchmarks.md`)\n", strings.Join(args, " "))
	b.printf("on %s UTC, ocisign commit %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04"), b.commit)
	b.printf("Machine: %d CPUs (`nproc`), %s, %s RAM, %s, %s/%s.\n\n", runtime.NumCPU(), cpu, mem, strings.TrimSpace(string(goVersion)), runtime.GOOS, runtime.GOARCH)
	b.printf("Set-up: Debian `/usr/bin/docker-registry` (filesystem storage, no auth of its own) on 127.0.0.1 behind a Go\n")
	b.printf("reverse proxy (test/internal/harness) that records every request with its start and end time. For the request\n")
	b.printf("counts the proxy also acts as a bearer-token front (test/bench/auth.go: 401 + `WWW-Authenticate: Bearer` without a\n")
	b.printf("token it issued, anonymous tokens on `GET /token`), as registries with a token server do; the other sections run without auth.\n")
	b.printf("Signers: ocisign (built with `-trimpath -ldflags \"-s -w\"`), cosign v2.6.5 (`--tlog-upload=false -y`) and cosign v3.1.3\n")
	b.printf("(`--new-bundle-format=false --use-signing-config=false --tlog-upload=false -y`), legacy `.sig` layout, all\n")
	b.printf("with the same encrypted P-256 key (ocisign generate-key-pair, COSIGN_PASSWORD) and an environment cut off from the\n")
	b.printf("internet (HTTPS_PROXY=http://127.0.0.1:9, NO_PROXY=127.0.0.1,localhost, private HOME and TUF_ROOT, SIGSTORE_NO_CACHE=1).\n")
	b.printf("Images are pushed straight to the registry; only the signers' requests go through the proxy.\n\n")
	b.printf("*Sequential round trips* = the longest chain of requests in which each starts after the previous one ended\n")
	b.printf("(the critical path computed from the proxy's timestamps); requests that overlap count once. A *warm port* has\n")
	b.printf("decrypted the key and talked to the repository (connection, token) before the measured request.\n\n")
	b.printf("%s", targetsMark)
}

const targetsMark = "<!--targets-->\n"

func (b *bench) target(met bool, format string, args ...any) {
	mark := "**met**"
	if !met {
		mark = "**missed**"
	}
	b.targetMark(mark, format, args...)
}

func (b *bench) targetMark(mark, format string, args ...any) {
	b.targets = append(b.targets, fmt.Sprintf("- %s — %s", mark, fmt.Sprintf(format, args...)))
}

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

func (b *bench) portCall(p *th.Port, req map[string]any) error {
	r, err := p.Call(req)
	if err != nil {
		return fmt.Errorf("port: %v\n%s", err, p.Stderr)
	}
	if !r.OK {
		return fmt.Errorf("port sign failed: %s", r.Raw)
	}
	return nil
}

func (b *bench) portSign(p *th.Port, ref, annotation string) error {
	b.counter++
	req := map[string]any{"id": b.counter, "op": "sign", "reference": ref, "sign_key": b.key}
	if annotation != "" {
		req["annotations"] = map[string]string{"n": annotation}
	}
	return b.portCall(p, req)
}

type stats struct{ median, min, max time.Duration }

func summarize(ds []time.Duration) stats {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stats{m, s[0], s[len(s)-1]}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

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

func (b *bench) peakRSS(n int) error {
	b.logf("peak RSS over %d port signatures", n)
	p, err := th.StartPort(b.ocisign, b.env())
	if err != nil {
		return err
	}
	defer p.Close()
	images := min(100, n)
	refs := make([]string, images)
	for i := range refs {
		if refs[i], err = b.image(); err != nil {
			return err
		}
	}
	before, _ := th.PeakRSSKiB(p.Pid())
	if err := b.portSign(p, refs[0], "first"); err != nil { // the key is decrypted (scrypt) here
		return err
	}
	afterFirst, _ := th.PeakRSSKiB(p.Pid())
	var samples []string
	// 16 requests in flight at a time (the port's default concurrency).
	const window = 16
	sent, done := 0, 0
	for done < n {
		for sent < n && sent-done < window {
			req := map[string]any{"id": sent, "op": "sign", "reference": refs[sent%images], "sign_key": b.key,
				"annotations": map[string]string{"n": fmt.Sprint(sent)}}
			if err := sendJSON(p, req); err != nil {
				return err
			}
			sent++
		}
		r, err := p.Next()
		if err != nil {
			return fmt.Errorf("port: %v\n%s", err, p.Stderr)
		}
		if !r.OK {
			return fmt.Errorf("port sign failed: %s", r.Raw)
		}
		done++
		if done%max(1, n/4) == 0 || done == n {
			rss, _ := th.RSSKiB(p.Pid())
			samples = append(samples, fmt.Sprintf("%d: %.1f MiB", done, float64(rss)/1024))
		}
	}
	peak, err := th.PeakRSSKiB(p.Pid())
	if err != nil {
		return err
	}
	b.printf("## Peak memory of the port\n\n")
	b.printf("`ocisign port`, %d signatures over %d images (distinct annotations, 16 requests in flight): VmHWM %.1f MiB\n", n, images, float64(peak)/1024)
	b.printf("(%.1f MiB after start-up, %.1f MiB after the first signature, which decrypts the key).", float64(before)/1024, float64(afterFirst)/1024)
	if peak-afterFirst <= afterFirst/20 {
		b.printf(" The peak is reached by the first signature: the key decryption, scrypt with the parameters ocisign and\n")
		b.printf("cosign write (N=65536, r=8), needs 64 MiB, as in every cosign run.")
	} else {
		b.printf(" The remaining %d signatures raised the peak by %.1f MiB.", n, float64(peak-afterFirst)/1024)
	}
	b.printf(" Current RSS (VmRSS) after n signatures: %s.\n\n", strings.Join(samples, ", "))
	return nil
}

func sendJSON(p *th.Port, v any) error {
	return p.Send(mustJSON(v))
}

func (b *bench) sizes(plain string) error {
	size := func(p string) float64 {
		st, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return float64(st.Size()) / (1 << 20)
	}
	b.printf("## Binary sizes\n\n| binary | size |\n|---|---|\n")
	b.printf("| ocisign (`go build`) | %.1f MiB |\n", size(plain))
	b.printf("| ocisign (`-trimpath -ldflags \"-s -w\"`) | %.1f MiB |\n", size(b.ocisign))
	for _, v := range []string{"v2", "v3"} {
		b.printf("| cosign %s (test/tools/build.sh) | %.1f MiB |\n", th.CosignPins[v], size(b.tools.Cosign[v]))
	}
	b.printf("\nocisign stripped is %.1f%% of cosign v2.6.5 and %.1f%% of cosign v3.1.3.\n\n",
		100*size(b.ocisign)/size(b.tools.Cosign["v2"]), 100*size(b.ocisign)/size(b.tools.Cosign["v3"]))
	smallest := min(size(b.tools.Cosign["v2"]), size(b.tools.Cosign["v3"]))
	b.target(size(plain) < smallest/4, "the binary is under a quarter of cosign's size: %.1f MiB (plain `go build`; %.1f MiB stripped) vs %.1f MiB",
		size(plain), size(b.ocisign), smallest)
	return nil
}

// concurrency: 8 signers with 8 keys sign one digest at the same moment.
func (b *bench) concurrency(trials int) error {
	b.logf("concurrent signers")
	const signers = 8
	var keys, pubs []string
	for i := 0; i < signers; i++ {
		k, p, err := b.newKey(fmt.Sprintf("conc%d", i))
		if err != nil {
			return err
		}
		keys, pubs = append(keys, k), append(pubs, p)
	}
	b.printf("## Concurrent signers (8 keys, one digest, all at once)\n\n")
	b.printf("Each trial pushes a fresh image and starts 8 signers with 8 different keys at the same moment; afterwards\n")
	b.printf("each key's signature is looked for in the `.sig` manifest with `ocisign verify --key` (it checks what cosign verify\n")
	b.printf("checks and starts faster; test/concurrency, the test of the same scenario, verifies with real `cosign verify`).\n")
	b.printf("Lost = signatures missing at the end.\n\n")
	b.printf("| signers | trials | signatures expected | signatures lost | trials with a loss | signer runs that failed |\n|---|---|---|---|---|---|\n")
	for _, t := range b.cliTools() {
		lost, badTrials := 0, 0
		var failed atomic.Int32
		for trial := 0; trial < trials; trial++ {
			ref, err := b.image()
			if err != nil {
				return err
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < signers; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					// A signer that fails outright under the race loses its signature too.
					r, err := th.Run(b.env(), 3*time.Minute, t.bin, append(t.args(keys[i]), ref)...)
					if err != nil || r.Code != 0 {
						failed.Add(1)
					}
				}()
			}
			close(start)
			wg.Wait()
			missing := 0
			for i := 0; i < signers; i++ {
				r, err := th.Run(b.env(), time.Minute, b.ocisign, "verify", "--key", pubs[i], ref)
				if err != nil {
					return err
				}
				if r.Code != 0 {
					missing++
				}
			}
			lost += missing
			if missing > 0 {
				badTrials++
			}
		}
		b.printf("| 8 × %s processes | %d | %d | %d (%.0f%%) | %d | %d |\n", t.name, trials, trials*signers, lost,
			100*float64(lost)/float64(trials*signers), badTrials, failed.Load())
	}
	// 8 requests on one port.
	p, err := th.StartPort(b.ocisign, b.env())
	if err != nil {
		return err
	}
	defer p.Close()
	lost, badTrials, portFailed := 0, 0, 0
	for trial := 0; trial < trials; trial++ {
		ref, err := b.image()
		if err != nil {
			return err
		}
		for i := 0; i < signers; i++ {
			b.counter++
			if err := sendJSON(p, map[string]any{"id": b.counter, "op": "sign", "reference": ref, "sign_key": keys[i]}); err != nil {
				return err
			}
		}
		for i := 0; i < signers; i++ {
			r, err := p.Next()
			if err != nil {
				return err
			}
			if !r.OK {
				portFailed++
			}
		}
		missing := 0
		for i := 0; i < signers; i++ {
			r, err := th.Run(b.env(), time.Minute, b.ocisign, "verify", "--key", pubs[i], ref)
			if err != nil {
				return err
			}
			if r.Code != 0 {
				missing++
			}
		}
		lost += missing
		if missing > 0 {
			badTrials++
		}
	}
	b.printf("| 8 requests on one ocisign port | %d | %d | %d (%.0f%%) | %d | %d |\n\n", trials, trials*signers, lost,
		100*float64(lost)/float64(trials*signers), badTrials, portFailed)
	return nil
}
