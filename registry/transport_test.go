package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocisign/ocisign/internal/errcode"
	"github.com/ocisign/ocisign/internal/memregistry/memtest"
	"github.com/ocisign/ocisign/internal/retry"

	"github.com/ocisign/ocisign/signing"
)

// frontedRegistry puts a hook in front of an in-process registry; a hook
// that returns true has answered the request itself. The hook only runs once
// the test arms it (after setting up images).
func frontedRegistry(t *testing.T, hook func(w http.ResponseWriter, r *http.Request) bool) *testRegistry {
	t.Helper()
	reg := &testRegistry{}
	reg.host = memtest.Start(t, func(inner http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if reg.armed.Load() && hook(w, r) {
				return
			}
			inner.ServeHTTP(w, r)
		})
	})
	return reg
}

func isManifest(r *http.Request, ref string) bool {
	return strings.Contains(r.URL.Path, "/manifests/") && (ref == "" || strings.HasSuffix(r.URL.Path, "/manifests/"+ref))
}

func TestRetriesTransient503(t *testing.T) {
	var failed, heads, blobPuts atomic.Int32
	reg := frontedRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodHead && isManifest(r, "v1") {
			heads.Add(1)
			if failed.Add(1) <= 2 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return true
			}
		}
		// The first blob PUT fails after the body was read: the retry must
		// replay the whole body or the registry's digest check fails.
		if isBlobUpload(r) && blobPuts.Add(1) == 1 {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusBadGateway)
			return true
		}
		return false
	})
	digest := memtest.PushImage(t, reg.host+"/app:v1")
	reg.armed.Store(true)
	res, err := newTestClient(Options{}).Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: mustSigner(t)})
	if err != nil || res.Signed[0].Digest != digest {
		t.Fatalf("sign through two 503s: %v", err)
	}
	if heads.Load() != 3 || blobPuts.Load() != 3 {
		t.Fatalf("%d resolve HEADs (want 2 failures + 1), %d blob uploads (want 1 failure + 2)", heads.Load(), blobPuts.Load())
	}
}

