// Package faults runs the ocisign binary against a real docker-registry
// behind a fault-injecting proxy: retried 5xx, honoured Retry-After, dropped
// connections, a registry that stops answering, and refused credentials.
// After every failed run the existing .sig manifest must be unchanged.
// Skipped unless OCISIGN_E2E=1 (then a missing tool is a failure).
package faults

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocisign/ocisign/internal/memregistry"
	th "github.com/ocisign/ocisign/test/internal/harness"
)

const password = "faults-password-not-secret"

var env struct {
	th.Package
	proxy *th.Proxy
	key   string
	repoN int
}

func TestMain(m *testing.M) {
	th.SetupPackage(m, &env.Package, th.PackageOptions{Name: "faults", Then: setUp})
}

// setUp puts the fault proxy in front of the registry and makes the key.
func setUp(p *th.Package) (stop func(), err error) {
	if env.proxy, err = th.StartProxy(p.Reg.Addr); err != nil {
		return nil, err
	}
	prefix := filepath.Join(p.Tmp, "cosign")
	r, err := th.Run(subEnv(), time.Minute, p.Ocisign, "generate-key-pair", "--output-key-prefix", prefix)
	if err != nil || r.Code != 0 {
		return env.proxy.Close, fmt.Errorf("generate-key-pair: %v\n%s", err, r)
	}
	env.key = prefix + ".key"
	return env.proxy.Close, nil
}

func subEnv() []string {
	return th.IsolatedEnv(env.Home, env.TUF, "COSIGN_PASSWORD="+password)
}

// signedImage pushes an image and signs it once without faults; it returns
// the repository path and the image digest.
func signedImage(t *testing.T, presign bool) (repo, digest string) {
	t.Helper()
	env.repoN++
	repo = fmt.Sprintf("faults/app%d", env.repoN)
	digest, err := memregistry.PushImage(env.Reg.Addr + "/" + repo + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	if presign {
		env.proxy.SetHook(nil)
		if out := sign(t, repo, digest, "5m"); out.code != 0 {
			t.Fatalf("set-up signature failed:\n%s", out.res)
		}
	}
	env.proxy.Take()
	return repo, digest
}

type signOut struct {
	code  int
	res   th.Result
	error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		Retryable bool   `json:"retryable"`
	}
}

func sign(t *testing.T, repo, digest, timeout string) signOut {
	t.Helper()
	r, err := th.Run(subEnv(), 3*time.Minute, env.Ocisign, "sign", "--key", env.key, "--output", "json",
		"--timeout", timeout, "-a", fmt.Sprintf("at=%d", time.Now().UnixNano()), env.proxy.Addr+"/"+repo+"@"+digest)
	if err != nil {
		t.Fatal(err)
	}
	out := signOut{code: r.Code, res: r}
	if r.Code != 0 {
		var doc struct {
			Error json.RawMessage `json:"error"`
		}
		if json.Unmarshal([]byte(r.Stdout), &doc) != nil || json.Unmarshal(doc.Error, &out.error) != nil {
			t.Fatalf("failed sign printed no JSON error:\n%s", r)
		}
		if out.error.Message == "" || !strings.Contains(r.Stderr, out.error.Message) {
			t.Fatalf("error message missing on stderr:\n%s", r)
		}
	}
	return out
}

// sigState is the .sig tag's digest ("" when absent) and the repository's tags.
type sigState struct {
	digest string
	layers int
	tags   []string
}

