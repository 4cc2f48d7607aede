package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocisign/ocisign/internal/errcode"
	"github.com/ocisign/ocisign/internal/loopback"
	"github.com/ocisign/ocisign/internal/retry"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Client signs and verifies images. It is safe for concurrent use; calls on
// one Client share one authenticated transport (and token) per repository.
type Client struct {
	opts      Options
	keychain  authn.Keychain
	base      http.RoundTripper
	baseInsec http.RoundTripper // for explicitly insecure hosts: TLS not verified
	timeout   time.Duration
	retry     retry.Policy
	// readBack checks after each push that our layer survived concurrent writers.
	readBack       bool
	maxPushRetries int
	locker         *tagLocker

	mu          sync.Mutex
	transports  map[transportKey]*transportEntry
	pings       pingCache
	uploadModes uploadModes
}

type transportKey struct {
	registry, repository string
	push                 bool
}

// transportEntry is built once; concurrent callers wait on its mutex.
type transportEntry struct {
	mu     sync.Mutex
	client *http.Client
	scheme string
}

// New returns a Client for opts.
func New(opts Options) *Client {
	c := &Client{
		opts:           opts,
		keychain:       opts.Keychain,
		base:           opts.Transport,
		timeout:        opts.Timeout,
		retry:          defaultRetryPolicy,
		readBack:       true,
		maxPushRetries: 5,
		locker:         &tagLocker{candidates: lockDirCandidates},
		transports:     map[transportKey]*transportEntry{},
	}
	if c.keychain == nil {
		c.keychain = DefaultKeychain()
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.base == nil {
		c.base = defaultBaseTransport(false)
		c.baseInsec = defaultBaseTransport(true)
	} else {
		c.baseInsec = c.base
	}
	return c
}

func defaultBaseTransport(skipVerify bool) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 15 * time.Second
	t.ResponseHeaderTimeout = 2 * time.Minute
	t.ExpectContinueTimeout = time.Second
	t.MaxIdleConnsPerHost = 16
	if skipVerify {
		// cosign's --allow-insecure-registry also accepts self-signed certificates.
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // explicit user opt-in
	}
	return t
}

func (c *Client) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf(format, args...)
	}
}

// httpAllowed decides whether plain HTTP may be used for a registry host
// ("host[:port]"): loopback hosts always, others only when the user said so.
// Unlike go-containerregistry, private (RFC 1918) addresses get no exception.
func httpAllowed(host string, allowInsecure bool, insecureRegistries []string) bool {
	return loopback.Host(host) || explicitlyInsecure(host, allowInsecure, insecureRegistries)
}

func explicitlyInsecure(host string, allowInsecure bool, insecureRegistries []string) bool {
	if allowInsecure {
		return true
	}
	h := strings.ToLower(host)
	for _, r := range insecureRegistries {
		r = strings.ToLower(strings.TrimSpace(r))
		r = strings.TrimPrefix(strings.TrimPrefix(r, "http://"), "https://")
		r = strings.TrimSuffix(r, "/")
		if r == h {
			return true
		}
		// "host" in the list covers every port of that host.
		if hn, _, err := net.SplitHostPort(h); err == nil && !strings.Contains(r, ":") && hn == r {
			return true
		}
	}
	return false
}

