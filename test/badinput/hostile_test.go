package badinput

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocisign/ocisign/internal/memregistry"
	th "github.com/ocisign/ocisign/test/internal/harness"
)

// rawManifest is a manifest pushed as the bytes given.
type rawManifest struct {
	body      []byte
	mediaType types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.body, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mediaType, nil }

// A .sig whose 8 layers point at one 100 MiB blob (half of them declaring
// its real size, half a small one) must not make `ocisign verify` read it:
// verify fails cleanly with the process staying under 64 MiB peak RSS (it
// reached 2.5 GB before payloads were capped).
func TestVerifyHostileSignatureManifestStaysSmall(t *testing.T) {
	dir := t.TempDir()
	if r := ocisign(t, dir, []string{"COSIGN_PASSWORD=" + keyPassword}, "generate-key-pair", "--output-key-prefix", "k"); r.Code != 0 {
		t.Fatalf("generate-key-pair:\n%s", r)
	}
	image := env.Reg.Addr + "/hostile/app:1"
	digest, err := memregistry.PushImage(image)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := name.NewRepository(env.Reg.Addr + "/hostile/app")
	if err != nil {
		t.Fatal(err)
	}
	// Streamed, never in this process's memory: a child's peak RSS counts
	// the parent's from before exec (Go starts children with CLONE_VM).
	const bigSize = 100 << 20
	blob := stream.NewLayer(io.NopCloser(io.LimitReader(zeros{}, bigSize)), stream.WithMediaType(SimpleSigning))
	if err := remote.WriteLayer(repo, blob); err != nil {
		t.Fatal(err)
	}
	blobDigest, err := blob.Digest()
	if err != nil {
		t.Fatal(err)
	}
	config := static.NewLayer([]byte(`{"rootfs":{"type":"layers","diff_ids":[]}}`), types.OCIConfigJSON)
	if err := remote.WriteLayer(repo, config); err != nil {
		t.Fatal(err)
	}
	configDigest, _ := config.Digest()
	var layers []string
	for i := 0; i < 8; i++ {
		size := bigSize
		if i%2 == 1 {
			size = 300
		}
		layers = append(layers, fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d,"annotations":{"dev.cosignproject.cosign/signature":%q}}`,
			SimpleSigning, blobDigest, size, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 64))))
	}
	body := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":42},"layers":[%s]}`,
		types.OCIManifestSchema1, types.OCIConfigJSON, configDigest, strings.Join(layers, ","))
	if !json.Valid([]byte(body)) {
		t.Fatal("hostile manifest is not JSON")
	}
	sigTag := repo.Tag("sha256-" + strings.TrimPrefix(digest, "sha256:") + ".sig")
	if err := remote.Put(sigTag, rawManifest{[]byte(body), types.OCIManifestSchema1}); err != nil {
		t.Fatal(err)
	}

	r := ocisign(t, dir, nil, "verify", "--key", "k.pub", "--output", "json", image)
	if r.Code != 1 || !strings.Contains(r.Stderr, "no matching signatures") {
		t.Fatalf("want exit 1 with no matching signatures:\n%s", r)
	}
	if strings.Contains(r.Stdout, `\u0000`) {
		t.Fatalf("verify printed an invalid layer's payload:\n%s", th.Tail([]byte(r.Stdout), 500))
	}
	t.Logf("ocisign verify of the hostile .sig: peak RSS %d KiB", r.MaxRSSKiB)
	if r.MaxRSSKiB == 0 || r.MaxRSSKiB > 64<<10 {
		t.Fatalf("peak RSS %d KiB, want under 64 MiB", r.MaxRSSKiB)
	}
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// SimpleSigning is cosign's payload media type.
const SimpleSigning types.MediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