func TestRetriesExhausted(t *testing.T) {
	var calls atomic.Int32
	reg := frontedRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && isManifest(r, "") && strings.Contains(r.URL.Path, ".sig") {
			calls.Add(1)
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"errors":[{"code":"UNAVAILABLE","message":"maintenance"}]}`)
			return true
		}
		return false
	})
	memtest.PushImage(t, reg.host+"/app:v1")
	reg.armed.Store(true)
	_, err := newTestClient(Options{}).Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: mustSigner(t)})
	t.Logf("exhausted: %v", err)
	var re *errcode.Error
	if !errors.As(err, &re) || re.Code != errcode.CodeUnavailable || !re.Retryable || re.Status != 503 || re.Op != "push signature manifest" {
		t.Fatalf("got %#v", err)
	}
	for _, want := range []string{"push signature manifest " + reg.host + "/app:sha256-", ".sig: 503 Service Unavailable", "UNAVAILABLE: maintenance", "(after 4 tries)"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("%q lacks %q", err, want)
		}
	}
	if calls.Load() != 4 {
		t.Fatalf("%d manifest PUTs, want 1 + 3 retries", calls.Load())
	}
	if code, retry := errcode.Of(fmt.Errorf("wrapped: %w", err)); code != errcode.CodeUnavailable || !retry {
		t.Fatalf("ErrorCode through wrapping: %s %v", code, retry)
	}
}

func TestUnauthorizedAndDeniedAreNotRetried(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
	}{{401, errcode.CodeUnauthorized}, {403, errcode.CodeDenied}} {
		t.Run(tc.code, func(t *testing.T) {
			var calls atomic.Int32
			reg := frontedRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method == http.MethodHead && isManifest(r, "v1") {
					calls.Add(1)
					w.WriteHeader(tc.status)
					return true
				}
				return false
			})
			memtest.PushImage(t, reg.host+"/app:v1")
			reg.armed.Store(true)
			_, err := newTestClient(Options{}).Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: mustSigner(t)})
			code, retry := errcode.Of(err)
			if code != tc.code || retry || calls.Load() != 1 {
				t.Fatalf("err %v code %s retry %v after %d calls", err, code, retry, calls.Load())
			}
			if !strings.HasPrefix(err.Error(), "resolve "+reg.host+"/app:v1: ") {
				t.Fatalf("message %q", err)
			}
		})
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	const user, password, token = "robot", "s3cr3t-Passw0rd", "tok-Zq8v2-secret"
	echo := func(w http.ResponseWriter, r *http.Request) {
		// A hostile registry echoes the credentials back.
		got := r.Header.Get("Authorization")
		if dec, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(got, "Basic ")); err == nil {
			got += " " + string(dec)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials %s"}]}`, got)
	}
	var logs []string
	var mu sync.Mutex
	logf := func(f string, a ...any) { mu.Lock(); logs = append(logs, fmt.Sprintf(f, a...)); mu.Unlock() }

	t.Run("basic", func(t *testing.T) {
		t.Setenv("OCIBUILD_PUSH_TOKEN", "")
		t.Setenv("OCIBUILD_PUSH_USERNAME", user)
		t.Setenv("OCIBUILD_PUSH_PASSWORD", password)
		var sawCreds atomic.Bool
		reg := frontedRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
			if strings.Contains(r.Header.Get("Authorization"), base64.StdEncoding.EncodeToString([]byte(user+":"+password))) {
				sawCreds.Store(true)
			}
			if r.URL.Path == "/v2/" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return true
			}
			echo(w, r)
			return true
		})
		reg.armed.Store(true)
		// Recursive resolves with GET, so the echoing body is read.
		_, err := newTestClient(Options{Logf: logf}).Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: mustSigner(t), Recursive: true})
		if code, _ := errcode.Of(err); code != errcode.CodeUnauthorized || !strings.Contains(err.Error(), "bad credentials") {
			t.Fatalf("got %v", err)
		}
		t.Logf("basic refusal: %v", err)
		if !sawCreds.Load() {
			t.Fatal("OCIBUILD_PUSH_USERNAME/PASSWORD were not sent")
		}
		b64 := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
		if msg := err.Error(); strings.Contains(msg, password) || strings.Contains(msg, b64) {
			t.Fatalf("password in error: %v", err)
		}
	})
	t.Run("bearer token server", func(t *testing.T) {
		t.Setenv("OCIBUILD_PUSH_TOKEN", "")
		t.Setenv("OCIBUILD_PUSH_USERNAME", user)
		t.Setenv("OCIBUILD_PUSH_PASSWORD", password)
		var reg *testRegistry
		reg = frontedRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
			switch {
			case r.URL.Path == "/v2/":
				w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+reg.host+`/token",service="test"`)
				w.WriteHeader(http.StatusUnauthorized)
			case r.URL.Path == "/token":
				// Raw (non-JSON) body echoing the password.
				u, p, _ := r.BasicAuth()
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprintf(w, "denied for %s:%s", u, p)
			default:
				echo(w, r)
			}
			return true
		})
		reg.armed.Store(true)
		_, err := newTestClient(Options{Logf: logf}).Verify(ctx(t), VerifyRequest{Reference: reg.host + "/app:v1", Verifier: mustSigner(t).Verifier()})
		if code, _ := errcode.Of(err); code != errcode.CodeUnauthorized {
			t.Fatalf("got %v", err)
		}
		t.Logf("token server refusal: %v", err)
		if strings.Contains(err.Error(), password) {
			t.Fatalf("password in error: %v", err)
		}
	})
	t.Run("token", func(t *testing.T) {
		t.Setenv("OCIBUILD_PUSH_TOKEN", token)
		t.Setenv("OCIBUILD_PUSH_USERNAME", "")
		t.Setenv("OCIBUILD_PUSH_PASSWORD", "")
		var authorized atomic.Int32
		reg := frontedRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/v2/" || r.Header.Get("Authorization") != "Bearer "+token {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				echo(w, r)
				return true
			}
			authorized.Add(1)
			return false
		})
		digest := memtest.PushImage(t, reg.host+"/app:v1")
		reg.armed.Store(true)
		res, err := newTestClient(Options{Logf: logf}).Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: mustSigner(t)})
		if err != nil || res.Signed[0].Digest != digest || authorized.Load() == 0 {
			t.Fatalf("sign with OCIBUILD_PUSH_TOKEN: %v", err)
		}
		_, err = newTestClient(Options{}).Sign(ctx(t), SignRequest{Reference: reg.host + "/app:nope", Signer: mustSigner(t)})
		if err == nil || strings.Contains(err.Error(), token) {
			t.Fatalf("token leaked or no error: %v", err)
		}
	})
	for _, l := range logs {
		if strings.Contains(l, password) || strings.Contains(l, token) {
			t.Fatalf("secret in log line %q", l)
		}
	}
}

