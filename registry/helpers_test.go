package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocisign/ocisign/internal/memregistry/memtest"
	"github.com/ocisign/ocisign/signing"
)

// testRegistry is the in-memory registry on 127.0.0.1 (memtest).
type testRegistry struct {
	host  string
	armed atomic.Bool // see frontedRegistry
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	return &testRegistry{host: memtest.Start(t, nil)}
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
	c.retry.BaseDelay = 2 * time.Millisecond
	c.retry.MaxDelay = 20 * time.Millisecond
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

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
