package rekor

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocisign/ocisign/internal/errcode"
	"github.com/ocisign/ocisign/internal/memregistry/memtest"
	"github.com/ocisign/ocisign/internal/testgate"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/signing"
	"github.com/ocisign/ocisign/tlog"
)

// These tests run only with OCISIGN_E2E=1 (internal/testgate); then a
// missing tool is a failure. Environment:
//
//	OCISIGN_E2E=1
//	OCISIGN_TOOLS_DIR    binaries (default ~/.cache/ocisign-tools; test/rekor/install.sh fills it)
//	OCISIGN_COSIGN_V2    cosign v2.6.5 (default $OCISIGN_TOOLS_DIR/cosign-v2.6.5)
//	OCISIGN_COSIGN_V3    cosign v3.1.3 (default $OCISIGN_TOOLS_DIR/cosign-v3.1.3)
//	OCISIGN_REKOR_KEEP=1 keep the log's directory (database, process logs)

var shared *Log

func TestMain(m *testing.M) {
	if !testgate.On() {
		os.Exit(m.Run()) // every test skips
	}
	opts := Options{Logf: log.Printf}
	if os.Getenv("OCISIGN_REKOR_KEEP") != "" {
		dir, err := os.MkdirTemp("", "ocisign-rekor-keep-")
		if err != nil {
			log.Fatal(err)
		}
		opts.Dir = dir
	}
	l, err := Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting the local Rekor: %v\n", err)
		os.Exit(1)
	}
	shared = l
	code := m.Run()
	if err := l.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: stopping the local Rekor: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

func needRekor(t *testing.T) *Log {
	t.Helper()
	testgate.Skip(t, "real-Rekor test (after test/rekor/install.sh)")
	if shared == nil || shared.stopped {
		t.Fatal("the local Rekor is not running")
	}
	return shared
}

func cosignBinary(t *testing.T, env, name string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		p = filepath.Join(DefaultToolsDir(), name)
	}
	if !isExecutable(p) {
		t.Fatalf("%s not found at %s (set %s or run test/tools/build.sh)", name, p, env)
	}
	return p
}

type signedPayload struct {
	signer    *signing.Signer
	payload   []byte
	signature []byte
	pub       []byte
}