func TestHTTPAllowed(t *testing.T) {
	cases := []struct {
		host     string
		allowAll bool
		list     []string
		want     bool
	}{
		{"127.0.0.1:5000", false, nil, true},
		{"127.8.9.1:5000", false, nil, true},
		{"localhost:5000", false, nil, true},
		{"localhost", false, nil, true},
		{"[::1]:5000", false, nil, true},
		{"10.0.0.5:5000", false, nil, false}, // go-containerregistry would say http
		{"192.168.1.2", false, nil, false},
		{"registry.local:5000", false, nil, false},
		{"localhost.example.com:5000", false, nil, false},
		{"ghcr.io", false, nil, false},
		{"ghcr.io", true, nil, true},
		{"10.0.0.5:5000", false, []string{"10.0.0.5:5000"}, true},
		{"10.0.0.5:5000", false, []string{"10.0.0.5"}, true},
		{"10.0.0.5:5000", false, []string{"10.0.0.5:5001"}, false},
		{"reg.example.com:5000", false, []string{"http://REG.example.com:5000/"}, true},
	}
	for _, tc := range cases {
		if got := httpAllowed(tc.host, tc.allowAll, tc.list); got != tc.want {
			t.Errorf("httpAllowed(%q, %v, %v) = %v, want %v", tc.host, tc.allowAll, tc.list, got, tc.want)
		}
	}
}

// dialTo sends every connection to addr, so non-loopback names reach the
// local test registry without any network.
func dialTo(addr string) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	return t
}

func TestPlainHTTPRefusedForNonLoopback(t *testing.T) {
	reg := newTestRegistry(t)
	memtest.PushImage(t, reg.host+"/app:v1")
	base := dialTo(reg.host)
	for _, host := range []string{"registry.example.test:5000", "10.9.8.7:5000"} {
		ref := host + "/app:v1"
		_, err := newTestClient(Options{Transport: base}).Sign(ctx(t), SignRequest{Reference: ref, Signer: mustSigner(t)})
		code, _ := errcode.Of(err)
		t.Logf("%s: %v", host, err)
		if code != errcode.CodeInsecureRegistry || !strings.Contains(err.Error(), "--allow-insecure-registry") {
			t.Fatalf("%s: want insecure_registry naming the flag, got %v", host, err)
		}
		for _, opts := range []Options{{Transport: base, AllowInsecure: true}, {Transport: base, InsecureRegistries: []string{host}}} {
			if _, err := newTestClient(opts).Sign(ctx(t), SignRequest{Reference: ref, Signer: mustSigner(t)}); err != nil {
				t.Fatalf("%s with %+v: %v", host, opts.InsecureRegistries, err)
			}
		}
	}
}

func TestSchemeGuardRefusesHTTPWithoutNetwork(t *testing.T) {
	g := &schemeGuard{host: "10.1.2.3:5000", inner: roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Fatal("request reached the network")
		return nil, nil
	})}
	req, _ := http.NewRequest(http.MethodGet, "http://10.1.2.3:5000/v2/", nil)
	_, err := g.RoundTrip(req)
	var refusal *insecureRefusal
	if !errors.As(err, &refusal) {
		t.Fatalf("got %v", err)
	}
	e := transportError(context.Background(), "resolve", "10.1.2.3:5000/app", err, 1, false, "")
	if e.Code != errcode.CodeInsecureRegistry || !strings.Contains(e.Error(), "--allow-insecure-registry") {
		t.Fatalf("got %v", e)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTimeoutAndCancel(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	reg := frontedRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodHead && isManifest(r, "v1") {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return true
		}
		return false
	})
	memtest.PushImage(t, reg.host+"/app:v1")
	reg.armed.Store(true)
	_, err := newTestClient(Options{Timeout: 200 * time.Millisecond}).Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: mustSigner(t)})
	t.Logf("timeout: %v", err)
	if code, retry := errcode.Of(err); code != errcode.CodeTimeout || !retry || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	_, err = newTestClient(Options{}).Sign(cctx, SignRequest{Reference: reg.host + "/app:v1", Signer: mustSigner(t)})
	t.Logf("cancelled: %v", err)
	if code, retry := errcode.Of(err); code != errcode.CodeCancelled || retry {
		t.Fatalf("got %v", err)
	}
}

