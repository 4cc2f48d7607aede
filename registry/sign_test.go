package registry

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ocisign/ocisign/internal/errcode"
	"github.com/ocisign/ocisign/internal/memregistry/memtest"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocisign/ocisign/signing"
)

type sigLayer struct {
	payload     []byte
	annotations map[string]string
}

// cosignImage builds a .sig image the way cosign does (empty.Image, OCI
// media types unless docker, mutate.Append with static layers), independently
// of the code under test.
func cosignImage(t *testing.T, base v1.Image, docker bool, layers ...sigLayer) v1.Image {
	t.Helper()
	if base == nil {
		base = empty.Image
		if !docker {
			base = mutate.MediaType(base, types.OCIManifestSchema1)
			base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
		}
	}
	var adds []mutate.Addendum
	for _, l := range layers {
		adds = append(adds, mutate.Addendum{Layer: static.NewLayer(l.payload, SimpleSigningMediaType), Annotations: l.annotations})
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func rawManifestOf(t *testing.T, img v1.Image) []byte {
	t.Helper()
	b, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rawConfigOf(t *testing.T, img v1.Image) []byte {
	t.Helper()
	b, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readSig returns the .sig manifest bytes, parsed manifest and each layer's payload.
func readSig(t *testing.T, host, repo, digest string) ([]byte, *v1.Manifest, [][]byte) {
	t.Helper()
	raw, status := rawGet(t, host, repo, "manifests", SignatureTag(digest))
	if status != 200 {
		t.Fatalf("no %s in %s: %d", SignatureTag(digest), repo, status)
	}
	m := parseManifest(t, raw)
	var payloads [][]byte
	for _, l := range m.Layers {
		p, status := rawGet(t, host, repo, "blobs", l.Digest.String())
		if status != 200 {
			t.Fatalf("layer blob %s: %d", l.Digest, status)
		}
		payloads = append(payloads, p)
	}
	return raw, m, payloads
}

func writeImage(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

func TestSignSingleImageIsExactlyCosignLayout(t *testing.T) {
	reg := newTestRegistry(t)
	digest := memtest.PushImage(t, reg.host+"/team/app:v1")
	signer := mustSigner(t)
	c := newTestClient(Options{})

	res, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/team/app:v1", Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	wantRef := reg.host + "/team/app:" + strings.Replace(digest, ":", "-", 1) + ".sig"
	if len(res.Signed) != 1 || res.Signed[0].Digest != digest || res.Signed[0].SignatureRef != wantRef || res.Signed[0].Deduplicated {
		t.Fatalf("result %+v, want digest %s ref %s", res, digest, wantRef)
	}

	raw, m, payloads := readSig(t, reg.host, "team/app", digest)
	if got := sha256Digest(raw); res.SignatureDigest != got || res.Signed[0].SignatureDigest != got {
		t.Fatalf("SignatureDigest %s, pushed manifest is %s", res.SignatureDigest, got)
	}
	wantPayload, _ := signing.Payload(reg.host+"/team/app", digest, nil)
	if !bytes.Equal(payloads[0], wantPayload) {
		t.Fatalf("payload %s\nwant %s", payloads[0], wantPayload)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Layers[0].Annotations[SignatureAnnotation])
	if err != nil || signer.Verifier().Verify(payloads[0], sig) != nil {
		t.Fatalf("signature annotation does not verify: %v", err)
	}
	if len(m.Layers[0].Annotations) != 1 {
		t.Fatalf("key-only signature must carry only the signature annotation: %v", m.Layers[0].Annotations)
	}

	want := cosignImage(t, nil, false, sigLayer{payloads[0], m.Layers[0].Annotations})
	if wantRaw := rawManifestOf(t, want); !bytes.Equal(raw, wantRaw) {
		t.Fatalf("manifest differs from go-containerregistry's mutate.Append:\n got %s\nwant %s", raw, wantRaw)
	}
	cfg, _ := rawGet(t, reg.host, "team/app", "blobs", m.Config.Digest.String())
	if wantCfg := rawConfigOf(t, want); !bytes.Equal(cfg, wantCfg) {
		t.Fatalf("config\n got %s\nwant %s", cfg, wantCfg)
	}
	// The literal of cosign-format.md §1.3.
	lit := `{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["` +
		m.Layers[0].Digest.String() + `"]},"config":{}}`
	if string(cfg) != lit {
		t.Fatalf("config %s\nwant %s", cfg, lit)
	}
}

func TestSignByDigestAndErrors(t *testing.T) {
	reg := newTestRegistry(t)
	digest := memtest.PushImage(t, reg.host+"/app:v1")
	c := newTestClient(Options{})
	signer := mustSigner(t)

	// Digest wins over the tag in the reference.
	res, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:does-not-matter", Digest: digest, Signer: signer})
	if err != nil || res.Signed[0].Digest != digest {
		t.Fatalf("sign by digest: %v %+v", err, res)
	}
	res, err = c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app@" + digest, Signer: signer, Annotations: map[string]string{"a": "b"}})
	if err != nil || res.Signed[0].Digest != digest {
		t.Fatalf("sign by digest reference: %v %+v", err, res)
	}

	absent := "sha256:" + strings.Repeat("0", 64)
	cases := []struct {
		name, ref, digest, code, msg string
	}{
		{"absent digest", reg.host + "/app", absent, errcode.CodeNotFound, "404 Not Found"},
		{"absent tag", reg.host + "/app:nope", "", errcode.CodeNotFound, "no such manifest"},
		{"absent repo", reg.host + "/other@" + absent, "", errcode.CodeNotFound, "404"},
		{"bad reference", "UPPER/Case:!!", "", errcode.CodeInvalidReference, "not a valid image reference"},
		{"empty reference", "", "", errcode.CodeInvalidReference, "no image reference"},
		{"bad digest", reg.host + "/app", "sha256:abc", errcode.CodeInvalidReference, "not a sha256 digest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Sign(ctx(t), SignRequest{Reference: tc.ref, Digest: tc.digest, Signer: signer})
			code, retry := errcode.Of(err)
			if code != tc.code || retry || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v (code %s), want code %s containing %q", err, code, tc.code, tc.msg)
			}
		})
	}
	if _, status := rawGet(t, reg.host, "app", "manifests", SignatureTag(absent)); status != 404 {
		t.Fatal("a .sig was pushed for an absent digest")
	}
	if _, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1"}); err == nil {
		t.Fatal("sign without a key succeeded")
	} else if code, _ := errcode.Of(err); code != errcode.CodeInvalidRequest {
		t.Fatalf("no key: %v", err)
	}
}

func TestAppendKeepsExistingLayersByteForByte(t *testing.T) {
	reg := newTestRegistry(t)
	digest := memtest.PushImage(t, reg.host+"/app:v1")
	sigRef := reg.host + "/app:" + SignatureTag(digest)
	foreign := sigLayer{
		payload: []byte(`{"critical":{"identity":{"docker-reference":"elsewhere/app"},"image":{"docker-manifest-digest":"` + digest + `"},"type":"cosign container image signature"},"optional":{"by":"cosign"}}`),
		annotations: map[string]string{
			SignatureAnnotation:         "MEUCIQDforeignsignature==",
			BundleAnnotation:            `{"SignedEntryTimestamp":"abc","Payload":{"logIndex":1}}`,
			"org.example/extra":         "keep <me> & this",
			"dev.sigstore.cosign/chain": "",
		},
	}
	existing := cosignImage(t, nil, false, foreign)
	writeImage(t, sigRef, existing)
	oldRaw := rawManifestOf(t, existing)

	c := newTestClient(Options{})
	res, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: mustSigner(t), Annotations: map[string]string{"env": "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	raw, m, payloads := readSig(t, reg.host, "app", digest)
	if len(m.Layers) != 2 || res.Signed[0].Deduplicated {
		t.Fatalf("want old layer + ours, got %d layers", len(m.Layers))
	}
	var oldLayers, newLayers struct{ Layers []json.RawMessage }
	json.Unmarshal(oldRaw, &oldLayers)
	json.Unmarshal(raw, &newLayers)
	if !bytes.Equal(oldLayers.Layers[0], newLayers.Layers[0]) {
		t.Fatalf("existing layer changed:\n was %s\n now %s", oldLayers.Layers[0], newLayers.Layers[0])
	}
	// Exactly what cosign (mutate.Append on the existing image) would push.
	want := cosignImage(t, existing, false, sigLayer{payloads[1], m.Layers[1].Annotations})
	if wantRaw := rawManifestOf(t, want); !bytes.Equal(raw, wantRaw) {
		t.Fatalf("manifest\n got %s\nwant %s", raw, wantRaw)
	}
	cfg, _ := rawGet(t, reg.host, "app", "blobs", m.Config.Digest.String())
	if !bytes.Equal(cfg, rawConfigOf(t, want)) {
		t.Fatalf("config %s", cfg)
	}
}

func TestAppendExtendsNonCanonicalConfig(t *testing.T) {
	reg := newTestRegistry(t)
	digest := memtest.PushImage(t, reg.host+"/app:v1")
	base := cosignImage(t, nil, false, sigLayer{[]byte(`{"x":1}`), map[string]string{SignatureAnnotation: "AAAA"}})
	cf, _ := base.ConfigFile()
	cf = cf.DeepCopy()
	cf.Author = "another signer"
	cf.Architecture = "amd64"
	cf.Config.Labels = map[string]string{"k": "v"}
	existing, err := mutate.ConfigFile(base, cf)
	if err != nil {
		t.Fatal(err)
	}
	writeImage(t, reg.host+"/app:"+SignatureTag(digest), existing)

	c := newTestClient(Options{})
	if _, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: mustSigner(t)}); err != nil {
		t.Fatal(err)
	}
	raw, m, payloads := readSig(t, reg.host, "app", digest)
	want := cosignImage(t, existing, false, sigLayer{payloads[1], m.Layers[1].Annotations})
	if !bytes.Equal(raw, rawManifestOf(t, want)) {
		t.Fatalf("manifest\n got %s\nwant %s", raw, rawManifestOf(t, want))
	}
	cfgRaw, _ := rawGet(t, reg.host, "app", "blobs", m.Config.Digest.String())
	var got v1.ConfigFile
	json.Unmarshal(cfgRaw, &got)
	if got.Author != "another signer" || got.Architecture != "amd64" || got.Config.Labels["k"] != "v" ||
		len(got.RootFS.DiffIDs) != 2 || len(got.History) != 2 || got.RootFS.DiffIDs[1] != m.Layers[1].Digest {
		t.Fatalf("config lost fields or was not extended: %s", cfgRaw)
	}
}

func TestAppendRegeneratesPayloadAsConfig(t *testing.T) {
	// A signer that stores the payload as the config blob (no image config).
	reg := newTestRegistry(t)
	digest := memtest.PushImage(t, reg.host+"/app:v1")
	payload := []byte(`{"critical":{"identity":{"docker-reference":"x/app"},"image":{"docker-manifest-digest":"` + digest + `"},"type":"cosign container image signature"},"optional":null}`)
	pd := rawPutBlob(t, reg.host, "app", payload)
	oldRaw := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"` +
		SimpleSigningMediaType + `","digest":"` + pd + `","size":` + itoa(len(payload)) + `},"layers":[{"mediaType":"` +
		SimpleSigningMediaType + `","digest":"` + pd + `","size":` + itoa(len(payload)) +
		`,"annotations":{"dev.cosignproject.cosign/signature":"QUJD"}}]}`)
	rawPutManifest(t, reg.host, "app", SignatureTag(digest), string(types.OCIManifestSchema1), oldRaw)

	c := newTestClient(Options{})
	if _, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: mustSigner(t)}); err != nil {
		t.Fatal(err)
	}
	_, m, payloads := readSig(t, reg.host, "app", digest)
	if len(m.Layers) != 2 || m.Layers[0].Annotations[SignatureAnnotation] != "QUJD" {
		t.Fatalf("old layer lost: %+v", m.Layers)
	}
	want := cosignImage(t, nil, false, sigLayer{payloads[0], m.Layers[0].Annotations}, sigLayer{payloads[1], m.Layers[1].Annotations})
	cfg, _ := rawGet(t, reg.host, "app", "blobs", m.Config.Digest.String())
	if !bytes.Equal(cfg, rawConfigOf(t, want)) || m.Config.MediaType != types.OCIConfigJSON {
		t.Fatalf("config not regenerated: %s (%s)", cfg, m.Config.MediaType)
	}
}

