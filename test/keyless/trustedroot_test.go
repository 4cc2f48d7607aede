package keyless

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// trustedRoot writes a Sigstore trusted root (protobuf-specs TrustedRoot,
// JSON) naming the local Fulcio's root and the local Rekor's key: how
// cosign v3 is told about private instances.
func trustedRoot(t *testing.T) string {
	t.Helper()
	rootPEM, err := os.ReadFile(env.fulcio.RootFile)
	if err != nil {
		t.Fatal(err)
	}
	rootBlock, _ := pem.Decode(rootPEM)
	logBlock, _ := pem.Decode(env.rekor.PublicKeyPEM)
	if rootBlock == nil || logBlock == nil {
		t.Fatal("the Fulcio root or the Rekor key is not PEM")
	}
	if _, err := x509.ParseCertificate(rootBlock.Bytes); err != nil {
		t.Fatal(err)
	}
	logID := sha256.Sum256(logBlock.Bytes)
	b64 := base64.StdEncoding.EncodeToString
	since := map[string]string{"start": time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339)}
	doc := map[string]any{
		"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
		"tlogs": []any{map[string]any{
			"baseUrl": env.rekor.URL, "hashAlgorithm": "SHA2_256",
			"publicKey": map[string]any{"rawBytes": b64(logBlock.Bytes), "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": since},
			"logId":     map[string]any{"keyId": b64(logID[:])},
		}},
		"certificateAuthorities": []any{map[string]any{
			"subject":   map[string]any{"organization": "sigstore", "commonName": "ocisign test fulcio"},
			"uri":       env.fulcio.URL,
			"certChain": map[string]any{"certificates": []any{map[string]any{"rawBytes": b64(rootBlock.Bytes)}}},
			"validFor":  since,
		}},
		"ctlogs":               []any{},
		"timestampAuthorities": []any{},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