// sameHostPort compares "host[:port]" names as the same server: case does
// not matter, and no port means 443 (registries are https by default).
func sameHostPort(a, b string) bool {
	canon := func(h string) string {
		h = strings.ToLower(h)
		if hn, port, err := net.SplitHostPort(h); err == nil && port == "443" {
			return hn
		}
		return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	return canon(a) == canon(b)
}

// repoConn is an authenticated connection to one repository.
type repoConn struct {
	c         *Client
	repo      name.Repository
	client    *http.Client
	scheme    string
	allowHTTP bool
}

func (rc *repoConn) url(kind, ref string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", rc.scheme, rc.repo.RegistryStr(), rc.repo.RepositoryStr(), kind, ref)
}

// conn returns the cached transport for repo, building it (ping + token) on
// first use. A push transport also serves pulls of the same repository.
func (c *Client) conn(ctx context.Context, op string, repo name.Repository, push bool) (*repoConn, error) {
	key := transportKey{registry: repo.RegistryStr(), repository: repo.RepositoryStr(), push: push}
	c.mu.Lock()
	entry := c.transports[key]
	if !push {
		if pe := c.transports[transportKey{key.registry, key.repository, true}]; pe != nil {
			entry = pe
		}
	}
	if entry == nil {
		entry = &transportEntry{}
		c.transports[key] = entry
	}
	c.mu.Unlock()

	host := repo.RegistryStr()
	allowHTTP := httpAllowed(host, c.opts.AllowInsecure, c.opts.InsecureRegistries)
	entry.mu.Lock()
	defer entry.mu.Unlock()
	if entry.client == nil {
		client, scheme, err := c.newTransport(ctx, repo, push, allowHTTP)
		if err != nil {
			return nil, transportError(ctx, op, repo.Name(), err, 0, allowHTTP, c.timeoutDesc())
		}
		entry.client, entry.scheme = client, scheme
	}
	return &repoConn{c: c, repo: repo, client: entry.client, scheme: entry.scheme, allowHTTP: allowHTTP}, nil
}

func (c *Client) newTransport(ctx context.Context, repo name.Repository, push, allowHTTP bool) (*http.Client, string, error) {
	host := repo.RegistryStr()
	base := c.base
	var regOpts []name.Option
	if explicitlyInsecure(host, c.opts.AllowInsecure, c.opts.InsecureRegistries) {
		base = c.baseInsec
	}
	if allowHTTP {
		// Lets go-containerregistry's ping fall back from https to http.
		regOpts = append(regOpts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, regOpts...)
	if err != nil {
		return nil, "", err
	}
	auth, err := c.keychain.Resolve(repo)
	if err != nil {
		return nil, "", fmt.Errorf("resolving credentials: %w", err)
	}
	guard := &schemeGuard{host: host, allowHTTP: allowHTTP, pings: &c.pings,
		httpAllowed: func(h string) bool { return httpAllowed(h, c.opts.AllowInsecure, c.opts.InsecureRegistries) },
		inner:       &retryTransport{inner: base, policy: c.retry}}
	scope := transport.PullScope
	if push {
		scope = transport.PushScope
	}
	rt, err := transport.NewWithContext(ctx, reg, auth, guard, []string{repo.Scope(scope)})
	if err != nil {
		if tlsErr, _ := guard.tlsFailure.Load().(error); tlsErr != nil {
			return nil, "", &tlsFallbackError{host: host, tls: tlsErr, fallback: err}
		}
		return nil, "", err
	}
	scheme := "https"
	if s, _ := guard.pinged.Load().(string); s != "" {
		scheme = s
	}
	return &http.Client{Transport: rt}, scheme, nil
}

// schemeGuard refuses plain HTTP to a registry that must use TLS (whatever
// go-containerregistry's private-address heuristics say) and to any other
// host it is sent to -- a token service named by the registry's challenge
// gets the registry credentials -- unless that host itself may use plain
// HTTP (loopback, or explicitly allowed). It also records which
// scheme answered the /v2/ ping, and keeps a TLS failure of the https ping
// (the http fallback's answer alone would hide it).
type schemeGuard struct {
	host        string
	allowHTTP   bool
	httpAllowed func(host string) bool // for hosts other than the registry
	inner       http.RoundTripper
	pings       *pingCache   // shared by the Client's transports
	pinged      atomic.Value // string
	tlsFailure  atomic.Value // error
}

// tlsFallbackError is a registry whose https ping failed on TLS and whose
// plain-HTTP fallback failed too (a TLS server answers plain HTTP with 400).
type tlsFallbackError struct {
	host     string
	tls      error
	fallback error
}

func (e *tlsFallbackError) Error() string {
	return fmt.Sprintf("https://%s: %v; the plain-HTTP fallback: %v", e.host, e.tls, e.fallback)
}

func (e *tlsFallbackError) Unwrap() error { return e.tls }

// insecureRefusal is a plain-HTTP request the guard did not send; other is
// the host it was for when that is not the registry (a token service).
type insecureRefusal struct{ host, other string }

func (e *insecureRefusal) Error() string {
	if e.other != "" {
		return "plain HTTP to " + e.other + " (named by " + e.host + ") refused"
	}
	return "plain HTTP to " + e.host + " refused (use --allow-insecure-registry)"
}

func (g *schemeGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	sameHost := sameHostPort(req.URL.Host, g.host)
	if req.URL.Scheme == "http" {
		allowed, refusal := g.allowHTTP, &insecureRefusal{host: g.host}
		if !sameHost {
			allowed, refusal.other = g.httpAllowed(req.URL.Host), req.URL.Host
		}
		if !allowed {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, refusal
		}
	}
	ping := sameHost && isPing(req)
	var resp *http.Response
	var err error
	cached := false
	if ping {
		resp, cached, err = g.pings.answer(g.host, req)
	}
	if !cached {
		resp, err = g.inner.RoundTrip(req)
		if ping && err == nil {
			g.pings.store(g.host, req.URL.Scheme, resp)
		}
	}
	if err != nil && sameHost && req.URL.Scheme == "https" && req.URL.Path == "/v2/" && isTLSError(err) {
		g.tlsFailure.CompareAndSwap(nil, err)
	}
	if err == nil && sameHost && req.URL.Path == "/v2/" &&
		(resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized) {
		g.pinged.CompareAndSwap(nil, req.URL.Scheme)
	}
	return resp, err
}

func (c *Client) timeoutDesc() string {
	return fmt.Sprintf(" (timeout %s)", c.timeout)
}

// Accept headers for manifests: everything a subject or .sig may be.
var manifestAccept = strings.Join([]string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}, ", ")

// request describes one HTTP exchange.
type request struct {
	op, ref     string
	method, url string
	body        []byte
	contentType string
	accept      string
	ok          []int // accepted statuses; others become *errcode.Error
	maxBody     int64 // response body limit; 0 = 4 MiB
	readBody    bool
}

type response struct {
	status int
	header http.Header
	body   []byte
	url    *url.URL
}

// errTooLarge marks a response body above the limit.
var errTooLarge = errors.New("response too large")

// do runs one request through the repository's transport.
func (rc *repoConn) do(ctx context.Context, r request) (*response, error) {
	ctx, tries := withAttemptCounter(ctx)
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return nil, &errcode.Error{Op: r.op, Ref: r.ref, Code: errcode.CodeInternal, Err: err}
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	}
	resp, err := rc.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is in Ref already
		}
		return nil, transportError(ctx, r.op, r.ref, err, int(tries.Load()), rc.allowHTTP, rc.c.timeoutDesc())
	}
	defer resp.Body.Close()
	limit := r.maxBody
	if limit == 0 {
		limit = 4 << 20
	}
	ok := false
	for _, s := range r.ok {
		ok = ok || s == resp.StatusCode
	}
	out := &response{status: resp.StatusCode, header: resp.Header, url: resp.Request.URL}
	if !ok || r.readBody {
		if !ok {
			limit = 64 << 10
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return nil, transportError(ctx, r.op, r.ref, err, int(tries.Load()), rc.allowHTTP, rc.c.timeoutDesc())
		}
		if ok && int64(len(b)) > limit {
			return nil, &errcode.Error{Op: r.op, Ref: r.ref, Code: errcode.CodeRegistryError, Err: errTooLarge,
				Detail: fmt.Sprintf("response larger than %d bytes", limit)}
		}
		out.body = b
	}
	if !ok {
		return nil, statusError(r.op, r.ref, resp, out.body, int(tries.Load()))
	}
	return out, nil
}
