package e2e

import (
	"slices"
	"strings"
	"testing"
)

// TestCosignBaseline checks the harness itself with cosign alone: each cosign
// signs in the legacy layout on this registry and both versions verify, and a
// foreign key is refused. If this fails, the ocisign tests below say nothing.
func TestCosignBaseline(t *testing.T) {
	t.Parallel()
	signers := map[string]string{"v2": "cosign", "v3": "cosign-2"}
	for _, signer := range cosignVersions {
		t.Run("signed-by-cosign-"+signer, func(t *testing.T) {
			repo := "baseline-" + signer
			digest := pushImage(t, repo)
			kp := key(t, signers[signer])
			cosignSign(t, signer, kp.key, digestRef(repo, digest))
			m, _, _ := getSigManifest(t, repo, digest)
			if len(m.Layers) != 1 {
				t.Fatalf("cosign %s wrote %d layers, want 1", signer, len(m.Layers))
			}
			other := key(t, signers[otherVersion(signer)])
			for _, v := range cosignVersions {
				assertCosignVerifies(t, v, kp.pub, digestRef(repo, digest), digest)
				assertCosignRejects(t, v, other.pub, digestRef(repo, digest))
			}
		})
	}
}

func otherVersion(v string) string {
	if v == "v2" {
		return "v3"
	}
	return "v2"
}

// TestCosignVerifiesOcisignSignature (a): one image per key kind, signed by
// ocisign through its tag, verified by cosign v2.6.5 and v3.1.3.
func TestCosignVerifiesOcisignSignature(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"ocisign", "cosign", "openssl"} {
		t.Run(kind+"-key", func(t *testing.T) {
			repo := "single-" + kind
			tagRef, digest := pushTaggedImage(t, repo)
			kp := key(t, kind)
			out := ocisignSign(t, kp.key, tagRef)
			if len(out.Signed) != 1 {
				t.Fatalf("signing one image reported %d signed entries: %+v", len(out.Signed), out)
			}
			entry := out.Signed[0]
			if entry.Digest != digest {
				t.Fatalf("signed digest %s, want the tag's digest %s", entry.Digest, digest)
			}
			if entry.Deduplicated {
				t.Fatalf("first signature reported as deduplicated: %+v", entry)
			}
			if !strings.HasSuffix(entry.SignatureRef, "/"+repoPath(repo)+":"+sigTag(digest)) {
				t.Fatalf("signature_ref %q, want …/%s:%s", entry.SignatureRef, repoPath(repo), sigTag(digest))
			}
			m, _, sigDigest := getSigManifest(t, repo, digest)
			if sigDigest != entry.SignatureDigest {
				t.Fatalf("registry has %s at %s, ocisign reported %s", sigDigest, sigTag(digest), entry.SignatureDigest)
			}
			if len(m.Layers) != 1 {
				t.Fatalf(".sig manifest has %d layers, want 1", len(m.Layers))
			}
			ref := digestRef(repo, digest)
			for _, v := range cosignVersions {
				assertCosignVerifies(t, v, kp.pub, ref, digest)
				// The key really is checked: another key's public half fails.
				assertCosignRejects(t, v, key(t, "cosign-2").pub, ref)
			}
		})
	}
}

// TestRecursiveIndex (b): --recursive signs an index and every manifest below
// it, each under its own .sig tag, and both cosigns verify every one.
func TestRecursiveIndex(t *testing.T) {
	t.Parallel()
	kp := key(t, "ocisign")
	cases := []struct {
		name string
		push func(t *testing.T, repo string) (string, string, []string)
	}{
		{"three-platforms", func(t *testing.T, repo string) (string, string, []string) { return pushIndex(t, repo, 3) }},
		{"nested-index", pushNestedIndex},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo := "recursive-" + tc.name
			tagRef, indexDigest, below := tc.push(t, repo)
			out := ocisignSign(t, kp.key, tagRef, "--recursive")

			want := append([]string{indexDigest}, below...)
			var got []string
			for _, e := range out.Signed {
				got = append(got, e.Digest)
			}
			if len(got) == 0 || got[0] != indexDigest {
				t.Fatalf("signed[0] must be the index %s; got %v", indexDigest, got)
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("signed digests\n got %v\nwant %v", got, want)
			}
			var wantTags []string
			for _, d := range want {
				wantTags = append(wantTags, sigTag(d))
			}
			slices.Sort(wantTags)
			if tags := sigTags(t, repo); !slices.Equal(tags, wantTags) {
				t.Fatalf(".sig tags in %s\n got %v\nwant %v (1 + %d children)", repo, tags, wantTags, len(below))
			}
			for _, d := range want {
				for _, v := range cosignVersions {
					assertCosignVerifies(t, v, kp.pub, digestRef(repo, d), d)
				}
			}
		})
	}

	t.Run("without-recursive-signs-only-the-index", func(t *testing.T) {
		repo := "recursive-off"
		tagRef, indexDigest, _ := pushIndex(t, repo, 2)
		out := ocisignSign(t, kp.key, tagRef)
		if len(out.Signed) != 1 || out.Signed[0].Digest != indexDigest {
			t.Fatalf("want only the index %s signed, got %+v", indexDigest, out.Signed)
		}
		if tags := sigTags(t, repo); !slices.Equal(tags, []string{sigTag(indexDigest)}) {
			t.Fatalf(".sig tags %v, want only %s", tags, sigTag(indexDigest))
		}
	})
}

// TestCosignRepository: with COSIGN_REPOSITORY set, ocisign writes the .sig
// tag into that repository (not the image's), and cosign, given the same
// variable, finds and verifies it there.
func TestCosignRepository(t *testing.T) {
	t.Parallel()
	const repo, sigRepo = "cosign-repository-image", "cosign-repository-sigs"
	digest := pushImage(t, repo)
	kp := key(t, "ocisign")
	env := []string{"COSIGN_REPOSITORY=" + repoRef(sigRepo)}
	r := mustSucceed(t, ocisignEnv(t, env, "sign", "--key", kp.key, digestRef(repo, digest)))
	if tags := sigTags(t, repo); len(tags) != 0 {
		t.Fatalf("COSIGN_REPOSITORY ignored: %v in the image repository\n%s", tags, r)
	}
	if _, _, ok := getManifest(t, sigRepo, sigTag(digest)); !ok {
		t.Fatalf("no %s in %s:\n%s", sigTag(digest), sigRepo, r)
	}
	for _, v := range cosignVersions {
		args := []string{"verify", "--key", kp.pub, "--insecure-ignore-tlog", digestRef(repo, digest)}
		if r := run(t, "", env, harness.cosign[v], args...); r.code != 0 {
			t.Fatalf("cosign %s with COSIGN_REPOSITORY rejected it:\n%s", v, r)
		}
		// Without the variable cosign looks in the image repository: nothing there.
		assertCosignRejects(t, v, kp.pub, digestRef(repo, digest))
	}
}
