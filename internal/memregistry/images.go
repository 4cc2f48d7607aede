package memregistry

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PushImage pushes a small random image to ref ("host/repo:tag") and
// returns its digest. Any registry will do, not only this package's.
func PushImage(ref string) (string, error) {
	img, err := random.Image(512, 1)
	if err != nil {
		return "", err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", err
	}
	if err := remote.Write(tag, img); err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	d, err := img.Digest()
	return d.String(), err
}

// Platforms is n linux platforms: amd64, arm64, then arch2, arch3, ….
func Platforms(n int) []v1.Platform {
	out := make([]v1.Platform, n)
	for i := range out {
		arch := fmt.Sprintf("arch%d", i)
		if i < 2 {
			arch = []string{"amd64", "arm64"}[i]
		}
		out[i] = v1.Platform{OS: "linux", Architecture: arch}
	}
	return out
}

// RandomIndex is an OCI index of one small random image per platform, each
// image's config naming its platform; children are their digests.
func RandomIndex(platforms []v1.Platform) (idx v1.ImageIndex, children []string, err error) {
	idx = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		img, err := random.Image(256, 1)
		if err != nil {
			return nil, nil, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, nil, err
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = p.OS, p.Architecture
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return nil, nil, err
		}
		d, err := img.Digest()
		if err != nil {
			return nil, nil, err
		}
		platform := p
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &platform}})
		children = append(children, d.String())
	}
	return idx, children, nil
}

// PushIndex pushes a RandomIndex of platforms to ref and returns the
// index digest and the child digests.
func PushIndex(ref string, platforms []v1.Platform) (string, []string, error) {
	idx, children, err := RandomIndex(platforms)
	if err != nil {
		return "", nil, err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", nil, err
	}
	if err := remote.WriteIndex(tag, idx); err != nil {
		return "", nil, fmt.Errorf("pushing index %s: %w", ref, err)
	}
	d, err := idx.Digest()
	return d.String(), children, err
}
