package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/ocisign/ocisign/internal/memregistry"
	"github.com/ocisign/ocisign/internal/memregistry/memtest"
)

// ---------------------------------------------------------------- keys

// keyPair is a private key file and its public key file.
type keyPair struct{ key, pub string }

// keyMakers create each kind of key the tests sign with. Every encrypted key
// uses testPassword.
var keyMakers = map[string]func(prefix string) error{
	// ocisign's own ENCRYPTED SIGSTORE PRIVATE KEY.
	"ocisign": func(prefix string) error {
		return runPlain(harness.ocisign, "generate-key-pair", "--output-key-prefix", prefix)
	},
	"ocisign-2": func(prefix string) error {
		return runPlain(harness.ocisign, "generate-key-pair", "--output-key-prefix", prefix)
	},
	// Real cosign key pairs, one from each major version.
	"cosign": func(prefix string) error {
		return runPlain(harness.cosign["v2"], "generate-key-pair", "--output-key-prefix", prefix)
	},
	"cosign-2": func(prefix string) error {
		return runPlain(harness.cosign["v3"], "generate-key-pair", "--output-key-prefix", prefix)
	},
	// An unencrypted SEC1 P-256 key, as the README tells openssl users.
	"openssl": func(prefix string) error {
		if err := runPlain(harness.openssl, "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", prefix+".key"); err != nil {
			return err
		}
		return runPlain(harness.openssl, "ec", "-in", prefix+".key", "-pubout", "-out", prefix+".pub")
	},
}

var keyCache struct {
	sync.Mutex
	done map[string]*keyResult
}

type keyResult struct {
	once sync.Once
	kp   keyPair
	err  error
}

// key returns the key pair of the given kind, made once per run.
func key(t *testing.T, kind string) keyPair {
	t.Helper()
	keyCache.Lock()
	if keyCache.done == nil {
		keyCache.done = map[string]*keyResult{}
	}
	kr := keyCache.done[kind]
	if kr == nil {
		kr = &keyResult{}
		keyCache.done[kind] = kr
	}
	keyCache.Unlock()
	if strings.HasPrefix(kind, "ocisign") {
	}
	kr.once.Do(func() {
		maker, ok := keyMakers[kind]
		if !ok {
			kr.err = fmt.Errorf("no key maker %q", kind)
			return
		}
		dir := filepath.Join(harness.tmp, "keys")
		if kr.err = os.MkdirAll(dir, 0o700); kr.err != nil {
			return
		}
		prefix := filepath.Join(dir, kind)
		if kr.err = maker(prefix); kr.err != nil {
			return
		}
		kr.kp = keyPair{key: prefix + ".key", pub: prefix + ".pub"}
		for _, f := range []string{kr.kp.key, kr.kp.pub} {
			if _, err := os.Stat(f); err != nil {
				kr.err = fmt.Errorf("%s key maker did not write %s", kind, f)
			}
		}
	})
	if kr.err != nil {
		t.Fatalf("key %s: %v", kind, kr.err)
	}
	return kr.kp
}

// runPlain runs a set-up command (no *testing.T) in the keys directory.
func runPlain(bin string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = harness.tmp
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, tail(out, 2000))
	}
	return nil
}

// ---------------------------------------------------------------- images

var tagCounter atomic.Int64

// repoRef is "127.0.0.1:<port>/e2e/<repo>".
func repoRef(repo string) string { return harness.registry + "/e2e/" + repo }

func repoPath(repo string) string { return "e2e/" + repo }

// digestRef is repo@digest as cosign and ocisign take it.
func digestRef(repo, digest string) string { return repoRef(repo) + "@" + digest }

func nextTag() string { return fmt.Sprintf("t%d", tagCounter.Add(1)) }

// pushImage pushes a new random single-platform image and returns its digest.
func pushImage(t *testing.T, repo string) string {
	t.Helper()
	_, digest := pushTaggedImage(t, repo)
	return digest
}

// pushTaggedImage pushes a new random image and returns "repo:tag" and its digest.
func pushTaggedImage(t *testing.T, repo string) (string, string) {
	t.Helper()
	ref := repoRef(repo) + ":" + nextTag()
	return ref, memtest.PushImage(t, ref)
}

var platforms = []v1.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64", Variant: "v8"},
	{OS: "linux", Architecture: "s390x"},
}

// multiPlatformIndex builds an OCI index with n random platform images
// (memregistry.RandomIndex over the platforms above, in turn).
func multiPlatformIndex(t *testing.T, n int) (v1.ImageIndex, []string) {
	t.Helper()
	ps := make([]v1.Platform, n)
	for i := range ps {
		ps[i] = platforms[i%len(platforms)]
	}
	idx, children, err := memregistry.RandomIndex(ps)
	if err != nil {
		t.Fatal(err)
	}
	return idx, children
}

