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
