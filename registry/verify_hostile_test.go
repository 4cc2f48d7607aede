package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ocisign/ocisign/internal/errcode"
	"github.com/ocisign/ocisign/internal/memregistry/memtest"

	"github.com/ocisign/ocisign/signing"
)

// bodyCounter sums the response body bytes read through it.
type bodyCounter struct {
	inner http.RoundTripper
	n     atomic.Int64
}

func (b *bodyCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.inner.RoundTrip(req)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &b.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Anyone who can push to the .sig tag can point its layers at a huge blob.
// Verify must fail cleanly having read at most maxPayloadBytes per layer
// (and nothing for a layer whose declared size is already too large), and
// return no payload for an invalid layer.
func TestVerifyHostileSignatureManifestIsBounded(t *testing.T) {
	reg := newTestRegistry(t)
	digest := memtest.PushImage(t, reg.host+"/app:1")
	big := bytes.Repeat([]byte("A"), 4<<20)
	bigDigest := rawPutBlob(t, reg.host, "app", big)
	config := rawPutBlob(t, reg.host, "app", []byte(`{"rootfs":{"type":"layers","diff_ids":[]}}`))
	sig := base64.StdEncoding.EncodeToString([]byte("not a signature"))
	var layers []string
	for i := 0; i < 8; i++ {
		size := len(big) // honest: refused before any download
		if i%2 == 1 {
			size = 100 // lying: the read stops at the limit
		}
		layers = append(layers, fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d,"annotations":{%q:%q}}`,
			SimpleSigningMediaType, bigDigest, size, SignatureAnnotation, sig))
	}
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":42},"layers":[%s]}`,
		config, strings.Join(layers, ","))
	if !json.Valid([]byte(manifest)) {
		t.Fatal("test manifest is not JSON")
	}
	rawPutManifest(t, reg.host, "app", SignatureTag(digest), "application/vnd.oci.image.manifest.v1+json", []byte(manifest))

	counter := &bodyCounter{inner: http.DefaultTransport}
	c := newTestClient(Options{Transport: counter})
	signer, err := signing.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Verify(context.Background(), VerifyRequest{Reference: reg.host + "/app:1", Verifier: signer.Verifier()})
	if code, _ := errcode.Of(err); code != errcode.CodeVerificationFailed {
		t.Fatalf("want verification_failed, got %v", err)
	}
	if len(res.Signatures) != 8 {
		t.Fatalf("want 8 verdicts, got %d", len(res.Signatures))
	}
	for _, s := range res.Signatures {
		if s.Valid || s.Payload != "" || s.Error == "" {
			t.Fatalf("layer %d: valid %v, payload %d bytes, error %q", s.Layer, s.Valid, len(s.Payload), s.Error)
		}
	}
	// 4 lying layers at most limit+1 bytes each (plus buffered slack), the
	// manifest and a few small responses; never the 4 MiB blob.
	if got, max := counter.n.Load(), int64(4*(maxPayloadBytes+32<<10)+64<<10); got > max {
		t.Fatalf("verify read %d response bytes, want at most %d", got, max)
	}
}