func TestErrorCodeMapping(t *testing.T) {
	cases := []struct {
		err   error
		code  string
		retry bool
	}{
		{&errcode.Error{Code: errcode.CodeNotFound}, errcode.CodeNotFound, false},
		{fmt.Errorf("x: %w", &signing.KeyError{Code: "wrong_password", Problem: "p"}), "wrong_password", false},
		{signing.ErrUnsupportedKey, "unsupported_key", false},
		{context.DeadlineExceeded, errcode.CodeTimeout, true},
		{fmt.Errorf("op: %w", context.Canceled), errcode.CodeCancelled, false},
		{errors.New("boom"), errcode.CodeInternal, false},
		{nil, "", false},
	}
	for _, tc := range cases {
		if code, retry := errcode.Of(tc.err); code != tc.code || retry != tc.retry {
			t.Errorf("errcode.Of(%v) = %s %v, want %s %v", tc.err, code, retry, tc.code, tc.retry)
		}
	}
}

// Request counts per case, on a registry that stores monolithic blob
// POSTs (the in-process one, like zot or go-containerregistry) and on one
// that opens a session instead (distribution). Bounds per case: a first
// signature of a just-pushed image, a warm append, a cold client's append
// (the CLI), a deduplicated re-sign, and whether unused sessions are
// cancelled.
func TestRequestCounts(t *testing.T) {
	for _, tc := range []struct {
		name                             string
		distribution                     bool
		firstSig, warmAppend, coldAppend int
		dedupe                           int
		cancels                          string
	}{
		// first (JustPushed): GET .sig ‖ HEAD resolve ‖ 2×POST blob (stored); PUT manifest; HEAD read-back.
		// append: GET .sig ‖ HEAD resolve ‖ POST payload; POST merged config ‖ HEAD .sig (pre-push
		// check); PUT manifest; HEAD read-back — the same warm or cold (no config in round 1: it would
		// be a first signature's, unused). dedupe: GET .sig ‖ HEAD resolve ‖ POST payload.
		{name: "monolithic", firstSig: 6, warmAppend: 7, coldAppend: 7, dedupe: 3},
		// first and warm append: GET .sig ‖ HEAD resolve ‖ 2×POST (sessions); 2×PUT blob ‖ HEAD .sig;
		// PUT manifest; HEAD read-back (a warm client knows the registry opens sessions, which take any
		// blob). A cold append opens the config's session in round 2 instead (a PUT in round 3).
		// dedupe: round 1, then 2×DELETE of the unused sessions.
		{name: "distribution", distribution: true, firstSig: 9, warmAppend: 9, coldAppend: 9, dedupe: 6, cancels: "DELETE blob upload (session)=2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := frontedRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
				if tc.distribution {
					asDistribution(r)
				}
				return false
			})
			reg.armed.Store(true)
			checkRequestCounts(t, reg.host, tc.firstSig, tc.warmAppend, tc.coldAppend, tc.dedupe, tc.cancels)
		})
	}
}