func TestAppendKeepsDockerMediaTypes(t *testing.T) {
	reg := newTestRegistry(t)
	digest := memtest.PushImage(t, reg.host+"/app:v1")
	existing := cosignImage(t, nil, true, sigLayer{[]byte(`{"y":2}`), map[string]string{SignatureAnnotation: "AAAA"}})
	writeImage(t, reg.host+"/app:"+SignatureTag(digest), existing)
	c := newTestClient(Options{})
	if _, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: mustSigner(t)}); err != nil {
		t.Fatal(err)
	}
	raw, m, payloads := readSig(t, reg.host, "app", digest)
	if m.MediaType != types.DockerManifestSchema2 || m.Config.MediaType != types.DockerConfigJSON {
		t.Fatalf("media types changed: %s %s", m.MediaType, m.Config.MediaType)
	}
	want := cosignImage(t, existing, true, sigLayer{payloads[1], m.Layers[1].Annotations})
	if !bytes.Equal(raw, rawManifestOf(t, want)) {
		t.Fatalf("manifest\n got %s\nwant %s", raw, rawManifestOf(t, want))
	}
}

func TestDedupe(t *testing.T) {
	reg := newTestRegistry(t)
	digest := memtest.PushImage(t, reg.host+"/app:v1")
	c := newTestClient(Options{})
	keyA, keyB := mustSigner(t), mustSigner(t)
	ref := reg.host + "/app:v1"
	layers := func() int {
		_, m, _ := readSig(t, reg.host, "app", digest)
		return len(m.Layers)
	}
	steps := []struct {
		name    string
		signer  *signing.Signer
		ann     map[string]string
		dedup   bool
		nLayers int
	}{
		{"first", keyA, nil, false, 1},
		{"same key, same annotations", keyA, nil, true, 1},
		{"same key, other annotations", keyA, map[string]string{"env": "prod"}, false, 2},
		{"other key", keyB, nil, false, 3},
		{"same key and annotations again", keyA, map[string]string{"env": "prod"}, true, 3},
		{"other key, same annotations as A", keyB, map[string]string{"env": "prod"}, false, 4},
	}
	var last string
	for _, s := range steps {
		res, err := c.Sign(ctx(t), SignRequest{Reference: ref, Signer: s.signer, Annotations: s.ann})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if res.Signed[0].Deduplicated != s.dedup || layers() != s.nLayers {
			t.Fatalf("%s: deduplicated=%v layers=%d, want %v %d", s.name, res.Signed[0].Deduplicated, layers(), s.dedup, s.nLayers)
		}
		if s.dedup && res.SignatureDigest != last {
			t.Fatalf("%s: deduplicated result names %s, tag holds %s", s.name, res.SignatureDigest, last)
		}
		last = res.SignatureDigest
	}
}

