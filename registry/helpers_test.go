package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	gcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocisign/ocisign/signing"
)

// testRegistry is go-containerregistry's in-process registry on 127.0.0.1.
type testRegistry struct {
	srv   *httptest.Server
	host  string
	armed atomic.Bool // see frontedRegistry
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	srv := httptest.NewServer(gcrregistry.New(gcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return &testRegistry{srv: srv, host: strings.TrimPrefix(srv.URL, "http://")}
}

// lockRoot holds each test client's own tag-lock directory.
var lockRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ocisign-registry-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lockRoot = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newTestClient makes a Client with fast retries for tests and a tag-lock
// directory of its own: two clients in one test act as two hosts, whose
// appends race (a shared lock would serialise them); tests of the lock
// itself give clients one directory (lockingClient).
func newTestClient(opts Options) *Client {
	c := New(opts)
	c.retry.baseDelay = 2 * time.Millisecond
	c.retry.maxDelay = 20 * time.Millisecond
	if dir, err := os.MkdirTemp(lockRoot, "host-"); err == nil {
		c.locker = &tagLocker{candidates: func() []string { return []string{dir} }}
	}
	return c
}

func mustSigner(t *testing.T) *signing.Signer {
	t.Helper()
	s, err := signing.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pushRandomImage pushes a random image to host/repo:tag and returns its digest.
func pushRandomImage(t *testing.T, host, repo, tag string) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// isBlobUpload is a request that stores a blob: a monolithic POST with
// the digest, or the PUT that ends an upload session.
func isBlobUpload(r *http.Request) bool {
	if !strings.Contains(r.URL.Path, "/blobs/uploads/") {
		return false
	}
	return r.Method == http.MethodPut || (r.Method == http.MethodPost && r.URL.Query().Has("digest"))
}

// asDistribution makes a monolithic blob POST look to the in-process
// registry (which stores it at once) as distribution treats it: the digest
// and body are ignored and a session is opened (202). A hook calls it first
// to test the session path.
func asDistribution(r *http.Request) {
	if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/blobs/uploads/") && r.URL.Query().Has("digest") {
		io.Copy(io.Discard, r.Body)
		r.URL.RawQuery, r.Body, r.ContentLength = "", http.NoBody, 0
	}
}

func rawURL(host, repo, kind, ref string) string {
	return fmt.Sprintf("http://%s/v2/%s/%s/%s", host, repo, kind, ref)
}

// rawGet fetches a manifest or blob with plain HTTP (no ocisign code).
func rawGet(t *testing.T, host, repo, kind, ref string) ([]byte, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rawURL(host, repo, kind, ref), nil)
	req.Header.Set("Accept", manifestAccept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b, resp.StatusCode
}

func rawPutManifest(t *testing.T, host, repo, ref, mediaType string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, rawURL(host, repo, "manifests", ref), bytes.NewReader(body))
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT manifest %s: %d", ref, resp.StatusCode)
	}
}

func rawPutBlob(t *testing.T, host, repo string, data []byte) string {
	t.Helper()
	d := sha256Digest(data)
	resp, err := http.Post(rawURL(host, repo, "blobs", "uploads/"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	req, _ := http.NewRequest(http.MethodPut, "http://"+host+loc+"?digest="+d, bytes.NewReader(data))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT blob: %d", resp.StatusCode)
	}
	return d
}

func parseManifest(t *testing.T, b []byte) *v1.Manifest {
	t.Helper()
	var m v1.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest %s: %v", b, err)
	}
	return &m
}

// countingTransport counts requests per method and path kind.
type countingTransport struct {
	inner  http.RoundTripper
	mu     sync.Mutex
	counts map[string]int
	total  int
}

func newCountingTransport() *countingTransport {
	return &countingTransport{inner: http.DefaultTransport.(*http.Transport).Clone(), counts: map[string]int{}}
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.counts[req.Method+" "+pathKind(req.URL.Path)]++
	c.total++
	c.mu.Unlock()
	return c.inner.RoundTrip(req)
}

func pathKind(p string) string {
	switch {
	case p == "/v2/":
		return "ping"
	case strings.Contains(p, "/blobs/uploads/"):
		return "upload"
	case strings.Contains(p, "/blobs/"):
		return "blob"
	case strings.Contains(p, "/manifests/"):
		return "manifest"
	}
	return p
}

// snapshot returns and resets the counts.
func (c *countingTransport) snapshot() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.counts))
	for k := range c.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, c.counts[k]))
	}
	total := c.total
	c.counts, c.total = map[string]int{}, 0
	return total, strings.Join(parts, " ")
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// pushRandomIndex pushes a random multi-platform index and returns its digest.
func pushRandomIndex(t *testing.T, host, repo, tag string, children int64) string {
	t.Helper()
	idx, err := random.Index(128, 1, children)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