func writeIndex(t *testing.T, repo string, idx v1.ImageIndex) (string, string) {
	t.Helper()
	ref, err := name.NewTag(repoRef(repo) + ":" + nextTag())
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatalf("pushing index to %s: %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return ref.String(), d.String()
}

// pushIndex pushes a multi-platform index of n images; it returns
// "repo:tag", the index digest and the child digests.
func pushIndex(t *testing.T, repo string, n int) (string, string, []string) {
	t.Helper()
	idx, children := multiPlatformIndex(t, n)
	ref, digest := writeIndex(t, repo, idx)
	return ref, digest, children
}

// pushNestedIndex pushes an index holding one image and one index of two
// images. It returns "repo:tag", the top digest and every manifest below it
// (the inner index and the three images).
func pushNestedIndex(t *testing.T, repo string) (string, string, []string) {
	t.Helper()
	inner, innerChildren := multiPlatformIndex(t, 2)
	innerDigest, err := inner.Digest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	imgDigest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	outer := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &platforms[0]}},
		mutate.IndexAddendum{Add: inner},
	)
	below := append([]string{imgDigest.String(), innerDigest.String()}, innerChildren...)
	ref, digest := writeIndex(t, repo, outer)
	return ref, digest, below
}

// sigTag is cosign's legacy signature tag for digest.
func sigTag(digest string) string { return strings.Replace(digest, ":", "-", 1) + ".sig" }

// ---------------------------------------------------------------- registry HTTP

const ociManifest = "application/vnd.oci.image.manifest.v1+json"

func registryDo(t *testing.T, method, path, contentType string, body []byte, headers ...string) (*http.Response, []byte) {
	t.Helper()
	url := path
	if !strings.HasPrefix(url, "http") {
		url = "http://" + harness.registry + path
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, b
}

// listTags returns the repository's tags (GET /v2/<repo>/tags/list).
func listTags(t *testing.T, repo string) []string {
	t.Helper()
	resp, b := registryDo(t, http.MethodGet, "/v2/"+repoPath(repo)+"/tags/list", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("tags/list %s: %s %s", repo, resp.Status, b)
	}
	var list struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatalf("tags/list %s: %v", repo, err)
	}
	sort.Strings(list.Tags)
	return list.Tags
}

func sigTags(t *testing.T, repo string) []string {
	var out []string
	for _, tag := range listTags(t, repo) {
		if strings.HasSuffix(tag, ".sig") {
			out = append(out, tag)
		}
	}
	return out
}

// sigManifest is the legacy .sig manifest as cosign writes it.
type sigManifest struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Config        v1.Descriptor   `json:"config"`
	Layers        []v1.Descriptor `json:"layers"`
}

// getManifest fetches a manifest by tag or digest; ok is false on 404.
func getManifest(t *testing.T, repo, reference string) (raw []byte, digest string, ok bool) {
	t.Helper()
	resp, b := registryDo(t, http.MethodGet, "/v2/"+repoPath(repo)+"/manifests/"+reference, "", nil,
		"Accept", strings.Join([]string{ociManifest, string(types.DockerManifestSchema2), string(types.OCIImageIndex), string(types.DockerManifestList)}, ","))
	if resp.StatusCode == http.StatusNotFound {
		return nil, "", false
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET manifest %s:%s: %s %s", repo, reference, resp.Status, b)
	}
	return b, sha256Digest(b), true
}

// getSigManifest returns the parsed .sig manifest of digest, failing when absent.
func getSigManifest(t *testing.T, repo, digest string) (sigManifest, []byte, string) {
	t.Helper()
	raw, d, ok := getManifest(t, repo, sigTag(digest))
	if !ok {
		t.Fatalf("no %s tag in %s", sigTag(digest), repo)
	}
	var m sigManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("parsing %s: %v\n%s", sigTag(digest), err, raw)
	}
	return m, raw, d
}

func putManifest(t *testing.T, repo, reference, mediaType string, raw []byte) {
	t.Helper()
	resp, b := registryDo(t, http.MethodPut, "/v2/"+repoPath(repo)+"/manifests/"+reference, mediaType, raw)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT manifest %s:%s: %s %s", repo, reference, resp.Status, b)
	}
}

func getBlob(t *testing.T, repo, digest string) []byte {
	t.Helper()
	resp, b := registryDo(t, http.MethodGet, "/v2/"+repoPath(repo)+"/blobs/"+digest, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob %s@%s: %s", repo, digest, resp.Status)
	}
	if got := sha256Digest(b); got != digest {
		t.Fatalf("blob %s has digest %s", digest, got)
	}
	return b
}

// putBlob uploads data monolithically (POST then PUT) and returns its digest.
func putBlob(t *testing.T, repo string, data []byte) string {
	t.Helper()
	resp, b := registryDo(t, http.MethodPost, "/v2/"+repoPath(repo)+"/blobs/uploads/", "", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST blob upload %s: %s %s", repo, resp.Status, b)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = "http://" + harness.registry + loc
	}
	digest := sha256Digest(data)
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	resp, b = registryDo(t, http.MethodPut, loc+sep+"digest="+digest, "application/octet-stream", data)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT blob %s: %s %s", repo, resp.Status, b)
	}
	return digest
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// layerDigests lists the payload digests of a .sig manifest, in order.
func layerDigests(m sigManifest) []string {
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}
