package registry

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
)

// A recursive sign of an index with more children than anyone ships is
// refused before anything is signed or written.
func TestRecursiveSubjectsAreBounded(t *testing.T) {
	reg := newTestRegistry(t)
	config := rawPutBlob(t, reg.host, "app", []byte(`{}`))
	var children []string
	for i := 0; i <= maxRecursiveSubjects; i++ {
		m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
			`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":2},"layers":[],"annotations":{"n":"%d"}}`, config, i)
		d := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(m)))
		rawPutManifest(t, reg.host, "app", d, "application/vnd.oci.image.manifest.v1+json", []byte(m))
		children = append(children, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d}`, d, len(m)))
	}
	index := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` + strings.Join(children, ",") + `]}`
	rawPutManifest(t, reg.host, "app", "big", "application/vnd.oci.image.index.v1+json", []byte(index))
	_, err := newTestClient(Options{}).Sign(ctx(t), SignRequest{Reference: reg.host + "/app:big", Signer: mustSigner(t), Recursive: true})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("more than %d manifests", maxRecursiveSubjects)) {
		t.Fatalf("got %v", err)
	}
	if body, status := rawGet(t, reg.host, "app", "tags", "list"); status != 200 || strings.Contains(string(body), ".sig") {
		t.Fatalf("tags after the refusal (%d): %s", status, body)
	}
}
