package signing

import (
	"encoding/json"
	"fmt"
	"strings"
)

// SimpleSigningType is the value cosign writes in critical.type.
const SimpleSigningType = "cosign container image signature"

// SimpleSigning mirrors cosign's payload.SimpleContainerImage; Optional is
// map[string]any because other signers may store non-string values there. Field order is
// the wire order: encoding/json writes struct fields in declaration order and
// map keys sorted, which is exactly what cosign emits.
type SimpleSigning struct {
	Critical Critical       `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// Critical is the signed claim about the image.
type Critical struct {
	Identity Identity `json:"identity"`
	Image    Image    `json:"image"`
	Type     string   `json:"type"`
}

// Identity names the repository the signature claims.
type Identity struct {
	DockerReference string `json:"docker-reference"`
}

// Image names the manifest digest the signature claims.
type Image struct {
	DockerManifestDigest string `json:"docker-manifest-digest"`
}

// Payload returns the exact bytes cosign signs for repository (registry/repo,
// no tag or digest) and digest ("sha256:<hex>"). Empty annotations give
// "optional":null as cosign does.
func Payload(repository, digest string, annotations map[string]string) ([]byte, error) {
	if repository == "" {
		return nil, fmt.Errorf("payload: empty docker-reference")
	}
	if strings.ContainsAny(repository, "@") || strings.Count(repository[strings.LastIndex(repository, "/")+1:], ":") > 0 {
		return nil, fmt.Errorf("payload: docker-reference %q must not carry a tag or digest", repository)
	}
	if !strings.HasPrefix(digest, "sha256:") || len(digest) != len("sha256:")+64 {
		return nil, fmt.Errorf("payload: %q is not a sha256 digest", digest)
	}
	p := SimpleSigning{
		Critical: Critical{
			Identity: Identity{DockerReference: repository},
			Image:    Image{DockerManifestDigest: digest},
			Type:     SimpleSigningType,
		},
	}
	if len(annotations) > 0 {
		p.Optional = make(map[string]any, len(annotations))
		for k, v := range annotations {
			p.Optional[k] = v
		}
	}
	return json.Marshal(p)
}

// ParsePayload decodes a payload the way cosign's claim check does: it parses
// (case-insensitively, any key order) and never re-serialises.
func ParsePayload(b []byte) (*SimpleSigning, error) {
	var p SimpleSigning
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("payload is not simplesigning JSON: %w", err)
	}
	return &p, nil
}
