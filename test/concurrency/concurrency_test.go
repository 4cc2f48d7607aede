// Package concurrency checks that eight signers with eight keys signing the
// same digest at the same moment all keep their signature: as eight
// `ocisign sign` processes and as eight requests on one `ocisign port`.
// Every signature is then checked with real `cosign verify --key`.
// The cross-host case (eight processes that share no tag lock) measures
// what remains without the lock.
// Skipped unless OCISIGN_E2E=1 (then a missing tool is a failure).
// OCISIGN_CROSSHOST_TRIALS sets its trial count; OCISIGN_CONCURRENCY_BIN
// runs another ocisign build (to measure a baseline).
package concurrency

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocisign/ocisign/internal/memregistry"
	th "github.com/ocisign/ocisign/test/internal/harness"
)

const (
	password = "concurrency-password-not-secret"
	signers  = 8
	trials   = 5
)

var env struct {
	th.Package
	keys, pubs []string
	repoN      int
}

func TestMain(m *testing.M) {
	th.SetupPackage(m, &env.Package, th.PackageOptions{Name: "concurrency", Cosign: true, DockerConfigDir: true, Then: setUp})
}

// setUp picks the binary under test and makes one key per signer.
func setUp(p *th.Package) (stop func(), err error) {
	if bin := os.Getenv("OCISIGN_CONCURRENCY_BIN"); bin != "" {
		p.Ocisign = bin
	}
	for i := 0; i < signers; i++ {
		prefix := filepath.Join(p.Tmp, fmt.Sprintf("signer%d", i))
		r, err := th.Run(subEnv(), time.Minute, p.Ocisign, "generate-key-pair", "--output-key-prefix", prefix)
		if err != nil || r.Code != 0 {
			return nil, fmt.Errorf("generate-key-pair: %v\n%s", err, r)
		}
		env.keys, env.pubs = append(env.keys, prefix+".key"), append(env.pubs, prefix+".pub")
	}
	return nil, nil
}

func subEnv() []string {
	return th.IsolatedEnv(env.Home, env.TUF, "COSIGN_PASSWORD="+password)
}

func newImage(t *testing.T) (repo, ref string) {
	t.Helper()
	env.repoN++
	repo = fmt.Sprintf("concurrency/app%d", env.repoN)
	d, err := memregistry.PushImage(env.Reg.Addr + "/" + repo + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	return repo, env.Reg.Addr + "/" + repo + "@" + d
}

// assertAllSignatures checks the .sig manifest has one layer per signer and
// that cosign accepts each signer's key.
func assertAllSignatures(t *testing.T, repo, ref string, cosignVersion string) {
	t.Helper()
	digest := ref[strings.LastIndex(ref, "@")+1:]
	req, _ := http.NewRequest(http.MethodGet, "http://"+env.Reg.Addr+"/v2/"+repo+"/manifests/"+strings.Replace(digest, ":", "-", 1)+".sig", nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var m struct {
		Layers []json.RawMessage `json:"layers"`
	}
	if err := json.Unmarshal(body, &m); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf(".sig manifest: %s %v\n%s", resp.Status, err, body)
	}
	if len(m.Layers) != signers {
		t.Errorf(".sig manifest has %d layers, want %d", len(m.Layers), signers)
	}
	var wg sync.WaitGroup
	results := make([]th.Result, signers)
	errs := make([]error, signers)
	for i := 0; i < signers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := append(th.CosignVerifyArgs(env.pubs[i]), ref)
			results[i], errs[i] = th.Run(subEnv(), 3*time.Minute, env.Tools.Cosign[cosignVersion], args...)
		}()
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if results[i].Code != 0 {
			t.Errorf("signer %d's signature is missing: cosign %s verify --key rejects:\n%s", i, cosignVersion, results[i])
		}
	}
}

// cosignFor verifies with v2 in every trial and with v3 in the last.
func cosignFor(trial int) string {
	if trial == trials-1 {
		return "v3"
	}
	return "v2"
}

func TestEightProcessesSignOneDigest(t *testing.T) {
	for trial := 0; trial < trials; trial++ {
		repo, ref := newImage(t)
		start := make(chan struct{})
		var wg sync.WaitGroup
		results := make([]th.Result, signers)
		errs := make([]error, signers)
		for i := 0; i < signers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i], errs[i] = th.Run(subEnv(), 3*time.Minute, env.Ocisign, "sign", "--key", env.keys[i], ref)
			}()
		}
		close(start)
		wg.Wait()
		for i := range results {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if results[i].Code != 0 {
				t.Errorf("trial %d: signer %d failed:\n%s", trial, i, results[i])
			}
			if strings.Contains(results[i].Stderr, "locking is disabled") || strings.Contains(results[i].Stderr, "not locking") {
				t.Errorf("trial %d: signer %d ran without the host lock:\n%s", trial, i, results[i])
			}
		}
		assertAllSignatures(t, repo, ref, cosignFor(trial))
		if t.Failed() {
			t.Fatalf("trial %d lost signatures", trial)
		}
	}
}