func TestRecursiveSignsIndexChildrenAndNestedIndex(t *testing.T) {
	reg := newTestRegistry(t)
	nested, err := random.Index(128, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	top, err := random.Index(128, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	nestedIM, _ := nested.IndexManifest()
	dupChild, _ := nested.Image(nestedIM.Manifests[0].Digest)
	root := mutate.AppendManifests(top,
		mutate.IndexAddendum{Add: nested},
		mutate.IndexAddendum{Add: dupChild}) // listed twice: signed once
	ref, _ := name.ParseReference(reg.host + "/multi:latest")
	if err := remote.WriteIndex(ref, root); err != nil {
		t.Fatal(err)
	}
	rootDigest, _ := root.Digest()
	nestedDigest, _ := nested.Digest()
	want := map[string]bool{rootDigest.String(): true, nestedDigest.String(): true}
	topIM, _ := top.IndexManifest()
	for _, d := range append(topIM.Manifests, nestedIM.Manifests...) {
		want[d.Digest.String()] = true
	}

	c := newTestClient(Options{})
	signer := mustSigner(t)
	res, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/multi:latest", Signer: signer, Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Signed) != len(want) || res.Signed[0].Digest != rootDigest.String() {
		t.Fatalf("signed %d digests (first %s), want %d with the index first", len(res.Signed), res.Signed[0].Digest, len(want))
	}
	seen := map[string]bool{}
	for _, e := range res.Signed {
		if !want[e.Digest] || seen[e.Digest] {
			t.Fatalf("unexpected or duplicate digest %s", e.Digest)
		}
		seen[e.Digest] = true
		_, m, payloads := readSig(t, reg.host, "multi", e.Digest)
		if len(m.Layers) != 1 || sha256Digest(rawManifestBytes(t, reg.host, "multi", e.Digest)) != e.Digest {
			t.Fatalf("%s: %d layers", e.Digest, len(m.Layers))
		}
		p, _ := signing.ParsePayload(payloads[0])
		if p.Critical.Image.DockerManifestDigest != e.Digest || p.Critical.Identity.DockerReference != reg.host+"/multi" {
			t.Fatalf("payload %s for %s", payloads[0], e.Digest)
		}
		vr, err := c.Verify(ctx(t), VerifyRequest{Reference: reg.host + "/multi", Digest: e.Digest, Verifier: signer.Verifier()})
		if err != nil || vr.Valid != 1 {
			t.Fatalf("verify %s: %v", e.Digest, err)
		}
	}

	// Without Recursive only the index is signed.
	other := mustSigner(t)
	res, err = c.Sign(ctx(t), SignRequest{Reference: reg.host + "/multi:latest", Signer: other})
	if err != nil || len(res.Signed) != 1 || res.Signed[0].Digest != rootDigest.String() {
		t.Fatalf("non-recursive: %v %+v", err, res)
	}
}

func rawManifestBytes(t *testing.T, host, repo, ref string) []byte {
	b, status := rawGet(t, host, repo, "manifests", ref)
	if status != 200 {
		t.Fatalf("manifest %s: %d", ref, status)
	}
	return b
}

func TestSignatureRepository(t *testing.T) {
	reg := newTestRegistry(t)
	digest := memtest.PushImage(t, reg.host+"/app:v1")
	opts := Options{SignatureRepository: reg.host + "/signatures/app"}
	c := newTestClient(opts)
	signer := mustSigner(t)
	res, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	if res.Signed[0].SignatureRef != reg.host+"/signatures/app:"+SignatureTag(digest) {
		t.Fatalf("signature ref %s", res.Signed[0].SignatureRef)
	}
	if _, status := rawGet(t, reg.host, "app", "manifests", SignatureTag(digest)); status != 404 {
		t.Fatal("signature landed in the image repository")
	}
	_, _, payloads := readSig(t, reg.host, "signatures/app", digest)
	p, _ := signing.ParsePayload(payloads[0])
	if p.Critical.Identity.DockerReference != reg.host+"/app" {
		t.Fatalf("docker-reference %s, want the image repository", p.Critical.Identity.DockerReference)
	}
	vr, err := newTestClient(opts).Verify(ctx(t), VerifyRequest{Reference: reg.host + "/app:v1", Verifier: signer.Verifier()})
	if err != nil || vr.Valid != 1 {
		t.Fatalf("verify via signature repository: %v", err)
	}
	if _, err := New(Options{SignatureRepository: "Not A Repo"}).Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: signer}); err == nil {
		t.Fatal("bad signature repository accepted")
	} else if code, _ := errcode.Of(err); code != errcode.CodeInvalidReference {
		t.Fatalf("bad signature repository: %v", err)
	}
}

