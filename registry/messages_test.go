package registry

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ocisign/ocisign/internal/errcode"
	"github.com/ocisign/ocisign/internal/memregistry/memtest"

	"github.com/ocisign/ocisign/signing"
)

// A COSIGN_REPOSITORY that is not a repository is named in the error, with
// the shape a repository needs.
func TestBadCOSIGNRepositoryIsNamed(t *testing.T) {
	reg := newTestRegistry(t)
	digest := memtest.PushImage(t, reg.host+"/app:v1")
	c := newTestClient(Options{SignatureRepository: "bad repo!"})
	_, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app@" + digest, Signer: mustSigner(t)})
	want := `COSIGN_REPOSITORY "bad repo!" is not a repository (registry/namespace/name): `
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v, want prefix %q", err, want)
	}
	if code, retryable := errcode.Of(err); code != errcode.CodeInvalidReference || retryable {
		t.Fatalf("code %s retryable %v", code, retryable)
	}
}

// An annotation mismatch quotes both values, so "" and values with spaces
// or '=' read unambiguously; a non-string value is shown as JSON.
func TestAnnotationMismatchQuotesValues(t *testing.T) {
	reg := newTestRegistry(t)
	digest := memtest.PushImage(t, reg.host+"/app:v1")
	signer := mustSigner(t)
	c := newTestClient(Options{})
	ref := reg.host + "/app@" + digest
	if _, err := c.Sign(ctx(t), SignRequest{Reference: ref, Signer: signer, Annotations: map[string]string{"env": "a=b c"}}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Verify(ctx(t), VerifyRequest{Reference: ref, Verifier: signer.Verifier(), Annotations: map[string]string{"env": ""}})
	if code, _ := errcode.Of(err); code != errcode.CodeVerificationFailed || res == nil || len(res.Signatures) != 1 {
		t.Fatalf("got %v, %+v", err, res)
	}
	if got, want := res.Signatures[0].Error, `annotation "env" is "a=b c", want ""`; got != want {
		t.Fatalf("layer error %q, want %q", got, want)
	}

	// A payload whose annotation is a number (cosign -a cannot write one,
	// another tool could), signed by the same key.
	other := memtest.PushImage(t, reg.host+"/app:v2")
	payload, err := signing.Payload(reg.host+"/app", other, map[string]string{"n": "placeholder"})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(payload, &doc); err != nil {
		t.Fatal(err)
	}
	doc["optional"] = map[string]any{"n": 42}
	if payload, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	img := cosignImage(t, nil, false, sigLayer{payload, map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}})
	writeImage(t, reg.host+"/app:"+SignatureTag(other), img)
	res, err = c.Verify(ctx(t), VerifyRequest{Reference: reg.host + "/app@" + other, Verifier: signer.Verifier(), Annotations: map[string]string{"n": "42"}})
	if code, _ := errcode.Of(err); code != errcode.CodeVerificationFailed || res == nil || len(res.Signatures) != 1 {
		t.Fatalf("got %v, %+v", err, res)
	}
	if got, want := res.Signatures[0].Error, `annotation "n" is 42 (not a string), want "42"`; got != want {
		t.Fatalf("layer error %q, want %q", got, want)
	}
}
