package rekor

// CLI-level tests: the built `ocisign` binary against the real local Rekor
// and a real registry process (Debian docker-registry), checked by real
// cosign. They run before rekor_test.go's last test, which stops the log.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocisign/ocisign/internal/memregistry"
	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/test/internal/harness"
)

const cliPassword = "rekor-cli-Pa55-must-not-leak"

var cliBuild struct {
	once sync.Once
	bin  string
	err  error
}

// ocisignBinary builds ./cmd/ocisign once per run (into the log's directory,
// which Stop removes).
func ocisignBinary(t *testing.T, l *Log) string {
	t.Helper()
	cliBuild.once.Do(func() {
		root, err := harness.RepoRoot(".")
		if err != nil {
			cliBuild.err = err
			return
		}
		cliBuild.bin = filepath.Join(l.Dir, "bin", "ocisign")
		cliBuild.err = harness.BuildOcisign(root, cliBuild.bin)
	})
	if cliBuild.err != nil {
		t.Fatal(cliBuild.err)
	}
	return cliBuild.bin
}

// cliRun is the state of one CLI test: a registry process, an isolated
// environment (no internet: a dead proxy for everything but loopback) and
// the binaries.
type cliRun struct {
	t        *testing.T
	log      *Log
	ocisign  string
	cosign   map[string]string
	registry string
	env      []string
	dir      string
}

