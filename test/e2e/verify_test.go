package e2e

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
)

// TestOcisignVerify (e): ocisign verify accepts cosign's signatures and
// rejects a wrong key, an unsigned image, a tampered payload and a signature
// made for another digest; usage errors exit 2.
func TestOcisignVerify(t *testing.T) {
	t.Parallel()
	const repo = "verify"
	cosignKey := key(t, "cosign")
	otherKey := key(t, "ocisign")

	signed := pushImage(t, repo)
	signedRef := digestRef(repo, signed)
	cosignSign(t, "v2", cosignKey.key, signedRef, "env=prod")

	t.Run("accepts-cosign-v2-signature", func(t *testing.T) {
		assertOcisignVerifies(t, cosignKey.pub, signedRef, signed)
		assertOcisignVerifies(t, cosignKey.pub, signedRef, signed, "env=prod")
	})
	t.Run("accepts-cosign-v3-signature", func(t *testing.T) {
		d := pushImage(t, repo)
		cosignSign(t, "v3", cosignKey.key, digestRef(repo, d))
		assertOcisignVerifies(t, cosignKey.pub, digestRef(repo, d), d)
	})
	t.Run("rejects-annotation-mismatch", func(t *testing.T) {
		r, _ := ocisignVerify(t, cosignKey.pub, signedRef, "env=dev")
		wantExit(t, r, 1)
	})
	t.Run("rejects-wrong-key", func(t *testing.T) {
		assertOcisignRejects(t, otherKey.pub, signedRef)
	})
	t.Run("rejects-unsigned-image", func(t *testing.T) {
		assertOcisignRejects(t, cosignKey.pub, digestRef(repo, pushImage(t, repo)))
	})

	t.Run("rejects-tampered-payload", func(t *testing.T) {
		d := pushImage(t, repo)
		ref := digestRef(repo, d)
		cosignSign(t, "v2", cosignKey.key, ref)
		assertOcisignVerifies(t, cosignKey.pub, ref, d)

		m, raw, _ := getSigManifest(t, repo, d)
		payload := getBlob(t, repo, m.Layers[0].Digest.String())
		tampered := bytes.Replace(payload, []byte(`"optional":null`), []byte(`"optional":{"tampered":"yes"}`), 1)
		if bytes.Equal(tampered, payload) {
			t.Fatalf("payload has no \"optional\":null to tamper with: %s", payload)
		}
		newDigest := putBlob(t, repo, tampered)
		// Keep the layer's signature annotation; only the blob changes.
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		layer := doc["layers"].([]any)[0].(map[string]any)
		layer["digest"] = newDigest
		layer["size"] = len(tampered)
		newRaw, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		putManifest(t, repo, sigTag(d), ociManifest, newRaw)

		assertOcisignRejects(t, cosignKey.pub, ref)
		// The tampering is real: cosign refuses it too.
		assertCosignRejects(t, "v2", cosignKey.pub, ref)
	})

	t.Run("rejects-signature-for-another-digest", func(t *testing.T) {
		b := pushImage(t, repo)
		_, raw, _ := getSigManifest(t, repo, signed)
		putManifest(t, repo, sigTag(b), ociManifest, raw)
		assertOcisignRejects(t, cosignKey.pub, digestRef(repo, b))
		assertCosignRejects(t, "v2", cosignKey.pub, digestRef(repo, b))
		// The copied signature itself is still good for the image it names.
		assertOcisignVerifies(t, cosignKey.pub, signedRef, signed)
	})

	t.Run("usage-errors-exit-2", func(t *testing.T) {
		for i, args := range [][]string{
			{"verify", "--key", cosignKey.pub},
			{"verify", "--key", cosignKey.pub, "--no-such-flag", signedRef},
			{"sign", "--key", cosignKey.key},
		} {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				wantExit(t, ocisign(t, args...), 2)
			})
		}
	})
}
