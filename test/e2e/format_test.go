package e2e

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"testing"
)

// TestSameBytesAsCosign (d): cosign signs image X and ocisign signs image Y
// (same repository, key and annotation). Once X's digests and signature are
// replaced by Y's, cosign's manifest, config and payload must equal ocisign's
// byte for byte; the structure is compared first for a readable failure.
func TestSameBytesAsCosign(t *testing.T) {
	t.Parallel()
	kp := key(t, "cosign")
	for _, v := range cosignVersions {
		t.Run("cosign-"+v, func(t *testing.T) {
			repo := "compat-" + v
			x := pushImage(t, repo)
			y := pushImage(t, repo)
			cosignSign(t, v, kp.key, digestRef(repo, x), "foo=bar")
			ocisignSign(t, kp.key, digestRef(repo, y), "-a", "foo=bar")

			xm, xraw, _ := getSigManifest(t, repo, x)
			ym, yraw, _ := getSigManifest(t, repo, y)
			compareStructure(t, xraw, yraw)
			if len(xm.Layers) != 1 || len(ym.Layers) != 1 {
				t.Fatalf("want one layer each: cosign %d, ocisign %d", len(xm.Layers), len(ym.Layers))
			}
			xl, yl := xm.Layers[0], ym.Layers[0]
			if xl.MediaType != yl.MediaType || xm.Config.MediaType != ym.Config.MediaType || xm.MediaType != ym.MediaType {
				t.Fatalf("media types differ: cosign %s/%s/%s, ocisign %s/%s/%s",
					xm.MediaType, xm.Config.MediaType, xl.MediaType, ym.MediaType, ym.Config.MediaType, yl.MediaType)
			}
			if !reflect.DeepEqual(sortedKeys(xl.Annotations), sortedKeys(yl.Annotations)) {
				t.Fatalf("layer annotation keys differ: cosign %v, ocisign %v", sortedKeys(xl.Annotations), sortedKeys(yl.Annotations))
			}

			xPayload := getBlob(t, repo, xl.Digest.String())
			yPayload := getBlob(t, repo, yl.Digest.String())
			if want := bytes.ReplaceAll(xPayload, []byte(x), []byte(y)); !bytes.Equal(want, yPayload) {
				t.Fatalf("payload differs from cosign's (after substituting the digest):\ncosign  %s\nocisign %s", want, yPayload)
			}

			xConfig := getBlob(t, repo, xm.Config.Digest.String())
			yConfig := getBlob(t, repo, ym.Config.Digest.String())
			if want := bytes.ReplaceAll(xConfig, []byte(xl.Digest.String()), []byte(yl.Digest.String())); !bytes.Equal(want, yConfig) {
				t.Fatalf("config blob differs from cosign's (after substituting the payload digest):\ncosign  %s\nocisign %s", want, yConfig)
			}

			want := xraw
			for _, sub := range [][2]string{
				{xm.Config.Digest.String(), ym.Config.Digest.String()},
				{xl.Digest.String(), yl.Digest.String()},
				{xl.Annotations["dev.cosignproject.cosign/signature"], yl.Annotations["dev.cosignproject.cosign/signature"]},
			} {
				want = bytes.ReplaceAll(want, []byte(sub[0]), []byte(sub[1]))
			}
			if !bytes.Equal(want, yraw) {
				t.Fatalf(".sig manifest bytes differ from cosign's (after substitution):\ncosign  %s\nocisign %s", want, yraw)
			}
		})
	}
}

// compareStructure compares two manifests with every leaf value that differs
// per signature (digests, sizes, the signature) blanked out.
func compareStructure(t *testing.T, cosignRaw, ocisignRaw []byte) {
	t.Helper()
	shape := func(raw []byte) any {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("manifest is not JSON: %v\n%s", err, raw)
		}
		return blankVolatile(v, "")
	}
	cosignShape, ocisignShape := shape(cosignRaw), shape(ocisignRaw)
	if !reflect.DeepEqual(cosignShape, ocisignShape) {
		cj, _ := json.Marshal(cosignShape)
		oj, _ := json.Marshal(ocisignShape)
		t.Fatalf(".sig manifest structure differs:\ncosign  %s\nocisign %s", cj, oj)
	}
}

func blankVolatile(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = blankVolatile(e, k)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = blankVolatile(e, key)
		}
		return out
	default:
		switch key {
		case "digest", "size", "dev.cosignproject.cosign/signature":
			return "<" + key + ">"
		}
		return v
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
