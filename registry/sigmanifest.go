package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Cosign's legacy signature layout (docs: cosign-format.md §1).
const (
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	SignatureAnnotation    = "dev.cosignproject.cosign/signature"
	BundleAnnotation       = "dev.sigstore.cosign/bundle"
	CertificateAnnotation  = "dev.sigstore.cosign/certificate"
	ChainAnnotation        = "dev.sigstore.cosign/chain"

	// maxSignatureLayers is cosign's reader limit; a longer manifest would
	// make every cosign verify of the image fail.
	maxSignatureLayers = 1000
	// maxPayloadBytes bounds one simplesigning payload that verify reads.
	// cosign's own payloads are under 1 KiB (a few hundred bytes of claims
	// plus the -a annotations); 64 KiB leaves room for very many
	// annotations while a hostile .sig of many layers costs little memory.
	// (cosign's reader would accept up to COSIGN_MAX_ATTACHMENT_SIZE, 128 MiB.)
	maxPayloadBytes = 64 << 10
	// maxKeptPayloadBytes bounds the payloads one verify returns (valid
	// layers only); past it a valid layer's verdict comes without its payload.
	maxKeptPayloadBytes = 1 << 20
)

// SignatureTag is the tag cosign stores signatures of digest under:
// "sha256:<hex>" → "sha256-<hex>.sig".
func SignatureTag(digest string) string {
	return strings.Replace(digest, ":", "-", 1) + ".sig"
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// existingSignatures is a .sig manifest as read from the registry.
type existingSignatures struct {
	digest    string
	mediaType types.MediaType
	manifest  v1.Manifest
	// rawLayers keeps every existing layer descriptor exactly as written, so
	// fields unknown to go-containerregistry survive an append.
	rawLayers []json.RawMessage
}

func parseSignatureManifest(body []byte, contentType string) (*existingSignatures, error) {
	var raw struct {
		Layers []json.RawMessage `json:"layers"`
	}
	var m v1.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("signature manifest is not JSON: %v", err)
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("signature manifest is not JSON: %v", err)
	}
	mt := m.MediaType
	if mt == "" {
		mt = types.MediaType(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	}
	switch mt {
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
	case "":
		mt = types.OCIManifestSchema1
	default:
		return nil, fmt.Errorf("the signature tag holds a %s, not an image manifest", mt)
	}
	if len(raw.Layers) != len(m.Layers) {
		return nil, fmt.Errorf("signature manifest layers do not parse")
	}
	// A descriptor without a digest would be written back as "digest":":",
	// which no registry accepts: refuse the manifest instead of corrupting it.
	for i, l := range m.Layers {
		if l.Digest == (v1.Hash{}) {
			return nil, fmt.Errorf("signature manifest layer %d has no digest", i)
		}
	}
	if m.Subject != nil && m.Subject.Digest == (v1.Hash{}) {
		return nil, fmt.Errorf("signature manifest has a subject without a digest")
	}
	return &existingSignatures{digest: sha256Digest(body), mediaType: mt, manifest: m, rawLayers: raw.Layers}, nil
}

// manifestJSON mirrors v1.Manifest field for field (same JSON order) with
// layers as raw JSON, so old layers are copied byte-for-byte and a cosign
// manifest re-marshals to exactly what cosign pushed.
type manifestJSON struct {
	SchemaVersion int64             `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType,omitempty"`
	Config        v1.Descriptor     `json:"config"`
	Layers        []json.RawMessage `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
	Subject       *v1.Descriptor    `json:"subject,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
}

// configMediaType is the image config type matching a manifest type.
func configMediaType(manifestType types.MediaType) types.MediaType {
	if manifestType == types.DockerManifestSchema2 {
		return types.DockerConfigJSON
	}
	return types.OCIConfigJSON
}

// canonicalConfig is the config go-containerregistry's mutate.Append writes
// when layers are appended to empty.Image: zero times, one history entry and
// one diff_id (= the uncompressed payload digest) per layer.
func canonicalConfig(diffIDs []v1.Hash) ([]byte, error) {
	cf := v1.ConfigFile{
		RootFS:  v1.RootFS{Type: "layers", DiffIDs: diffIDs},
		History: make([]v1.History, len(diffIDs)),
	}
	return json.Marshal(cf)
}

// extendConfig appends one layer to an existing image config the way
// mutate.Append does; ok is false when raw is not an image config at all.
func extendConfig(raw []byte, layer v1.Hash) (out []byte, ok bool, err error) {
	var cf v1.ConfigFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	if dec.Decode(&cf) != nil || cf.RootFS.Type != "layers" {
		return nil, false, nil
	}
	cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, layer)
	cf.History = append(cf.History, v1.History{})
	out, err = json.Marshal(cf)
	return out, true, err
}

// layerDescriptor is the new signature layer.
func layerDescriptor(payload []byte, annotations map[string]string) ([]byte, v1.Descriptor, error) {
	h, err := v1.NewHash(sha256Digest(payload))
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	d := v1.Descriptor{MediaType: SimpleSigningMediaType, Size: int64(len(payload)), Digest: h, Annotations: annotations}
	b, err := json.Marshal(d)
	return b, d, err
}

// mergedConfig is the config for existing's layers plus added, with no I/O:
// go-containerregistry's canonical config (what cosign writes) when there
// is nothing to keep; otherwise the existing config blob (fetched, which
// must be given; fetch asks for it) extended, so nothing in it is lost. A
// blob that is not an image config is replaced by the canonical form.
func mergedConfig(existing *existingSignatures, fetched []byte, added []v1.Hash) (config []byte, fetch bool, err error) {
	var diffIDs []v1.Hash
	if existing != nil {
		for _, l := range existing.manifest.Layers {
			diffIDs = append(diffIDs, l.Digest)
		}
	}
	canonical := func() ([]byte, bool, error) {
		b, err := canonicalConfig(append(diffIDs[:len(diffIDs):len(diffIDs)], added...))
		return b, false, err
	}
	if existing == nil {
		return canonical()
	}
	old, err := canonicalConfig(diffIDs)
	if err != nil {
		return nil, false, err
	}
	cfg := existing.manifest.Config
	switch {
	case cfg.Digest.String() == sha256Digest(old):
		return canonical()
	case (cfg.MediaType != types.OCIConfigJSON && cfg.MediaType != types.DockerConfigJSON) || cfg.Size > 4<<20:
		return canonical()
	case fetched == nil:
		return nil, true, nil
	}
	extended := fetched
	for _, layer := range added {
		var ok bool
		if extended, ok, err = extendConfig(extended, layer); err != nil || !ok {
			if err != nil {
				return nil, false, err
			}
			return canonical()
		}
	}
	return extended, false, nil
}

// buildManifest returns old layers + the new one under config, every old
// layer byte for byte, and the old manifest's annotations, subject and
// artifactType.
func buildManifest(old *existingSignatures, mt types.MediaType, config v1.Descriptor, newLayer []byte) ([]byte, error) {
	m := manifestJSON{SchemaVersion: 2, MediaType: mt, Config: config}
	if old != nil {
		m.Layers = append(m.Layers, old.rawLayers...)
		m.Annotations = old.manifest.Annotations
		m.Subject = old.manifest.Subject
		m.ArtifactType = old.manifest.ArtifactType
	}
	m.Layers = append(m.Layers, json.RawMessage(newLayer))
	// No HTML escaping: json.Marshal would rewrite a foreign layer's literal
	// "<", ">" or "&" as \u003c…, changing bytes we promise to keep. Our own
	// fields never contain those characters, so cosign's bytes are unchanged.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
