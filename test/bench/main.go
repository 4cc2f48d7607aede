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
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	th "github.com/ocisign/ocisign/test/internal/harness"
)

const password = "bench-password-not-secret"

type bench struct {
	tmp, home, tuf string
	ocisign        string
	tools          th.Tools
	reg            *th.Registry
	proxy          *th.Proxy
	key, pub       string
	out            bytes.Buffer
	repoN          int
	counter        int
	targets        []string
}

func main() {
	outPath := flag.String("out", "docs/benchmarks.md", "report file")
	runs := flag.Int("runs", 10, "CLI runs per tool for wall times")
	portSigs := flag.Int("port-signatures", 100, "warm port signatures")
	rssSigs := flag.Int("rss-signatures", 1000, "signatures for the port's peak RSS")
	trials := flag.Int("trials", 5, "concurrent-signer trials per tool")
	flag.Parse()
	if err := run(*outPath, *runs, *portSigs, *rssSigs, *trials); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func (b *bench) printf(format string, args ...any) { fmt.Fprintf(&b.out, format, args...) }

func run(outPath string, runs, portSigs, rssSigs, trials int) error {
	root, err := th.RepoRoot(".")
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "ocisign-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &bench{tmp: tmp, home: filepath.Join(tmp, "home"), tuf: filepath.Join(tmp, "tuf")}
	for _, d := range []string{b.home, filepath.Join(b.home, ".docker"), b.tuf} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if b.tools, err = th.FindTools(); err != nil {
		return err
	}
	b.ocisign = filepath.Join(tmp, "ocisign")
	b.logf("building ocisign")
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
	b.key, b.pub, err = b.newKey("bench")
	if err != nil {
		return err
	}

	b.header(root, plain, runs, portSigs, rssSigs, trials)
	steps := []func() error{
		func() error { return b.requestCounts() },
		func() error { return b.wallTimes(runs, portSigs) },
		func() error { return b.recursive() },
		func() error { return b.peakRSS(rssSigs) },
		func() error { return b.sizes(plain) },
		func() error { return b.concurrency(trials) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	b.printf("%s", notes)
	report := strings.Replace(b.out.String(), targetsMark, "## Targets (issue 4)\n\n"+strings.Join(b.targets, "\n")+"\n\n", 1)
	b.out.Reset()
	b.out.WriteString(report)
	if !filepath.IsAbs(outPath) {
		outPath = filepath.Join(root, outPath)
	}
	os.Stdout.Write(b.out.Bytes())
	return os.WriteFile(outPath, b.out.Bytes(), 0o644)
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
	d, err := th.PushImage(b.reg.Addr + "/" + repo + ":v1")
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

func (b *bench) header(root, plain string, runs, portSigs, rssSigs, trials int) {
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
	commit, _ := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	b.printf("# Benchmarks: ocisign vs cosign\n\n")
	b.printf("Generated by `make bench` (`go run ./test/bench -out docs/benchmarks.md -runs %d -port-signatures %d -rss-signatures %d -trials %d`)\n", runs, portSigs, rssSigs, trials)
	b.printf("on %s UTC, ocisign commit %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04"), strings.TrimSpace(string(commit)))
	b.printf("Machine: %d CPUs (`nproc`), %s, %s RAM, %s, %s/%s.\n\n", runtime.NumCPU(), cpu, mem, strings.TrimSpace(string(goVersion)), runtime.GOOS, runtime.GOARCH)
	b.printf("Set-up: Debian `/usr/bin/docker-registry` (filesystem storage, no auth) on 127.0.0.1 behind a Go\n")
	b.printf("reverse proxy (test/internal/harness) that records every request with its start and end time.\n")
	b.printf("Signers: ocisign (built with `-trimpath -ldflags \"-s -w\"`), cosign v2.6.5 (`--tlog-upload=false -y`) and cosign v3.1.3\n")
	b.printf("(`--new-bundle-format=false --use-signing-config=false --tlog-upload=false -y`), legacy `.sig` layout, all\n")
	b.printf("with the same encrypted P-256 key (ocisign generate-key-pair, COSIGN_PASSWORD) and an environment cut off from the\n")
	b.printf("internet (HTTPS_PROXY=http://127.0.0.1:9, NO_PROXY=127.0.0.1,localhost, private HOME and TUF_ROOT, SIGSTORE_NO_CACHE=1).\n")
	b.printf("Images are pushed straight to the registry; only the signers' requests go through the proxy.\n\n")
	b.printf("*Sequential round trips* = the longest chain of requests in which each starts after the previous one ended\n")
	b.printf("(the critical path computed from the proxy's timestamps); requests that overlap count once.\n\n")
	b.printf("%s", targetsMark)
}

const targetsMark = "<!--targets-->\n"

func (b *bench) target(met bool, format string, args ...any) {
	mark := "**met**"
	if !met {
		mark = "**missed**"
	}
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

func (b *bench) requestCounts() error {
	b.logf("request counts")
	b.printf("## HTTP requests to sign one image\n\n")
	b.printf("| signer | case | requests | sequential round trips | requests by type |\n|---|---|---|---|---|\n")
	for _, t := range b.cliTools() {
		ref, err := b.image()
		if err != nil {
			return err
		}
		b.proxy.Take()
		if _, err := b.sign(t, b.key, ref); err != nil {
			return err
		}
		first := b.proxy.Take()
		if _, err := b.sign(t, b.key, ref, "-a", "n=2"); err != nil {
			return err
		}
		appended := b.proxy.Take()
		b.printf("| %s CLI | first signature | %d | %d | %s |\n", t.name, len(first), th.RoundTrips(first), requests(first))
		b.printf("| %s CLI | append (1 existing) | %d | %d | %s |\n", t.name, len(appended), th.RoundTrips(appended), requests(appended))
	}
	// The port keeps its transport (ping/token) between requests: warm.
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
	// Another image of the same repository warms the port's transport.
	warmDigest, err := th.PushImage(b.reg.Addr + strings.TrimPrefix(repo, b.proxy.Addr) + ":warm")
	if err != nil {
		return err
	}
	if err := b.portSign(p, repo+"@"+warmDigest, ""); err != nil {
		return err
	}
	var timelines []string
	for i, withDigest := range []bool{true, false} {
		b.proxy.Take()
		r := ref
		req := map[string]any{"id": i, "op": "sign", "reference": r, "sign_key": b.key, "annotations": map[string]string{"n": fmt.Sprint(i)}}
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
		if i > 0 {
			n := th.RoundTrips(recs)
			b.target(n <= 4, "appending with a warm connection takes %d sequential round trips (target ≤ 4): "+
				"GET .sig ‖ HEAD subject ‖ 2× POST upload; 2× PUT blob; PUT manifest; HEAD read-back", n)
		}
		timelines = append(timelines, timeline(fmt.Sprintf("ocisign port, warm, %s, %s", what, how), recs))
	}
	b.printf("\nA row can show one round trip more than the design's when Go's HTTP client hands a request of one round\n")
	b.printf("the connection another request of the same round has just released instead of opening a new one (see the\n")
	b.printf("timelines below: a request that starts right after another ended).\n")
	b.printf("\nTimelines as the proxy saw them (start offset and duration of each request, ms):\n\n")
	for _, tl := range timelines {
		b.printf("%s\n", tl)
	}
	b.printf("\nThe registry has no auth, so there is no token request; with a token server a cold CLI adds the\n")
	b.printf("token GET to the ping, a warm port reuses the token.\n\n")
	return nil
}

func gapNote(ratio float64, registry, total, cosign time.Duration) string {
	if ratio >= 20 {
		return ""
	}
	return fmt.Sprintf(". Gap: the registry itself is busy %s of the %s (%.0f%%) on ocisign's 4 sequential round trips "+
		"(the POSTs that open upload sessions and the PUTs cost the most, see the timelines), so even a client with no "+
		"overhead at all would be at most %.1f× faster than cosign against this registry on this machine. ocisign sends the "+
		"fewest requests a cosign-compatible append with read-back needs; the ratio is bounded by the registry's latency",
		ms(registry), ms(total), 100*float64(registry)/float64(total), float64(cosign)/float64(registry))
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
	refs := make([]string, portSigs+1)
	for i := range refs {
		if refs[i], err = b.image(); err != nil {
			return err
		}
	}
	if err := b.portSign(p, refs[0], ""); err != nil { // decrypts the key once
		return err
	}
	var ds, inRegistry []time.Duration
	for _, ref := range refs[1:] {
		b.proxy.Take()
		start := time.Now()
		if err := b.portSign(p, ref, ""); err != nil {
			return err
		}
		ds = append(ds, time.Since(start))
		inRegistry = append(inRegistry, busy(b.proxy.Take()))
	}
	name := fmt.Sprintf("ocisign port, warm (%d signatures, one port)", portSigs)
	results[name] = summarize(ds)
	order = append(order, name)

	b.printf("## Wall time per signature (first signature of a fresh image)\n\n")
	b.printf("%d runs per CLI; each CLI run is a new process that decrypts the key (scrypt) and pings the registry.\n\n", runs)
	b.printf("| signer | median | min | max | median vs cosign v2.6.5 | median vs cosign v3.1.3 |\n|---|---|---|---|---|---|\n")
	c2, c3 := results["cosign v2.6.5 CLI (cold process)"], results["cosign v3.1.3 CLI (cold process)"]
	for _, n := range order {
		s := results[n]
		b.printf("| %s | %s | %s | %s | %.1f× faster | %.1f× faster |\n", n, ms(s.median), ms(s.min), ms(s.max),
			float64(c2.median)/float64(s.median), float64(c3.median)/float64(s.median))
	}
	warmRatio := float64(min(c2.median, c3.median)) / float64(results[name].median)
	r := summarize(inRegistry)
	b.target(warmRatio >= 20, "a warm port signature is %.1f× faster than a cosign CLI run (median %s vs %s / %s; target ≥ 20×)%s",
		warmRatio, ms(results[name].median), ms(c2.median), ms(c3.median), gapNote(warmRatio, r.median, results[name].median, min(c2.median, c3.median)))
	b.printf("\nOf a warm port signature, the registry is busy with at least one of its requests for a median of %s\n", ms(r.median))
	b.printf("(min %s, max %s; union of the request intervals seen by the proxy): the rest is the port itself\n", ms(r.min), ms(r.max))
	b.printf("(frame decoding, signing, JSON) and the client's HTTP stack.\n\n")
	return nil
}

func (b *bench) recursive() error {
	b.logf("recursive")
	b.printf("## Recursive signing of an index (index + every platform manifest)\n\n")
	b.printf("| signer | platforms | signatures | wall time | requests | sequential round trips |\n|---|---|---|---|---|---|\n")
	for _, t := range b.cliTools() {
		var times []time.Duration
		for _, n := range []int{1, 4, 16} {
			b.repoN++
			repo := fmt.Sprintf("bench/index%d", b.repoN)
			d, _, err := th.PushIndex(b.reg.Addr+"/"+repo+":v1", n)
			if err != nil {
				return err
			}
			b.proxy.Take()
			flagName := "--recursive"
			if t.name != "ocisign" {
				flagName = "-r"
			}
			r, err := b.sign(t, b.key, b.proxy.Addr+"/"+repo+"@"+d, flagName)
			if err != nil {
				return err
			}
			recs := b.proxy.Take()
			b.printf("| %s | %d | %d | %s | %d | %d |\n", t.name, n, n+1, ms(r.Elapsed), len(recs), th.RoundTrips(recs))
			times = append(times, r.Elapsed)
		}
		if t.name == "ocisign" {
			growth := float64(times[2]) / float64(times[0])
			b.target(growth < 17.0/2, "recursive signing grows sub-linearly: 16 platforms (17 signatures) take %.1f× the time of 1 platform "+
				"(2 signatures), against 8.5× for linear growth (%s → %s → %s for 1, 4, 16)", growth, ms(times[0]), ms(times[1]), ms(times[2]))
		}
	}
	b.printf("\n")
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
		if done%(n/4) == 0 {
			rss, _ := th.RSSKiB(p.Pid())
			samples = append(samples, fmt.Sprintf("%d: %.1f MiB", done, float64(rss)/1024))
		}
	}
	peak, err := th.PeakRSSKiB(p.Pid())
	if err != nil {
		return err
	}
	b.printf("## Peak memory of the port\n\n")
	b.printf("`ocisign port`, %d signatures (%d images × %d annotations, 16 requests in flight): VmHWM %.1f MiB\n", n, images, n/images, float64(peak)/1024)
	b.printf("(%.1f MiB after start-up, %.1f MiB after the first signature). The peak is the one key decryption: scrypt with\n", float64(before)/1024, float64(afterFirst)/1024)
	b.printf("the parameters ocisign and cosign write (N=65536, r=8) needs 64 MiB, as in every cosign run; the port then returns\n")
	b.printf("that memory to the OS. Current RSS (VmRSS) after n signatures: %s.\n\n", strings.Join(samples, ", "))
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
	b.printf("the `.sig` manifest is read and each key's signature is looked for (ocisign verify --key, which checks what\n")
	b.printf("cosign verify checks). Lost = signatures missing at the end.\n\n")
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
