package registry

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The merge of an existing .sig manifest and config with our layer, pure:
// every old layer kept byte for byte, the manifest's own fields kept, the
// config canonical unless the old one holds more, then extended.
func TestMergeTable(t *testing.T) {
	ours, ourDesc, err := layerDescriptor([]byte(`{"critical":{}}`), map[string]string{SignatureAnnotation: "c2ln"})
	if err != nil {
		t.Fatal(err)
	}
	foreign := `{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"sha256:` + strings.Repeat("a", 64) +
		`","size":5,"annotations":{"dev.cosignproject.cosign/signature":"<&>"},"x-unknown":{"nested":[1,2]}}`
	foreignHash, _ := v1.NewHash("sha256:" + strings.Repeat("a", 64))
	canonicalOne, _ := canonicalConfig([]v1.Hash{foreignHash})
	richConfig := []byte(`{"architecture":"","created":"2020-01-01T00:00:00Z","rootfs":{"type":"layers","diff_ids":["sha256:` +
		strings.Repeat("a", 64) + `"]},"config":{"Labels":{"keep":"me"}}}`)
	existing := func(cfg []byte, mediaType types.MediaType, annotations string) *existingSignatures {
		h, _ := v1.NewHash(sha256Digest(cfg))
		body := `{"schemaVersion":2,"mediaType":"` + string(mediaType) + `","config":{"mediaType":"` +
			string(configMediaType(mediaType)) + `","digest":"` + h.String() + `","size":` + itoa(len(cfg)) +
			`},"layers":[` + foreign + `]` + annotations + `}`
		e, err := parseSignatureManifest([]byte(body), string(mediaType))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	cases := []struct {
		name      string
		existing  *existingSignatures
		fetched   []byte
		wantFetch bool
		keep      []string // substrings the merged config must keep
	}{
		{name: "no .sig yet", existing: nil},
		{name: "canonical config", existing: existing(canonicalOne, types.OCIManifestSchema1, "")},
		{name: "docker media types", existing: existing(canonicalOne, types.DockerManifestSchema2, "")},
		{name: "config with more: fetched and extended", existing: existing(richConfig, types.OCIManifestSchema1, `,"annotations":{"a":"b"}`),
			fetched: richConfig, wantFetch: true, keep: []string{`"keep":"me"`, `2020-01-01`}},
		{name: "config that is not a config: canonical", existing: existing(richConfig, types.OCIManifestSchema1, ""),
			fetched: []byte(`not json`), wantFetch: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			config, fetch, err := mergedConfig(tc.existing, nil, []v1.Hash{ourDesc.Digest})
			if err != nil || fetch != tc.wantFetch {
				t.Fatalf("first pass: fetch %v err %v, want fetch %v", fetch, err, tc.wantFetch)
			}
			if fetch {
				if config, fetch, err = mergedConfig(tc.existing, tc.fetched, []v1.Hash{ourDesc.Digest}); err != nil || fetch {
					t.Fatalf("with the blob: fetch %v err %v", fetch, err)
				}
			}
			var cf v1.ConfigFile
			if err := json.Unmarshal(config, &cf); err != nil {
				t.Fatal(err)
			}
			want := []v1.Hash{ourDesc.Digest}
			if tc.existing != nil {
				want = []v1.Hash{foreignHash, ourDesc.Digest}
			}
			if len(cf.RootFS.DiffIDs) != len(want) || cf.RootFS.DiffIDs[len(want)-1] != ourDesc.Digest {
				t.Fatalf("diff_ids %v, want %v", cf.RootFS.DiffIDs, want)
			}
			for _, k := range tc.keep {
				if !bytes.Contains(config, []byte(k)) {
					t.Fatalf("merged config lost %s: %s", k, config)
				}
			}
			if len(tc.keep) == 0 {
				if canonical, _ := canonicalConfig(want); !bytes.Equal(config, canonical) {
					t.Fatalf("config not canonical:\n%s\n%s", config, canonical)
				}
			}
			mt := manifestType(tc.existing)
			h, _ := v1.NewHash(sha256Digest(config))
			manifest, err := buildManifest(tc.existing, mt, v1.Descriptor{MediaType: configMediaType(mt), Size: int64(len(config)), Digest: h}, ours)
			if err != nil {
				t.Fatal(err)
			}
			if tc.existing != nil && !bytes.Contains(manifest, []byte(foreign)) {
				t.Fatalf("the foreign layer changed:\n%s", manifest)
			}
			if !bytes.Contains(manifest, ours) || !bytes.Contains(manifest, []byte(`"mediaType":"`+string(mt)+`"`)) {
				t.Fatalf("manifest %s", manifest)
			}
			if tc.existing != nil && tc.existing.manifest.Annotations["a"] == "b" && !bytes.Contains(manifest, []byte(`"annotations":{"a":"b"}`)) {
				t.Fatalf("manifest annotations lost: %s", manifest)
			}
		})
	}
}