func state(t *testing.T, repo, digest string) sigState {
	t.Helper()
	base := "http://" + env.Reg.Addr + "/v2/" + repo
	req, _ := http.NewRequest(http.MethodGet, base+"/manifests/"+strings.Replace(digest, ":", "-", 1)+".sig", nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var s sigState
	if resp.StatusCode == http.StatusOK {
		s.digest = resp.Header.Get("Docker-Content-Digest")
		var m struct {
			Layers []json.RawMessage `json:"layers"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("the .sig manifest is not JSON: %v", err)
		}
		s.layers = len(m.Layers)
	} else if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET .sig: %s", resp.Status)
	}
	resp, err = http.Get(base + "/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	var tags struct {
		Tags []string `json:"tags"`
	}
	json.NewDecoder(resp.Body).Decode(&tags)
	resp.Body.Close()
	slices.Sort(tags.Tags)
	s.tags = tags.Tags
	return s
}

func assertUnchanged(t *testing.T, before, after sigState) {
	t.Helper()
	if before.digest != after.digest || before.layers != after.layers {
		t.Fatalf(".sig manifest changed after a failed run: %s (%d layers) → %s (%d layers)",
			before.digest, before.layers, after.digest, after.layers)
	}
	if !slices.Equal(before.tags, after.tags) {
		t.Fatalf("tags changed after a failed run: %v → %v", before.tags, after.tags)
	}
}

func isSigManifest(r *http.Request) bool {
	return strings.Contains(r.URL.Path, "/manifests/sha256-") && strings.HasSuffix(r.URL.Path, ".sig")
}

func isBlobPut(r *http.Request) bool {
	return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/")
}

func fail(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":"injected by the faults proxy"}]}`, code)
}

func records(recs []th.Record, method string, match func(string) bool) []th.Record {
	var out []th.Record
	for _, r := range recs {
		if r.Method == method && match(r.Path) {
			out = append(out, r)
		}
	}
	return out
}

func sigPath(p string) bool { return strings.HasSuffix(p, ".sig") }

func TestServerErrorsAreRetried(t *testing.T) {
	repo, digest := signedImage(t, true)
	before := state(t, repo, digest)
	env.proxy.SetHook(func(w http.ResponseWriter, r *http.Request, attempt int) bool {
		switch {
		case r.Method == http.MethodGet && isSigManifest(r) && attempt == 0:
			fail(w, http.StatusInternalServerError, "UNKNOWN")
		case r.Method == http.MethodPut && isSigManifest(r) && attempt == 0:
			fail(w, http.StatusInternalServerError, "UNKNOWN")
		case r.Method == http.MethodPut && isSigManifest(r) && attempt == 1:
			fail(w, http.StatusServiceUnavailable, "UNAVAILABLE")
		default:
			return false
		}
		return true
	})
	defer env.proxy.SetHook(nil)
	out := sign(t, repo, digest, "2m")
	recs := env.proxy.Take()
	if out.code != 0 {
		t.Fatalf("sign failed although every fault was followed by success:\n%s", out.res)
	}
	puts := records(recs, http.MethodPut, sigPath)
	var statuses []int
	for _, r := range puts {
		statuses = append(statuses, r.Status)
	}
	if !slices.Equal(statuses, []int{500, 503, 201}) {
		t.Fatalf("PUT .sig manifest attempts answered %v, want [500 503 201]", statuses)
	}
	if gets := records(recs, http.MethodGet, sigPath); len(gets) < 2 || gets[0].Status != 500 || gets[1].Status != 200 {
		t.Fatalf("GET .sig attempts: %+v, want 500 then 200", gets)
	}
	after := state(t, repo, digest)
	if after.layers != before.layers+1 {
		t.Fatalf(".sig has %d layers after the retried append, want %d", after.layers, before.layers+1)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	repo, digest := signedImage(t, true)
	env.proxy.SetHook(func(w http.ResponseWriter, r *http.Request, attempt int) bool {
		if r.Method == http.MethodPut && isSigManifest(r) && attempt == 0 {
			w.Header().Set("Retry-After", "2")
			fail(w, http.StatusTooManyRequests, "TOOMANYREQUESTS")
			return true
		}
		return false
	})
	defer env.proxy.SetHook(nil)
	out := sign(t, repo, digest, "2m")
	recs := env.proxy.Take()
	if out.code != 0 {
		t.Fatalf("sign failed after a 429:\n%s", out.res)
	}
	puts := records(recs, http.MethodPut, sigPath)
	if len(puts) != 2 || puts[0].Status != http.StatusTooManyRequests || puts[1].Status != http.StatusCreated {
		t.Fatalf("PUT .sig attempts: %+v, want 429 then 201", puts)
	}
	// Ordering of what the proxy recorded, no upper bound: the retry did not
	// start before the announced Retry-After had passed since the 429 was
	// requested (the client cannot have read the header earlier; the default
	// first backoff is under 250 ms).
	if gap := puts[1].Start.Sub(puts[0].Start); gap < 2*time.Second {
		t.Fatalf("retry started %s after the 429 with Retry-After: 2 was requested", gap)
	}
}

// dropMidBody reads part of the request body, then closes the connection
// without an answer.
func dropMidBody(w http.ResponseWriter, r *http.Request) {
	buf := make([]byte, 16)
	io.ReadFull(r.Body, buf)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

func TestConnectionDroppedMidUploadIsRetried(t *testing.T) {
	repo, digest := signedImage(t, true)
	env.proxy.SetHook(func(w http.ResponseWriter, r *http.Request, attempt int) bool {
		if isBlobPut(r) && attempt == 0 {
			dropMidBody(w, r)
			return true
		}
		return false
	})
	defer env.proxy.SetHook(nil)
	out := sign(t, repo, digest, "2m")
	recs := env.proxy.Take()
	if out.code != 0 {
		t.Fatalf("sign failed after one dropped upload:\n%s", out.res)
	}
	var dropped, stored int
	for _, r := range records(recs, http.MethodPut, func(p string) bool { return strings.Contains(p, "/blobs/uploads/") }) {
		switch r.Status {
		case 0:
			dropped++
		case http.StatusCreated:
			stored++
		}
	}
	if dropped == 0 || stored < 1 {
		t.Fatalf("want a dropped and then a stored blob upload, got %d dropped, %d stored", dropped, stored)
	}
}

func TestFailuresLeaveTheSignatureManifestIntact(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	cases := []struct {
		name      string
		presign   bool
		hook      th.Hook
		timeout   string
		code      string
		message   []string
		retryable bool
		// attempts: how many times the faulted request may be seen.
		attempts func([]th.Record) (int, int)
	}{
		{
			name: "upload dropped every time", presign: true, timeout: "2m",
			hook: func(w http.ResponseWriter, r *http.Request, _ int) bool {
				if isBlobPut(r) {
					dropMidBody(w, r)
					return true
				}
				return false
			},
			code: "registry_unavailable", retryable: true, message: []string{"upload blob", "after 4 tries"},
		},
		{
			name: "manifest push 503 every time", presign: true, timeout: "2m",
			hook: func(w http.ResponseWriter, r *http.Request, _ int) bool {
				if r.Method == http.MethodPut && isSigManifest(r) {
					fail(w, http.StatusServiceUnavailable, "UNAVAILABLE")
					return true
				}
				return false
			},
			code: "registry_unavailable", retryable: true, message: []string{"push signature manifest", "503 Service Unavailable", "after 4 tries"},
			attempts: func(recs []th.Record) (int, int) { return len(records(recs, http.MethodPut, sigPath)), 4 },
		},
		{
			name: "registry stops answering", presign: true, timeout: "3s",
			hook: func(w http.ResponseWriter, r *http.Request, _ int) bool {
				if isSigManifest(r) || strings.Contains(r.URL.Path, "/blobs/uploads/") {
					select {
					case <-r.Context().Done():
					case <-hang:
					}
					return true
				}
				return false
			},
			code: "timeout", retryable: true, message: []string{"timed out", "(timeout 3s)"},
		},
		{
			// Waiting as told would outlive --timeout: one attempt, then the 429.
			name: "Retry-After beyond the timeout", presign: true, timeout: "20s",
			hook: func(w http.ResponseWriter, r *http.Request, _ int) bool {
				if r.Method == http.MethodPut && isSigManifest(r) {
					w.Header().Set("Retry-After", "3600")
					fail(w, http.StatusTooManyRequests, "TOOMANYREQUESTS")
					return true
				}
				return false
			},
			code: "registry_unavailable", retryable: true, message: []string{"push signature manifest", "429"},
			attempts: func(recs []th.Record) (int, int) { return len(records(recs, http.MethodPut, sigPath)), 1 },
		},
		{
			name: "401 on the manifest push", presign: true, timeout: "2m",
			hook: func(w http.ResponseWriter, r *http.Request, _ int) bool {
				if r.Method == http.MethodPut && isSigManifest(r) {
					fail(w, http.StatusUnauthorized, "UNAUTHORIZED")
					return true
				}
				return false
			},
			code: "unauthorized", message: []string{"push signature manifest", "401 Unauthorized", "UNAUTHORIZED"},
			attempts: func(recs []th.Record) (int, int) { return len(records(recs, http.MethodPut, sigPath)), 1 },
		},
		{
			name: "403 on the manifest push", presign: true, timeout: "2m",
			hook: func(w http.ResponseWriter, r *http.Request, _ int) bool {
				if r.Method == http.MethodPut && isSigManifest(r) {
					fail(w, http.StatusForbidden, "DENIED")
					return true
				}
				return false
			},
			code: "denied", message: []string{"push signature manifest", "403 Forbidden", "DENIED"},
			attempts: func(recs []th.Record) (int, int) { return len(records(recs, http.MethodPut, sigPath)), 1 },
		},
		{
			name: "403 on the first signature's blob upload", presign: false, timeout: "2m",
			hook: func(w http.ResponseWriter, r *http.Request, _ int) bool {
				if isBlobPut(r) {
					fail(w, http.StatusForbidden, "DENIED")
					return true
				}
				return false
			},
			code: "denied", message: []string{"upload blob", "403 Forbidden"},
			attempts: func(recs []th.Record) (int, int) {
				return len(records(recs, http.MethodPut, func(p string) bool { return strings.Contains(p, "/blobs/uploads/") })), 2
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo, digest := signedImage(t, tc.presign)
			before := state(t, repo, digest)
			if tc.presign && before.layers != 1 {
				t.Fatalf("set-up: .sig has %d layers", before.layers)
			}
			env.proxy.SetHook(tc.hook)
			out := sign(t, repo, digest, tc.timeout)
			env.proxy.SetHook(nil)
			recs := env.proxy.Take()
			if out.code != 1 {
				t.Fatalf("want exit 1, got:\n%s", out.res)
			}
			if out.error.Code != tc.code || out.error.Retryable != tc.retryable {
				t.Fatalf("error code %q retryable %v, want %q %v:\n%s", out.error.Code, out.error.Retryable, tc.code, tc.retryable, out.res)
			}
			for _, m := range tc.message {
				if !strings.Contains(out.error.Message, m) {
					t.Errorf("message %q lacks %q", out.error.Message, m)
				}
			}
			if tc.attempts != nil {
				if got, want := tc.attempts(recs); got != want {
					t.Errorf("the faulted request was sent %d times, want %d", got, want)
				}
			}
			assertUnchanged(t, before, state(t, repo, digest))
			// The repository still works: a signature without faults appends.
			if ok := sign(t, repo, digest, "2m"); ok.code != 0 {
				t.Fatalf("sign after the fault failed:\n%s", ok.res)
			}
			if got := state(t, repo, digest).layers; got != before.layers+1 {
				t.Fatalf("after recovery the .sig has %d layers, want %d", got, before.layers+1)
			}
		})
	}
}
