// Package memtest is what tests need around the in-memory registry: a
// server per test (optionally behind a front that may answer requests
// itself), random images and indexes pushed to it, and a request counter.
package memtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ocisign/ocisign/internal/memregistry"
)

// Start serves a new in-memory registry for the test and returns its
// "127.0.0.1:port". front, if not nil, wraps the registry's handler.
func Start(t testing.TB, front func(http.Handler) http.Handler) string {
	t.Helper()
	h := memregistry.Handler()
	if front != nil {
		h = front(h)
	}
	return Serve(t, h)
}

// Serve serves h on 127.0.0.1 for the test (a second way into a registry
// another server fronts) and returns its "127.0.0.1:port".
func Serve(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// PushImage pushes a random image to ref and returns its digest.
func PushImage(t testing.TB, ref string) string {
	t.Helper()
	d, err := memregistry.PushImage(ref)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// PushIndex pushes a random index of children images to ref and returns its digest.
func PushIndex(t testing.TB, ref string, children int) string {
	t.Helper()
	d, _, err := memregistry.PushIndex(ref, memregistry.Platforms(children))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Counter is an http.RoundTripper that counts requests by method and
// PathClass ("GET manifest .sig tag", "GET /v2/ (ping)", …).
type Counter struct {
	inner  http.RoundTripper
	mu     sync.Mutex
	counts map[string]int
	total  int
}

// NewCounter counts requests sent through a fresh default transport.
func NewCounter() *Counter {
	return &Counter{inner: http.DefaultTransport.(*http.Transport).Clone(), counts: map[string]int{}}
}

func (c *Counter) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.counts[req.Method+" "+PathClass(req.URL.Path)]++
	c.total++
	c.mu.Unlock()
	return c.inner.RoundTrip(req)
}

var (
	sigTagPath    = regexp.MustCompile(`/manifests/sha256-[0-9a-f]{64}\.sig$`)
	digestRefPath = regexp.MustCompile(`/manifests/sha256:[0-9a-f]{64}$`)
)

// PathClass names what a registry path addresses, without digests, tags
// or upload ids: "/v2/ (ping)", "manifest .sig tag", "blob upload (open)", ….
func PathClass(p string) string {
	switch {
	case p == "/v2/" || p == "/v2":
		return "/v2/ (ping)"
	case sigTagPath.MatchString(p):
		return "manifest .sig tag"
	case digestRefPath.MatchString(p):
		return "manifest by digest"
	case strings.Contains(p, "/manifests/"):
		return "manifest by tag"
	case strings.HasSuffix(p, "/blobs/uploads/"):
		return "blob upload (open)"
	case strings.Contains(p, "/blobs/uploads/"):
		return "blob upload (session)"
	case strings.Contains(p, "/blobs/"):
		return "blob"
	case strings.HasSuffix(p, "/tags/list"):
		return "tags list"
	case strings.Contains(p, "/referrers/"):
		return "referrers"
	}
	return p
}

// Snapshot returns and resets the counts: the total, and "METHOD CLASS=N"
// pairs in sorted order, separated by ", ".
func (c *Counter) Snapshot() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.counts))
	for k := range c.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, c.counts[k]))
	}
	total := c.total
	c.counts, c.total = map[string]int{}, 0
	return total, strings.Join(parts, ", ")
}