func TestRefusesToAppendPast1000Layers(t *testing.T) {
	reg := newTestRegistry(t)
	digest := memtest.PushImage(t, reg.host+"/app:v1")
	payload := []byte(`{"z":0}`)
	pd := rawPutBlob(t, reg.host, "app", payload)
	layer := `{"mediaType":"` + SimpleSigningMediaType + `","size":7,"digest":"` + pd + `","annotations":{"dev.cosignproject.cosign/signature":"AAAA"}}`
	cfg := rawPutBlob(t, reg.host, "app", []byte(`{}`))
	layers := strings.TrimSuffix(strings.Repeat(layer+",", maxSignatureLayers), ",")
	manifest := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"` +
		cfg + `"},"layers":[` + layers + `]}`
	rawPutManifest(t, reg.host, "app", SignatureTag(digest), string(types.OCIManifestSchema1), []byte(manifest))
	before := rawManifestBytes(t, reg.host, "app", SignatureTag(digest))

	_, err := newTestClient(Options{}).Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: mustSigner(t)})
	if err == nil || !strings.Contains(err.Error(), "at most 1000") {
		t.Fatalf("want a refusal naming the 1000-layer limit, got %v", err)
	}
	if !bytes.Equal(before, rawManifestBytes(t, reg.host, "app", SignatureTag(digest))) {
		t.Fatal("signature manifest changed")
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