func TestEightRequestsOnOnePortSignOneDigest(t *testing.T) {
	p, err := th.StartPort(env.Ocisign, subEnv())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Close(); err != nil {
			t.Errorf("port exit: %v\n%s", err, p.Stderr)
		}
	}()
	id := 0
	for trial := 0; trial < trials; trial++ {
		repo, ref := newImage(t)
		// All eight frames go out before any reply is read.
		for i := 0; i < signers; i++ {
			id++
			b, _ := json.Marshal(map[string]any{"id": id, "op": "sign", "reference": ref, "sign_key": env.keys[i]})
			if err := p.Send(b); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < signers; i++ {
			r, err := p.Next()
			if err != nil {
				t.Fatalf("port: %v\n%s", err, p.Stderr)
			}
			if !r.OK {
				t.Errorf("trial %d: a sign request failed: %s", trial, r.Raw)
			}
		}
		assertAllSignatures(t, repo, ref, cosignFor(trial))
		if t.Failed() {
			t.Fatalf("trial %d lost signatures; port log:\n%s", trial, p.Stderr)
		}
	}
}

// crossHostTrials is the default trial count of the cross-host case.
const crossHostTrials = 20

// hostEnv is a signer's environment on its own "host": its own TMPDIR and
// XDG_RUNTIME_DIR, so it shares no tag lock with the others.
func hostEnv(t *testing.T) []string {
	t.Helper()
	d, err := os.MkdirTemp(env.Tmp, "host-")
	if err != nil {
		t.Fatal(err)
	}
	return append(subEnv(), "XDG_RUNTIME_DIR="+d, "TMPDIR="+d)
}

// keyVerifies runs `ocisign verify --key PUB ref` (exit 0 iff valid).
func keyVerifies(t *testing.T, i int, ref string) bool {
	t.Helper()
	r, err := th.Run(subEnv(), time.Minute, env.Ocisign, "verify", "--key", env.pubs[i], ref)
	if err != nil {
		t.Fatal(err)
	}
	return r.Code == 0
}

// Without a shared lock, what remains is the append's own checks: the
// pre-push HEAD, the read-back and, after contention, the settle read-backs
// that also restore layers a stale writer dropped. Registries have no
// conditional PUT, so two manifest PUTs in flight at once can still lose
// one layer without either writer seeing it (docs/design.md, step 5): the
// loss rate is logged and bounded at a third (before these checks it was
// 47%, after them 7–14% over 20-trial runs and 7–9% over 60-trial runs),
// not asserted to be zero.
func TestEightProcessesOnEightHostsSignOneDigest(t *testing.T) {
	trials := crossHostTrials
	if v := os.Getenv("OCISIGN_CROSSHOST_TRIALS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("OCISIGN_CROSSHOST_TRIALS=%q: want a positive number", v)
		}
		trials = n
	}
	lost, okButLost, failed, merges := 0, 0, 0, 0
	for trial := 0; trial < trials; trial++ {
		_, ref := newImage(t)
		envs := make([][]string, signers)
		for i := range envs {
			envs[i] = hostEnv(t)
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		results := make([]th.Result, signers)
		errs := make([]error, signers)
		for i := 0; i < signers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i], errs[i] = th.Run(envs[i], 3*time.Minute, env.Ocisign, "sign", "--key", env.keys[i], ref)
			}()
		}
		close(start)
		wg.Wait()
		for i := range results {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			merges += strings.Count(results[i].Stderr, "merging again") + strings.Count(results[i].Stderr, "uploading again")
			present := keyVerifies(t, i, ref)
			switch {
			case results[i].Code != 0:
				failed++
				if !present {
					lost++
				}
				t.Logf("trial %d: signer %d failed (layer present: %v):\n%s", trial, i, present, results[i])
			case !present:
				lost++
				okButLost++
				t.Logf("trial %d: signer %d exited 0 but its signature is gone", trial, i)
			}
		}
	}
	t.Logf("cross-host: lost %d of %d signatures (%d reported success, %d signers failed, %d merges), %d trials",
		lost, trials*signers, okButLost, failed, merges, trials)
	if lost*3 > trials*signers {
		t.Errorf("cross-host: lost %d of %d signatures, more than a third: the pre-push check, read-back or settle regressed", lost, trials*signers)
	}
}
