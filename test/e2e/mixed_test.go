package e2e

import (
	"fmt"
	"slices"
	"testing"
)

// signStep is one signature added to an image by one tool.
type signStep struct {
	tool    string // "ocisign", "cosign-v2", "cosign-v3"
	keyKind string
}

// runMixed applies steps to a fresh image, checking after each step that the
// .sig manifest kept every earlier layer in order and gained exactly one.
// Finally every key must verify with both cosigns and with ocisign.
func runMixed(t *testing.T, repo string, steps []signStep) {
	digest := pushImage(t, repo)
	ref := digestRef(repo, digest)
	var before []string
	for i, s := range steps {
		kp := key(t, s.keyKind)
		switch s.tool {
		case "ocisign":
			if out := ocisignSign(t, kp.key, ref); out.Signed[0].Deduplicated {
				t.Fatalf("step %d: ocisign deduplicated a signature by a new key", i+1)
			}
		case "cosign-v2":
			cosignSign(t, "v2", kp.key, ref)
		case "cosign-v3":
			cosignSign(t, "v3", kp.key, ref)
		default:
			t.Fatalf("unknown tool %q", s.tool)
		}
		m, _, _ := getSigManifest(t, repo, digest)
		after := layerDigests(m)
		if len(after) != i+1 || !slices.Equal(after[:i], before) {
			t.Fatalf("after step %d (%s, %s key): layers %v, want %v plus one new", i+1, s.tool, s.keyKind, after, before)
		}
		before = after
	}
	for _, s := range steps {
		pub := key(t, s.keyKind).pub
		for _, v := range cosignVersions {
			assertCosignVerifies(t, v, pub, ref, digest)
		}
		assertOcisignVerifies(t, pub, ref, digest)
	}
}

// TestMixedSigning (c): cosign and ocisign append to the same .sig manifest
// without losing each other's signatures, in either order.
func TestMixedSigning(t *testing.T) {
	t.Parallel()
	t.Run("cosign-first", func(t *testing.T) {
		runMixed(t, "mixed-cosign-first", []signStep{
			{"cosign-v3", "cosign-2"},
			{"ocisign", "ocisign"},
			{"cosign-v2", "cosign"},
		})
	})
	t.Run("ocisign-first", func(t *testing.T) {
		runMixed(t, "mixed-ocisign-first", []signStep{
			{"ocisign", "ocisign"},
			{"cosign-v2", "cosign"},
			{"ocisign", "openssl"},
			{"cosign-v3", "cosign-2"},
		})
	})
}

// TestDedupe (c): re-signing with the same key and annotations adds nothing,
// a different annotation adds one layer, and ocisign and cosign recognise each
// other's identical signatures (which needs identical payload bytes).
func TestDedupe(t *testing.T) {
	t.Parallel()
	t.Run("ocisign-twice", func(t *testing.T) {
		repo := "dedupe-ocisign"
		digest := pushImage(t, repo)
		ref := digestRef(repo, digest)
		kp := key(t, "ocisign")

		first := ocisignSign(t, kp.key, ref, "-a", "team=blue")
		second := ocisignSign(t, kp.key, ref, "-a", "team=blue")
		if !second.Signed[0].Deduplicated {
			t.Fatalf("second identical signature not reported as deduplicated: %+v", second)
		}
		m, _, sigDigest := getSigManifest(t, repo, digest)
		if len(m.Layers) != 1 {
			t.Fatalf("identical re-sign left %d layers, want 1", len(m.Layers))
		}
		if sigDigest != first.SignatureDigest || second.SignatureDigest != first.SignatureDigest {
			t.Fatalf("dedupe changed the .sig manifest: first %s, second %s, registry %s", first.SignatureDigest, second.SignatureDigest, sigDigest)
		}

		third := ocisignSign(t, kp.key, ref, "-a", "team=red")
		if third.Signed[0].Deduplicated {
			t.Fatalf("signature with a different annotation reported as deduplicated")
		}
		if m, _, _ = getSigManifest(t, repo, digest); len(m.Layers) != 2 {
			t.Fatalf("different annotation gave %d layers, want 2", len(m.Layers))
		}
		assertOcisignVerifies(t, kp.pub, ref, digest, "team=red")
		for _, v := range cosignVersions {
			assertCosignVerifies(t, v, kp.pub, ref, digest, "team=blue")
			assertCosignVerifies(t, v, kp.pub, ref, digest, "team=red")
		}
	})

	for _, v := range cosignVersions {
		t.Run(fmt.Sprintf("ocisign-then-cosign-%s-same-key", v), func(t *testing.T) {
			repo := "dedupe-cross-" + v
			digest := pushImage(t, repo)
			ref := digestRef(repo, digest)
			kp := key(t, "cosign")
			ocisignSign(t, kp.key, ref, "-a", "a=1")
			cosignSign(t, v, kp.key, ref, "a=1")
			if m, _, _ := getSigManifest(t, repo, digest); len(m.Layers) != 1 {
				t.Fatalf("cosign %s did not recognise ocisign's identical signature: %d layers", v, len(m.Layers))
			}
		})
		t.Run(fmt.Sprintf("cosign-%s-then-ocisign-same-key", v), func(t *testing.T) {
			repo := "dedupe-cross-rev-" + v
			digest := pushImage(t, repo)
			ref := digestRef(repo, digest)
			kp := key(t, "cosign")
			cosignSign(t, v, kp.key, ref, "a=1")
			out := ocisignSign(t, kp.key, ref, "-a", "a=1")
			if !out.Signed[0].Deduplicated {
				t.Fatalf("ocisign did not recognise cosign %s's identical signature: %+v", v, out)
			}
			if m, _, _ := getSigManifest(t, repo, digest); len(m.Layers) != 1 {
				t.Fatalf("%d layers after the deduplicated signature, want 1", len(m.Layers))
			}
		})
	}
}