func checkRequestCounts(t *testing.T, host string, firstSig, warmAppend, coldAppend, dedupeBound int, cancels string) {
	memtest.PushImage(t, host+"/app:v1")
	counter := memtest.NewCounter()
	c := newTestClient(Options{Transport: counter})
	ref := host + "/app:v1"

	if _, err := c.Sign(ctx(t), SignRequest{Reference: ref, Signer: mustSigner(t), JustPushed: true}); err != nil {
		t.Fatal(err)
	}
	first, detail := counter.Snapshot()
	t.Logf("first signature of a just-pushed image, cold client: %d requests (%s)", first, detail)
	// A cold client adds the ping: an https attempt and the http answer.
	if first > firstSig+2 {
		t.Fatalf("a first signature with a cold client took %d requests, bound is %d + 2 ping requests", first, firstSig)
	}

	second := mustSigner(t)
	res, err := c.Sign(ctx(t), SignRequest{Reference: ref, Signer: second, Annotations: map[string]string{"n": "2"}})
	if err != nil || res.Signed[0].Deduplicated {
		t.Fatal(err)
	}
	warm, detail := counter.Snapshot()
	t.Logf("append, warm client: %d requests (%s)", warm, detail)
	if warm > warmAppend {
		t.Fatalf("append with a warm client took %d requests, documented bound is %d", warm, warmAppend)
	}

	cold := newTestClient(Options{Transport: counter})
	if _, err := cold.Sign(ctx(t), SignRequest{Reference: ref, Signer: mustSigner(t), Annotations: map[string]string{"n": "3"}}); err != nil {
		t.Fatal(err)
	}
	n, detail := counter.Snapshot()
	t.Logf("append, cold client (the CLI): %d requests (%s)", n, detail)
	if n > coldAppend+2 {
		t.Fatalf("append with a cold client took %d requests, bound is %d + 2 ping requests", n, coldAppend)
	}

	res, err = c.Sign(ctx(t), SignRequest{Reference: ref, Signer: second, Annotations: map[string]string{"n": "2"}})
	if err != nil || !res.Signed[0].Deduplicated {
		t.Fatalf("re-sign not deduplicated: %v", err)
	}
	dedupe, detail := counter.Snapshot()
	t.Logf("deduplicated re-sign, warm client: %d requests (%s)", dedupe, detail)
	if dedupe > dedupeBound || !strings.Contains(detail, cancels) {
		t.Fatalf("dedupe took %d requests (%s), bound is %d, and unused sessions must be cancelled (%q)", dedupe, detail, dedupeBound, cancels)
	}

	idx := memtest.PushIndex(t, host+"/multi:latest", 2)
	res, err = c.Sign(ctx(t), SignRequest{Reference: host + "/multi:latest", Signer: mustSigner(t), Recursive: true})
	if err != nil || len(res.Signed) != 3 || res.Signed[0].Digest != idx {
		t.Fatal(err)
	}
	rec, detail := counter.Snapshot()
	t.Logf("recursive index with 2 children, new repository: %d requests (%s)", rec, detail)
	if strings.Contains(detail, "ping") {
		t.Fatalf("a new repository of a known registry was pinged again: %s", detail)
	}
	if rec > 1+3*firstSig {
		t.Fatalf("recursive sign took %d requests, bound is %d", rec, 1+3*firstSig)
	}

	if _, err := c.Verify(ctx(t), VerifyRequest{Reference: ref, Verifier: mustSigner(t).Verifier()}); err == nil {
		t.Fatal("verify with an unrelated key succeeded")
	}
	ver, detail := counter.Snapshot()
	t.Logf("verify 3 layers, warm client: %d requests (%s)", ver, detail)
	if ver != 5 {
		t.Fatalf("verify took %d requests, want HEAD + GET .sig + 3 blobs", ver)
	}
}

func TestConcurrentSignsShareOneTransport(t *testing.T) {
	reg := newTestRegistry(t)
	var refs []string
	for i := range 4 {
		tag := fmt.Sprintf("v%d", i)
		memtest.PushImage(t, reg.host+"/"+"app"+":"+tag)
		refs = append(refs, reg.host+"/app:"+tag)
	}
	counter := memtest.NewCounter()
	c := newTestClient(Options{Transport: counter})
	signer := mustSigner(t)
	var wg sync.WaitGroup
	errs := make([]error, len(refs))
	for i, ref := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Sign(ctx(t), SignRequest{Reference: ref, Signer: signer})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// One handshake: the https probe and the http ping of a loopback registry.
	if _, byKind := counter.Snapshot(); !strings.Contains(byKind, "GET /v2/ (ping)=2,") {
		t.Fatalf("4 concurrent signs: %s; want one handshake (2 pings)", byKind)
	}
}

// The registry's transport retries what the policy (internal/retry) calls
// transient, not a client error or a TLS failure, and does not wait into
// the deadline.
func TestRetryTransport(t *testing.T) {
	var calls atomic.Int32
	status := atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	rt := &retryTransport{inner: http.DefaultTransport, policy: retry.Policy{MaxRetries: 3, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Second}}
	get := func(c context.Context) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(c, http.MethodGet, srv.URL, nil)
		return rt.RoundTrip(req)
	}
	status.Store(http.StatusBadRequest)
	if resp, err := get(context.Background()); err != nil || resp.StatusCode != http.StatusBadRequest || calls.Load() != 1 {
		t.Fatalf("400: %v %v after %d calls, want one", resp, err, calls.Load())
	}
	tlsRT := &retryTransport{inner: roundTripFunc(func(*http.Request) (*http.Response, error) {
		calls.Add(1)
		return nil, errors.New("x509: certificate signed by unknown authority")
	}), policy: rt.policy}
	calls.Store(0)
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	if _, err := tlsRT.RoundTrip(req); err == nil || calls.Load() != 1 {
		t.Fatalf("TLS failure: %v after %d calls, want one", err, calls.Load())
	}
	// A Retry-After beyond the deadline is not waited for.
	status.Store(http.StatusServiceUnavailable)
	calls.Store(0)
	c, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := get(c)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || calls.Load() != 1 {
		t.Fatalf("got %v %v after %d calls", resp, err, calls.Load())
	}
	resp.Body.Close()
}
