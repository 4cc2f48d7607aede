package registry

import (
	"bytes"
	"encoding/json"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const cosignSigManifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":233,"digest":"sha256:4d0f4ab1bf2d5e6ebbc2e6ac62fb7d2f9e0c0e7e7d1c1b4f5b1c2b3d4e5f6a7b"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":242,"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","annotations":{"dev.cosignproject.cosign/signature":"MEUCIQ=="}}]}`

// FuzzParseSignatureManifest: any registry body parses or is refused with
// an error, never a panic; a parsed manifest appends to a manifest that
// keeps every old layer byte for byte, in order, plus ours.
func FuzzParseSignatureManifest(f *testing.F) {
	f.Add([]byte(cosignSigManifest), "application/vnd.oci.image.manifest.v1+json")
	f.Add([]byte(`{"schemaVersion":2,"layers":[]}`), "application/vnd.docker.distribution.manifest.v2+json")
	f.Add([]byte(`{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`), "")
	f.Add([]byte(`{"layers":[{"digest":"sha256:zz"}]}`), "")
	f.Add([]byte(`{"layers":[{"x":1,"annotations":{"a":"b"}},{}],"subject":{"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1}}`), "text/plain; charset=x")
	f.Add([]byte(`null`), "")
	f.Add([]byte(`{"layers":null}`), "")
	payload := []byte(`{"critical":{}}`)
	newLayer, _, err := layerDescriptor(payload, map[string]string{SignatureAnnotation: "c2ln"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		existing, err := parseSignatureManifest(body, contentType)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if existing.digest != sha256Digest(body) || len(existing.rawLayers) != len(existing.manifest.Layers) {
			t.Fatalf("inconsistent parse: %+v", existing)
		}
		mt := manifestType(existing)
		var diffIDs []v1.Hash
		for _, l := range existing.manifest.Layers {
			diffIDs = append(diffIDs, l.Digest)
		}
		cfg, err := canonicalConfig(diffIDs)
		if err != nil {
			return // a layer digest that does not marshal; nextConfig reports it
		}
		cfgHash, _ := v1.NewHash(sha256Digest(cfg))
		out, err := buildManifest(existing, mt, v1.Descriptor{MediaType: configMediaType(mt), Size: int64(len(cfg)), Digest: cfgHash}, newLayer)
		if err != nil {
			return
		}
		var again struct {
			MediaType string            `json:"mediaType"`
			Layers    []json.RawMessage `json:"layers"`
		}
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("appended manifest is not JSON: %v\n%s", err, out)
		}
		if len(again.Layers) != len(existing.rawLayers)+1 || again.MediaType != string(mt) {
			t.Fatalf("appended manifest has %d layers (want %d) and type %q (want %q)", len(again.Layers), len(existing.rawLayers)+1, again.MediaType, mt)
		}
		for i, raw := range existing.rawLayers {
			if !jsonEqual(raw, again.Layers[i]) {
				t.Fatalf("layer %d changed: %s → %s", i, raw, again.Layers[i])
			}
		}
		if !jsonEqual(again.Layers[len(again.Layers)-1], newLayer) {
			t.Fatal("our layer is not last")
		}
		if reparsed, err := parseSignatureManifest(out, ""); err != nil || len(reparsed.manifest.Layers) != len(again.Layers) {
			t.Fatalf("appended manifest does not parse back: %v", err)
		}
	})
}

// jsonEqual compares two JSON texts after compaction (json.Marshal of a
// RawMessage compacts it).
func jsonEqual(a, b []byte) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// FuzzExtendConfig: an existing signature config is extended by exactly one
// diff_id and one history entry, keeping the old ones.
func FuzzExtendConfig(f *testing.F) {
	base, _ := canonicalConfig([]v1.Hash{{Algorithm: "sha256", Hex: "11"}})
	f.Add(base)
	f.Add([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Labels":{"a":"b"}}}`))
	f.Add([]byte(`{"rootfs":{"type":"other"}}`))
	f.Add([]byte(`{"critical":{"identity":{}}}`))
	layer := v1.Hash{Algorithm: "sha256", Hex: "2222222222222222222222222222222222222222222222222222222222222222"}
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, ok, err := extendConfig(raw, layer)
		if err != nil || !ok {
			return
		}
		var before, after v1.ConfigFile
		if json.Unmarshal(raw, &before) != nil {
			// extendConfig decodes only the first value of the stream.
			if json.NewDecoder(bytes.NewReader(raw)).Decode(&before) != nil {
				t.Fatal("extendConfig accepted what does not decode")
			}
		}
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("extended config is not JSON: %v", err)
		}
		if len(after.RootFS.DiffIDs) != len(before.RootFS.DiffIDs)+1 || after.RootFS.DiffIDs[len(after.RootFS.DiffIDs)-1] != layer {
			t.Fatalf("diff_ids %v → %v", before.RootFS.DiffIDs, after.RootFS.DiffIDs)
		}
		if len(after.History) != len(before.History)+1 {
			t.Fatalf("history %d → %d", len(before.History), len(after.History))
		}
	})
}