func newSignedPayload(t *testing.T, repo string) signedPayload {
	t.Helper()
	s, err := signing.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	payload, err := signing.Payload(repo, "sha256:"+randomHex(32), map[string]string{"test": t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := s.Verifier().PublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return signedPayload{s, payload, sig, pub}
}

func pinnedClient(t *testing.T, l *Log) *tlog.Client {
	t.Helper()
	c, err := tlog.New(l.URL, tlog.Options{PublicKeyFile: l.PublicKeyFile})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A real signature goes into the real log; the annotation built from the
// reply passes the offline check, and the UUID is one Rekor knows.
func TestRealRekorUploadAndOfflineCheck(t *testing.T) {
	l := needRekor(t)
	s := newSignedPayload(t, "registry.example/app")
	entry, err := pinnedClient(t, l).Upload(context.Background(), s.payload, s.signature, s.pub)
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	t.Logf("entry: index %d uuid %s\nannotation: %s", entry.LogIndex, entry.UUID, entry.BundleAnnotation)

	keys, err := signing.LoadRekorPublicKeys(l.PublicKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	got, err := signing.VerifyRekorBundle(entry.BundleAnnotation, s.payload, s.signature, s.signer.Verifier(), keys)
	if err != nil {
		t.Fatalf("offline check of the real annotation: %v", err)
	}
	if got.UUID != entry.UUID || got.LogIndex != entry.LogIndex {
		t.Errorf("offline check gives %+v, upload gave %+v", got, entry)
	}
	logID, _ := signing.RekorLogID(l.PublicKey)
	if got.LogID != logID {
		t.Errorf("logID %s, want %s", got.LogID, logID)
	}

	// Rekor serves the entry under the UUID we computed from its body.
	resp, err := http.Get(l.URL + "/api/v1/log/entries/" + entry.UUID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET entry by our UUID: %s", resp.Status)
	}

	// The same annotation for another payload or another key is refused.
	other := newSignedPayload(t, "registry.example/app")
	if _, err := signing.VerifyRekorBundle(entry.BundleAnnotation, other.payload, s.signature, s.signer.Verifier(), keys); err == nil {
		t.Error("annotation accepted for another payload")
	}
	if _, err := signing.VerifyRekorBundle(entry.BundleAnnotation, s.payload, s.signature, other.signer.Verifier(), keys); err == nil {
		t.Error("annotation accepted for another key")
	}
}

// With no key configured the client fetches the log's key once and uses it.
func TestRealRekorFetchedKey(t *testing.T) {
	l := needRekor(t)
	t.Setenv(tlog.EnvPublicKey, "")
	c, err := tlog.New(l.URL, tlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := newSignedPayload(t, "registry.example/fetched")
	if _, err := c.Upload(context.Background(), s.payload, s.signature, s.pub); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	keys, err := c.PublicKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := signing.RekorLogID(l.PublicKey)
	if ids := keys.LogIDs(); len(ids) != 1 || ids[0] != want {
		t.Errorf("fetched log IDs %v, want [%s]", ids, want)
	}
}

// Uploading the same entry twice: Rekor answers 409 and the client reuses
// the existing entry.
func TestRealRekorDuplicateReusesEntry(t *testing.T) {
	l := needRekor(t)
	s := newSignedPayload(t, "registry.example/dup")
	c := pinnedClient(t, l)
	first, err := c.Upload(context.Background(), s.payload, s.signature, s.pub)
	if err != nil {
		t.Fatal(err)
	}
	var conflicts int
	counting := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err == nil && resp.StatusCode == http.StatusConflict {
			conflicts++
		}
		return resp, err
	})}
	c2, err := tlog.New(l.URL, tlog.Options{PublicKeyFile: l.PublicKeyFile, HTTPClient: counting})
	if err != nil {
		t.Fatal(err)
	}
	second, err := c2.Upload(context.Background(), s.payload, s.signature, s.pub)
	if err != nil {
		t.Fatalf("second Upload: %v", err)
	}
	if conflicts != 1 {
		t.Errorf("Rekor answered 409 %d times, want 1", conflicts)
	}
	if second.UUID != first.UUID || second.LogIndex != first.LogIndex {
		t.Errorf("second upload %+v, first %+v", second, first)
	}
	keys, _ := signing.LoadRekorPublicKeys(l.PublicKeyFile)
	if _, err := signing.VerifyRekorBundle(second.BundleAnnotation, s.payload, s.signature, s.signer.Verifier(), keys); err != nil {
		t.Errorf("reused entry's annotation: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The compatibility proof: ocisign signs with the log (registry.Client.Sign
// with tlog.Client), and real cosign v2 (online flags, no
// --insecure-ignore-tlog) and v3 (--offline) accept the signature, checking
// the bundle against the log's key. A wrong log key makes cosign refuse,
// which shows the bundle is what was checked.
func TestRealRekorCosignVerifiesOcisignBundle(t *testing.T) {
	l := needRekor(t)
	cosign2 := cosignBinary(t, "OCISIGN_COSIGN_V2", "cosign-v2.6.5")
	cosign3 := cosignBinary(t, "OCISIGN_COSIGN_V3", "cosign-v3.1.3")

	host := memtest.Start(t, nil)
	image := host + "/ocisign/app@" + memtest.PushImage(t, host+"/ocisign/app:v1")

	dir := t.TempDir()
	signer, err := signing.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := signer.Verifier().PublicKeyPEM()
	pubPath := filepath.Join(dir, "cosign.pub")
	if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
		t.Fatal(err)
	}

	rc := registry.New(registry.Options{})
	res, err := rc.Sign(context.Background(), registry.SignRequest{Reference: image, Signer: signer, Tlog: pinnedClient(t, l)})
	if err != nil {
		t.Fatalf("Sign with the log: %v", err)
	}
	if len(res.Signed) != 1 || res.Signed[0].LogIndex == nil || res.Signed[0].LogUUID == "" {
		t.Fatalf("sign result has no log entry: %+v", res)
	}
	t.Logf("signed %s: log index %d uuid %s", image, *res.Signed[0].LogIndex, res.Signed[0].LogUUID)

	wrongKey := filepath.Join(dir, "other-rekor.pub")
	if err := os.WriteFile(wrongKey, otherECPublicKeyPEM(t), 0o644); err != nil {
		t.Fatal(err)
	}

	runs := []struct {
		name      string
		bin       string
		args      []string
		rekorKey  string
		wantOK    bool
		wantInOut string
	}{
		{"cosign v2 online flags", cosign2,
			[]string{"verify", "--key", pubPath, "--rekor-url", l.URL, "--allow-insecure-registry", image},
			l.PublicKeyFile, true, "Existence of the claims in the transparency log was verified offline"},
		{"cosign v3 offline", cosign3,
			[]string{"verify", "--key", pubPath, "--offline", "--allow-insecure-registry", image},
			l.PublicKeyFile, true, "Existence of the claims in the transparency log was verified offline"},
		{"cosign v2 with another log's key", cosign2,
			[]string{"verify", "--key", pubPath, "--rekor-url", l.URL, "--allow-insecure-registry", image},
			wrongKey, false, "rekor log public key not found"},
		{"cosign v3 offline with another log's key", cosign3,
			[]string{"verify", "--key", pubPath, "--offline", "--allow-insecure-registry", image},
			wrongKey, false, "rekor log public key not found"},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			out, err := runCosign(t, r.bin, r.rekorKey, r.args...)
			if r.wantOK && err != nil {
				t.Fatalf("%s %s: %v\n%s", filepath.Base(r.bin), strings.Join(r.args, " "), err, out)
			}
			if !r.wantOK && err == nil {
				t.Fatalf("%s accepted with the wrong log key:\n%s", filepath.Base(r.bin), out)
			}
			if !strings.Contains(out, r.wantInOut) {
				t.Errorf("output lacks %q:\n%s", r.wantInOut, out)
			}
			t.Logf("%s %s:\n%s", filepath.Base(r.bin), strings.Join(r.args, " "), out)
		})
	}

	// ocisign's own verify path with the bundle required.
	keys, _ := signing.LoadRekorPublicKeys(l.PublicKeyFile)
	vr, err := rc.Verify(context.Background(), registry.VerifyRequest{Reference: image, Verifier: signer.Verifier(),
		BundleCheck: tlog.BundleCheck(signer.Verifier(), keys), RequireTlog: true})
	if err != nil {
		t.Fatalf("Verify --require-tlog: %v (%+v)", err, vr)
	}
	if vr.Valid != 1 || vr.Signatures[0].LogUUID != res.Signed[0].LogUUID {
		t.Errorf("verify result %+v", vr)
	}
}

func runCosign(t *testing.T, bin, rekorKey string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(),
		"SIGSTORE_REKOR_PUBLIC_KEY="+rekorKey,
		"HOME="+home, "TUF_ROOT="+filepath.Join(home, "tuf"),
		"SIGSTORE_NO_CACHE=true",
		// Nothing but loopback: a dead proxy for everything else.
		"HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=127.0.0.1,localhost")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func otherECPublicKeyPEM(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// The client sits behind a proxy that breaks the real log's replies; every
// failure is a specific tlog_error and the existing .sig manifest stays as
// it was.
func TestRealRekorBadRepliesLeaveRegistryUntouched(t *testing.T) {
	l := needRekor(t)
	host := memtest.Start(t, nil)
	ref, _ := name.ParseReference(host + "/ocisign/tamper:v1")
	d := memtest.PushImage(t, ref.String())
	image := ref.Context().Name() + "@" + d
	sigTag := ref.Context().Tag("sha256-" + strings.TrimPrefix(d, "sha256:") + ".sig")
	rc := registry.New(registry.Options{})

	first, _ := signing.GenerateSigner()
	if _, err := rc.Sign(context.Background(), registry.SignRequest{Reference: image, Signer: first, Tlog: pinnedClient(t, l)}); err != nil {
		t.Fatal(err)
	}
	before, err := remote.Head(sigTag)
	if err != nil {
		t.Fatal(err)
	}

	// A genuine reply for some other signature, to replay.
	other := newSignedPayload(t, "registry.example/other")
	var otherReply []byte
	upstream, _ := url.Parse(l.URL)
	modes := []struct {
		name      string
		modify    func(status int, body []byte) (int, []byte)
		retryable bool
		want      string
	}{
		{"log answers 500", func(int, []byte) (int, []byte) {
			return 500, []byte(`{"code":500,"message":"error communicating with backend"}`)
		}, true, "HTTP 500 Internal Server Error: error communicating with backend"},
		{"tampered SET", func(status int, body []byte) (int, []byte) {
			var m map[string]map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Errorf("real reply is not JSON: %v", err)
			}
			for _, e := range m {
				v := e["verification"].(map[string]any)
				set, _ := base64.StdEncoding.DecodeString(v["signedEntryTimestamp"].(string))
				set[len(set)-1] ^= 1
				v["signedEntryTimestamp"] = base64.StdEncoding.EncodeToString(set)
			}
			out, _ := json.Marshal(m)
			return status, out
		}, false, "signed entry timestamp does not verify"},
		{"reply for a different entry", func(status int, body []byte) (int, []byte) {
			return http.StatusCreated, otherReply
		}, false, "different signature"},
		{"malformed reply", func(status int, body []byte) (int, []byte) {
			return http.StatusCreated, body[:len(body)/2]
		}, false, "not a Rekor log entry"},
	}
	var mode func(int, []byte) (int, []byte)
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(upstream) },
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.Method != http.MethodPost || mode == nil {
				return nil
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			status, body := mode(resp.StatusCode, body)
			resp.StatusCode = status
			resp.Body = io.NopCloser(bytes.NewReader(body))
			resp.ContentLength = int64(len(body))
			resp.Header.Set("Content-Length", fmt.Sprint(len(body)))
			return nil
		},
	})
	defer proxy.Close()
	raw, err := http.Post(l.URL+"/api/v1/log/entries", "application/json",
		bytes.NewReader(mustJSON(t, signing.NewHashedRekord(other.payload, other.signature, other.pub))))
	if err != nil {
		t.Fatal(err)
	}
	otherReply, _ = io.ReadAll(raw.Body)
	raw.Body.Close()
	if raw.StatusCode != http.StatusCreated {
		t.Fatalf("direct upload: %s %s", raw.Status, otherReply)
	}

	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			mode = m.modify
			c, err := tlog.New(proxy.URL, tlog.Options{PublicKeyFile: l.PublicKeyFile, MaxAttempts: 1})
			if err != nil {
				t.Fatal(err)
			}
			second, _ := signing.GenerateSigner()
			_, err = rc.Sign(context.Background(), registry.SignRequest{Reference: image, Signer: second, Tlog: c})
			code, retryable := errcode.Of(err)
			if code != tlog.ErrorCode || retryable != m.retryable || !strings.Contains(fmt.Sprint(err), m.want) {
				t.Errorf("code %q retryable %v err %v; want %s retryable=%v containing %q", code, retryable, err,
					tlog.ErrorCode, m.retryable, m.want)
			}
			after, err := remote.Head(sigTag)
			if err != nil || after.Digest != before.Digest {
				t.Errorf(".sig manifest changed: %v → %v (%v)", before.Digest, after, err)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every child of a recursively signed index gets its own log entry, and
// cosign v2 and v3 accept each child and the index.
func TestRealRekorCosignVerifiesRecursiveIndex(t *testing.T) {
	l := needRekor(t)
	cosign2 := cosignBinary(t, "OCISIGN_COSIGN_V2", "cosign-v2.6.5")
	cosign3 := cosignBinary(t, "OCISIGN_COSIGN_V3", "cosign-v3.1.3")
	host := memtest.Start(t, nil)
	ref, _ := name.ParseReference(host + "/ocisign/multi:v1")
	memtest.PushIndex(t, ref.String(), 2)
	signer, _ := signing.GenerateSigner()
	pub, _ := signer.Verifier().PublicKeyPEM()
	pubPath := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := registry.New(registry.Options{}).Sign(context.Background(),
		registry.SignRequest{Reference: ref.String(), Signer: signer, Recursive: true, Tlog: pinnedClient(t, l)})
	if err != nil {
		t.Fatalf("recursive Sign: %v", err)
	}
	if len(res.Signed) != 3 {
		t.Fatalf("signed %d digests, want the index and 2 children: %+v", len(res.Signed), res)
	}
	uuids := map[string]bool{}
	for _, s := range res.Signed {
		if s.LogIndex == nil || s.LogUUID == "" {
			t.Fatalf("%s has no log entry", s.Digest)
		}
		uuids[s.LogUUID] = true
		image := ref.Context().Name() + "@" + s.Digest
		for _, run := range []struct {
			bin  string
			args []string
		}{
			{cosign2, []string{"verify", "--key", pubPath, "--rekor-url", l.URL, "--allow-insecure-registry", image}},
			{cosign3, []string{"verify", "--key", pubPath, "--offline", "--allow-insecure-registry", image}},
		} {
			out, err := runCosign(t, run.bin, l.PublicKeyFile, run.args...)
			if err != nil || !strings.Contains(out, "Existence of the claims in the transparency log was verified offline") {
				t.Errorf("%s verify %s: %v\n%s", filepath.Base(run.bin), s.Digest, err, out)
			}
		}
	}
	if len(uuids) != 3 {
		t.Errorf("%d distinct log entries for 3 signatures", len(uuids))
	}
}

// Last test: Rekor stopped. Upload fails with a retryable tlog_error naming
// the log, nothing is pushed, and Stop leaves no process behind.
func TestRealRekorStoppedIsAClearError(t *testing.T) {
	l := needRekor(t)
	pids := l.PIDs()
	if len(pids) != 4 {
		t.Fatalf("harness runs %d processes, want 4 (mariadbd, two Trillian, rekor-server)", len(pids))
	}
	if err := l.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Stop (kill 0: %v)", pid, err)
		}
	}

	host := memtest.Start(t, nil)
	ref, _ := name.ParseReference(host + "/ocisign/down:v1")
	d := memtest.PushImage(t, ref.String())
	signer, _ := signing.GenerateSigner()
	c, err := tlog.New(l.URL, tlog.Options{PublicKeyFile: l.PublicKeyFile, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = registry.New(registry.Options{}).Sign(context.Background(),
		registry.SignRequest{Reference: ref.Context().Name() + "@" + d, Signer: signer, Tlog: c})
	code, retryable := errcode.Of(err)
	if code != tlog.ErrorCode || !retryable || !strings.Contains(fmt.Sprint(err), l.URL) ||
		!strings.Contains(fmt.Sprint(err), "unreachable") {
		t.Errorf("Sign with Rekor down: code %q retryable %v err %v", code, retryable, err)
	}
	sigTag := ref.Context().Tag("sha256-" + strings.TrimPrefix(d, "sha256:") + ".sig")
	if _, err := remote.Head(sigTag); err == nil {
		t.Errorf("a .sig manifest was pushed although the log was down")
	}
}

// Runs without OCISIGN_E2E: a missing tool is named, with the fix.
func TestFindToolsNamesWhatIsMissing(t *testing.T) {
	_, err := FindTools(t.TempDir())
	if err == nil {
		t.Fatal("FindTools accepted an empty tools directory")
	}
	for _, want := range []string{"test/rekor/install.sh", RekorServerBinary, TrillianServerBinary, TrillianSignerBinary, TrillianSchemaFile} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// BenchmarkRealRekorUpload counts the log round trips one new signature
// costs (the registry side is unchanged by the log).
func BenchmarkRealRekorUpload(b *testing.B) {
	if !testgate.On() || shared == nil {
		b.Skip("set OCISIGN_E2E=1 to run against a real local Rekor")
	}
	if shared.stopped { // TestRealRekorStoppedIsAClearError ran first
		b.Skip("the local Rekor was stopped by the tests; run the benchmark with -run '^$'")
	}
	var requests int
	counting := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		requests++
		return http.DefaultTransport.RoundTrip(r)
	})}
	c, err := tlog.New(shared.URL, tlog.Options{PublicKeyFile: shared.PublicKeyFile, HTTPClient: counting})
	if err != nil {
		b.Fatal(err)
	}
	signer, err := signing.GenerateSigner()
	if err != nil {
		b.Fatal(err)
	}
	pub, _ := signer.Verifier().PublicKeyPEM()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		payload, _ := signing.Payload("registry.example/bench", "sha256:"+randomHex(32), nil)
		sig, _ := signer.Sign(payload)
		if _, err := c.Upload(context.Background(), payload, sig, pub); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(requests)/float64(b.N), "log-requests/op")
}