func newCLIRun(t *testing.T) *cliRun {
	t.Helper()
	l := needRekor(t)
	regBin, err := harness.ToolPath("OCISIGN_REGISTRY_BIN", "/usr/bin/docker-registry")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	reg, err := harness.StartRegistry(regBin, filepath.Join(dir, "registry"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(filepath.Join(home, ".docker"), 0o700); err != nil {
		t.Fatal(err)
	}
	return &cliRun{t: t, log: l, ocisign: ocisignBinary(t, l), registry: reg.Addr, dir: dir,
		cosign: map[string]string{
			"v2": cosignBinary(t, "OCISIGN_COSIGN_V2", "cosign-v2.6.5"),
			"v3": cosignBinary(t, "OCISIGN_COSIGN_V3", "cosign-v3.1.3"),
		},
		env: harness.IsolatedEnv(home, filepath.Join(dir, "tuf"), "COSIGN_PASSWORD="+cliPassword)}
}

// run executes bin with the run's environment plus extra variables.
func (r *cliRun) run(extraEnv []string, bin string, args ...string) harness.Result {
	r.t.Helper()
	res, err := harness.Run(append(append([]string(nil), r.env...), extraEnv...), 3*time.Minute, bin, args...)
	if err != nil {
		r.t.Fatal(err)
	}
	if strings.Contains(res.Stdout+res.Stderr, cliPassword) {
		r.t.Fatalf("the key password leaked into the output of %s", res.Cmd)
	}
	return res
}

// keyPair makes a cosign key pair with `ocisign generate-key-pair`.
func (r *cliRun) keyPair(name string) (key, pub string) {
	r.t.Helper()
	prefix := filepath.Join(r.dir, name)
	if res := r.run(nil, r.ocisign, "generate-key-pair", "--output-key-prefix", prefix); res.Code != 0 {
		r.t.Fatalf("generate-key-pair:\n%s", res)
	}
	return prefix + ".key", prefix + ".pub"
}

type cliSignOutput struct {
	Signed []struct {
		Digest       string `json:"digest"`
		Deduplicated bool   `json:"deduplicated"`
		LogIndex     *int64 `json:"log_index"`
		LogUUID      string `json:"log_uuid"`
	} `json:"signed"`
	Error *struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		Retryable bool   `json:"retryable"`
	} `json:"error"`
}

// sign runs `ocisign sign -o json` with the local log and its pinned key.
func (r *cliRun) sign(key, image string, extra ...string) (cliSignOutput, harness.Result) {
	r.t.Helper()
	args := append([]string{"sign", "--key", key, "--rekor-url", r.log.URL, "--rekor-public-key", r.log.PublicKeyFile, "-o", "json"}, extra...)
	res := r.run(nil, r.ocisign, append(args, image)...)
	var out cliSignOutput
	if err := json.Unmarshal([]byte(res.Stdout), &out); err != nil {
		r.t.Fatalf("sign output is not JSON: %v\n%s", err, res)
	}
	return out, res
}

// cosignVerify runs cosign v2 with the log's URL and v3 offline, both with
// the log's key and without --insecure-ignore-tlog.
func (r *cliRun) cosignVerify(pub, image string) {
	r.t.Helper()
	keyEnv := []string{"SIGSTORE_REKOR_PUBLIC_KEY=" + r.log.PublicKeyFile}
	for _, c := range []struct {
		version string
		args    []string
	}{
		{"v2", []string{"verify", "--key", pub, "--rekor-url", r.log.URL, "--allow-insecure-registry", image}},
		{"v3", []string{"verify", "--key", pub, "--offline", "--allow-insecure-registry", image}},
	} {
		res := r.run(keyEnv, r.cosign[c.version], c.args...)
		if res.Code != 0 || !strings.Contains(res.Stderr+res.Stdout, "Existence of the claims in the transparency log was verified offline") {
			r.t.Errorf("cosign %s did not accept the log-backed signature of %s:\n%s", c.version, image, res)
		}
	}
}

// treeSize is the log's size (GET /api/v1/log): it grows by one per entry.
func treeSize(t *testing.T, l *Log) int64 {
	t.Helper()
	resp, err := http.Get(l.URL + "/api/v1/log")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info struct {
		TreeSize *int64 `json:"treeSize"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || info.TreeSize == nil {
		t.Fatalf("GET /api/v1/log: %s %v", resp.Status, err)
	}
	return *info.TreeSize
}

// waitTreeSize polls until the log's size reaches want (the signer
// publishes new roots every 200ms); a hang guard, not a timing assertion.
func waitTreeSize(t *testing.T, l *Log, want int64) int64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := treeSize(t, l)
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func sigManifest(t *testing.T, registryAddr, repo, digest string) ([]byte, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+registryAddr+"/v2/"+repo+"/manifests/"+registry.SignatureTag(digest), nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b, resp.StatusCode
}

// ocisign sign --rekor-url with the real log; cosign v2 (online flags) and v3
// (--offline) verify a single image and every digest of a recursively
// signed index; a re-sign uploads nothing.
func TestCLISignWithRekorVerifiedByCosign(t *testing.T) {
	r := newCLIRun(t)
	key, pub := r.keyPair("cosign")
	digest, err := memregistry.PushImage(r.registry + "/cli/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	image := r.registry + "/cli/app@" + digest

	before := treeSize(t, r.log)
	out, res := r.sign(key, image)
	if res.Code != 0 || len(out.Signed) != 1 || out.Signed[0].LogIndex == nil || len(out.Signed[0].LogUUID) != 64 {
		t.Fatalf("ocisign sign --rekor-url:\n%s", res)
	}
	first := out.Signed[0]
	if n := waitTreeSize(t, r.log, before+1); n != before+1 {
		t.Fatalf("log size %d → %d, want one new entry", before, n)
	}
	r.cosignVerify(pub, image)

	// Re-sign: deduplicated, the same entry reported, nothing uploaded.
	out, res = r.sign(key, image)
	if res.Code != 0 || !out.Signed[0].Deduplicated || out.Signed[0].LogUUID != first.LogUUID {
		t.Fatalf("re-sign not deduplicated onto the existing entry:\n%s", res)
	}
	// Rekor answers an upload only once the entry is in a signed tree head,
	// so an upload by the re-sign would already show here.
	if n := treeSize(t, r.log); n != before+1 {
		t.Fatalf("a deduplicated re-sign changed the log size %d → %d", before+1, n)
	}

	// ocisign's own verify, text and --require-tlog.
	v := r.run(nil, r.ocisign, "verify", "--key", pub, "--require-tlog", "--rekor-public-key", r.log.PublicKeyFile, image)
	if v.Code != 0 || !strings.Contains(v.Stdout, fmt.Sprintf("transparency log index %d, entry %s", *first.LogIndex, first.LogUUID)) {
		t.Fatalf("ocisign verify --require-tlog:\n%s", v)
	}

	// A recursively signed index: one entry per digest, each verified.
	idx, children, err := memregistry.PushIndex(r.registry+"/cli/multi:v1", memregistry.Platforms(2))
	if err != nil {
		t.Fatal(err)
	}
	before = treeSize(t, r.log)
	out, res = r.sign(key, r.registry+"/cli/multi:v1", "--recursive")
	if res.Code != 0 || len(out.Signed) != 3 {
		t.Fatalf("recursive sign:\n%s", res)
	}
	if n := waitTreeSize(t, r.log, before+3); n != before+3 {
		t.Fatalf("log size %d → %d, want 3 new entries", before, n)
	}
	for _, d := range append([]string{idx}, children...) {
		r.cosignVerify(pub, r.registry+"/cli/multi@"+d)
	}
}

// cosign v2 signs with the local log, ocisign signs the same image with
// another key: both signatures verify with cosign and ocisign, and ocisign
// with cosign's key deduplicates onto cosign's log entry.
func TestCLICosignAndOcisignLogBackedSignaturesBothVerify(t *testing.T) {
	r := newCLIRun(t)
	cosignKey, cosignPub := r.keyPair("by-cosign")
	ocisignKey, ocisignPub := r.keyPair("by-ocisign")
	digest, err := memregistry.PushImage(r.registry + "/cli/mixed:v1")
	if err != nil {
		t.Fatal(err)
	}
	image := r.registry + "/cli/mixed@" + digest

	// The one place cosign uploads: to the loopback log, never the internet.
	keyEnv := []string{"SIGSTORE_REKOR_PUBLIC_KEY=" + r.log.PublicKeyFile}
	res := r.run(keyEnv, r.cosign["v2"], "sign", "--key", cosignKey, "--rekor-url", r.log.URL, "--allow-insecure-registry", "-y", image)
	if res.Code != 0 {
		t.Fatalf("cosign sign with the local log:\n%s", res)
	}
	out, res := r.sign(ocisignKey, image)
	if res.Code != 0 || out.Signed[0].LogIndex == nil {
		t.Fatalf("ocisign sign:\n%s", res)
	}
	sig, _ := sigManifest(t, r.registry, "cli/mixed", digest)
	if n := strings.Count(string(sig), registry.BundleAnnotation); n != 2 {
		t.Fatalf(".sig has %d bundles, want cosign's and ocisign's:\n%s", n, sig)
	}
	for _, pub := range []string{cosignPub, ocisignPub} {
		r.cosignVerify(pub, image)
		v := r.run(nil, r.ocisign, "verify", "--key", pub, "--require-tlog", "--rekor-public-key", r.log.PublicKeyFile, image)
		if v.Code != 0 || !strings.Contains(v.Stdout, "1 of 2 signatures valid") {
			t.Errorf("ocisign verify --require-tlog %s:\n%s", filepath.Base(pub), v)
		}
	}

	// ocisign with cosign's key: the same payload bytes, and cosign's bundle
	// verifies, so nothing new is signed or uploaded.
	before := treeSize(t, r.log)
	out, res = r.sign(cosignKey, image)
	if res.Code != 0 || !out.Signed[0].Deduplicated || out.Signed[0].LogIndex == nil {
		t.Fatalf("ocisign did not deduplicate onto cosign's log-backed signature:\n%s", res)
	}
	if n := treeSize(t, r.log); n != before {
		t.Fatalf("log size %d → %d after a deduplicated sign", before, n)
	}
}

// --require-tlog refuses a signature without a bundle and one carrying a
// bundle copied from another payload; cosign refuses the latter too.
func TestCLIRequireTlogRejects(t *testing.T) {
	r := newCLIRun(t)
	key, pub := r.keyPair("cosign")
	plainDigest, err := memregistry.PushImage(r.registry + "/cli/plain:v1")
	if err != nil {
		t.Fatal(err)
	}
	loggedDigest, err := memregistry.PushImage(r.registry + "/cli/plain:v2")
	if err != nil {
		t.Fatal(err)
	}
	plain := r.registry + "/cli/plain@" + plainDigest
	requireTlog := func(image string) harness.Result {
		return r.run(nil, r.ocisign, "verify", "--key", pub, "--require-tlog", "--rekor-public-key", r.log.PublicKeyFile, image)
	}

	if res := r.run(nil, r.ocisign, "sign", "--key", key, plain); res.Code != 0 {
		t.Fatalf("plain sign:\n%s", res)
	}
	if res := requireTlog(plain); res.Code != 1 || !strings.Contains(res.Stdout, "no transparency log bundle") {
		t.Fatalf("--require-tlog accepted a signature without a bundle:\n%s", res)
	}
	if res := r.run(nil, r.ocisign, "verify", "--key", pub, "--require-tlog", plain); res.Code != 2 ||
		!strings.Contains(res.Stderr, "--require-tlog needs the log's public key") {
		t.Fatalf("--require-tlog without a log key:\n%s", res)
	}

	if out, res := r.sign(key, r.registry+"/cli/plain@"+loggedDigest); res.Code != 0 || out.Signed[0].LogIndex == nil {
		t.Fatalf("log-backed sign:\n%s", res)
	}
	// Copy v2's bundle onto v1's plain layer.
	loggedSig, _ := sigManifest(t, r.registry, "cli/plain", loggedDigest)
	plainSig, _ := sigManifest(t, r.registry, "cli/plain", plainDigest)
	var logged, forged map[string]any
	if err := json.Unmarshal(loggedSig, &logged); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(plainSig, &forged); err != nil {
		t.Fatal(err)
	}
	bundle := logged["layers"].([]any)[0].(map[string]any)["annotations"].(map[string]any)[registry.BundleAnnotation]
	forged["layers"].([]any)[0].(map[string]any)["annotations"].(map[string]any)[registry.BundleAnnotation] = bundle
	body, _ := json.Marshal(forged)
	req, _ := http.NewRequest(http.MethodPut, "http://"+r.registry+"/v2/cli/plain/manifests/"+registry.SignatureTag(plainDigest), bytes.NewReader(body))
	req.Header.Set("Content-Type", forged["mediaType"].(string))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("putting the forged .sig: %v %v", err, resp)
	}
	resp.Body.Close()

	res := requireTlog(plain)
	if res.Code != 1 || !strings.Contains(res.Stdout, "transparency log bundle: log entry is for a different signature") {
		t.Fatalf("--require-tlog accepted a bundle of another payload:\n%s", res)
	}
	// Without --require-tlog the bundle is ignored (with a warning) and the
	// signature itself is valid.
	res = r.run(nil, r.ocisign, "verify", "--key", pub, "--rekor-public-key", r.log.PublicKeyFile, plain)
	if res.Code != 0 || !strings.Contains(res.Stderr, "ignoring transparency log bundle") {
		t.Fatalf("verify without --require-tlog:\n%s", res)
	}
	res = r.run([]string{"SIGSTORE_REKOR_PUBLIC_KEY=" + r.log.PublicKeyFile}, r.cosign["v3"],
		"verify", "--key", pub, "--offline", "--allow-insecure-registry", plain)
	if res.Code == 0 {
		t.Errorf("cosign v3 accepted the forged bundle:\n%s", res)
	}
}

// The log failing under the CLI: a 500 and a log that is not running each
// give exit 1, a tlog_error saying why, and leave the .sig unchanged.
func TestCLILogFailureLeavesSignatureUntouched(t *testing.T) {
	r := newCLIRun(t)
	key, _ := r.keyPair("cosign")
	digest, err := memregistry.PushImage(r.registry + "/cli/fail:v1")
	if err != nil {
		t.Fatal(err)
	}
	image := r.registry + "/cli/fail@" + digest
	if out, res := r.sign(key, image); res.Code != 0 || out.Signed[0].LogIndex == nil {
		t.Fatalf("first sign:\n%s", res)
	}
	before, _ := sigManifest(t, r.registry, "cli/fail", digest)

	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"code":500,"message":"error communicating with backend"}`, http.StatusInternalServerError)
	}))
	defer failing.Close()
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	stopped := fmt.Sprintf("http://127.0.0.1:%d", port) // nothing listens there
	for _, c := range []struct{ name, url, want string }{
		{"log answers 500", failing.URL, "HTTP 500 Internal Server Error: error communicating with backend"},
		{"log not running", stopped, "the log is unreachable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := r.run(nil, r.ocisign, "sign", "--key", key, "-a", "attempt="+c.name, "--rekor-url", c.url,
				"--rekor-public-key", r.log.PublicKeyFile, "-o", "json", image)
			var out cliSignOutput
			_ = json.Unmarshal([]byte(res.Stdout), &out)
			if res.Code != 1 || out.Error == nil || out.Error.Code != "tlog_error" || !out.Error.Retryable ||
				!strings.Contains(res.Stderr, c.want) || !strings.Contains(res.Stderr, c.url) {
				t.Errorf("want exit 1 and a retryable tlog_error naming %s and %q:\n%s", c.url, c.want, res)
			}
			if after, _ := sigManifest(t, r.registry, "cli/fail", digest); !bytes.Equal(before, after) {
				t.Errorf("the .sig manifest changed")
			}
		})
	}
}
