package harness

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
// returns its digest.
func PushImage(ref string) (string, error) {
	img, err := random.Image(512, 2)
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

// PushIndex pushes an OCI index of n random platform images to ref and
// returns the index digest and the child digests.
func PushIndex(ref string, n int) (string, []string, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var children []string
	for i := 0; i < n; i++ {
		img, err := random.Image(512, 1)
		if err != nil {
			return "", nil, err
		}
		d, err := img.Digest()
		if err != nil {
			return "", nil, err
		}
		p := v1.Platform{OS: "linux", Architecture: fmt.Sprintf("arch%d", i)}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
		children = append(children, d.String())
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
