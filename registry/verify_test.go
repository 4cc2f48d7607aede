package registry

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ocisign/ocisign/internal/errcode"
	"github.com/ocisign/ocisign/internal/memregistry/memtest"
	"github.com/ocisign/ocisign/signing"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

func mustVerifyFail(t *testing.T, res *VerifyResult, err error, want string) {
	t.Helper()
	if code, retry := errcode.Of(err); code != errcode.CodeVerificationFailed || retry {
		t.Fatalf("want verification_failed, got %v (%s)", err, code)
	}
	if res == nil {
		t.Fatal("Verify returned no result with verification_failed")
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not mention %q", err, want)
	}
	if res.Valid != 0 {
		t.Fatalf("Valid=%d with an error", res.Valid)
	}
}

func TestVerify(t *testing.T) {
	reg := newTestRegistry(t)
	digest := memtest.PushImage(t, reg.host+"/app:v1")
	otherDigest := memtest.PushImage(t, reg.host+"/app:v2")
	c := newTestClient(Options{})
	key, wrongKey := mustSigner(t), mustSigner(t)
	ref := reg.host + "/app:v1"

	unsigned, err := c.Verify(ctx(t), VerifyRequest{Reference: ref, Verifier: key.Verifier()})
	mustVerifyFail(t, unsigned, err, "no signatures found")

	if _, err := c.Sign(ctx(t), SignRequest{Reference: ref, Signer: key, Annotations: map[string]string{"env": "prod"}}); err != nil {
		t.Fatal(err)
	}

	t.Run("valid", func(t *testing.T) {
		res, err := c.Verify(ctx(t), VerifyRequest{Reference: ref, Verifier: key.Verifier(), Annotations: map[string]string{"env": "prod"}})
		if err != nil || res.Valid != 1 || len(res.Signatures) != 1 || !res.Signatures[0].Valid {
			t.Fatalf("%v %+v", err, res)
		}
		if res.Digest != digest || res.SignatureRef != reg.host+"/app:"+SignatureTag(digest) || !strings.Contains(res.Signatures[0].Payload, digest) {
			t.Fatalf("result %+v", res)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		res, err := c.Verify(ctx(t), VerifyRequest{Reference: ref, Verifier: wrongKey.Verifier()})
		mustVerifyFail(t, res, err, "does not verify")
		if len(res.Signatures) != 1 || res.Signatures[0].Valid || res.Signatures[0].Error == "" {
			t.Fatalf("per-layer verdict missing: %+v", res.Signatures)
		}
	})
	t.Run("annotation mismatch", func(t *testing.T) {
		res, err := c.Verify(ctx(t), VerifyRequest{Reference: ref, Verifier: key.Verifier(), Annotations: map[string]string{"env": "dev"}})
		mustVerifyFail(t, res, err, `annotation "env"`)
		res, err = c.Verify(ctx(t), VerifyRequest{Reference: ref, Verifier: key.Verifier(), Annotations: map[string]string{"team": "x"}})
		mustVerifyFail(t, res, err, `"team" missing`)
	})
	t.Run("signature for another digest", func(t *testing.T) {
		sigManifest := rawManifestBytes(t, reg.host, "app", SignatureTag(digest))
		rawPutManifest(t, reg.host, "app", SignatureTag(otherDigest), string(types.OCIManifestSchema1), sigManifest)
		res, err := c.Verify(ctx(t), VerifyRequest{Reference: reg.host + "/app:v2", Verifier: key.Verifier()})
		mustVerifyFail(t, res, err, "signature is for "+digest+", not "+otherDigest)
	})
	t.Run("tampered payload", func(t *testing.T) {
		target := memtest.PushImage(t, reg.host+"/app:v3")
		if _, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v3", Signer: key}); err != nil {
			t.Fatal(err)
		}
		raw, m, payloads := readSig(t, reg.host, "app", target)
		tampered := bytes.Replace(payloads[0], []byte(`"optional":null`), []byte(`"optional":{"evil":"yes"}`), 1)
		if bytes.Equal(tampered, payloads[0]) {
			t.Fatal("tampering did not change the payload")
		}
		td := rawPutBlob(t, reg.host, "app", tampered)
		swapped := bytes.Replace(raw, []byte(m.Layers[0].Digest.String()), []byte(td), 1)
		swapped = bytes.Replace(swapped, []byte(`"size":`+itoa(len(payloads[0]))), []byte(`"size":`+itoa(len(tampered))), 1)
		rawPutManifest(t, reg.host, "app", SignatureTag(target), string(types.OCIManifestSchema1), swapped)
		res, err := c.Verify(ctx(t), VerifyRequest{Reference: reg.host + "/app:v3", Verifier: key.Verifier()})
		mustVerifyFail(t, res, err, "does not verify")
		if res.Signatures[0].Digest != td {
			t.Fatalf("verdict names %s, want the tampered blob %s", res.Signatures[0].Digest, td)
		}
	})
	t.Run("one valid layer among invalid ones", func(t *testing.T) {
		if _, err := c.Sign(ctx(t), SignRequest{Reference: ref, Signer: wrongKey}); err != nil {
			t.Fatal(err)
		}
		res, err := c.Verify(ctx(t), VerifyRequest{Reference: ref, Verifier: key.Verifier()})
		if err != nil || res.Valid != 1 || len(res.Signatures) != 2 || res.Signatures[1].Valid || res.Signatures[1].Error == "" {
			t.Fatalf("%v %+v", err, res)
		}
	})
	t.Run("absent image", func(t *testing.T) {
		_, err := c.Verify(ctx(t), VerifyRequest{Reference: reg.host + "/app:nope", Verifier: key.Verifier()})
		if code, _ := errcode.Of(err); code != errcode.CodeNotFound {
			t.Fatalf("got %v", err)
		}
	})
}

// fakeLog stands in for a transparency log server: the registry package
// only stores what the uploader returns.
type fakeLog struct{ bundle string }

func (f fakeLog) Upload(_ context.Context, payload, sig, pub []byte) (*signing.LogEntry, error) {
	if len(payload) == 0 || len(sig) == 0 || !bytes.Contains(pub, []byte("PUBLIC KEY")) {
		return nil, errors.New("bad upload")
	}
	return &signing.LogEntry{BundleAnnotation: f.bundle, LogIndex: 42, UUID: "uuid-1"}, nil
}

// BundleCheck: this stand-in cannot check bundles.
func (fakeLog) BundleCheck(context.Context, *signing.Verifier) (signing.BundleCheck, error) {
	return nil, nil
}

func TestTlogBundleIsStoredAndChecked(t *testing.T) {
	reg := newTestRegistry(t)
	digest := memtest.PushImage(t, reg.host+"/app:v1")
	memtest.PushImage(t, reg.host+"/app:v2")
	c := newTestClient(Options{})
	key := mustSigner(t)
	bundle := `{"SignedEntryTimestamp":"c2V0","Payload":{"logIndex":42}}`
	res, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: key, Tlog: fakeLog{bundle}})
	if err != nil || res.Signed[0].LogIndex == nil || *res.Signed[0].LogIndex != 42 || res.Signed[0].LogUUID != "uuid-1" {
		t.Fatalf("%v %+v", err, res)
	}
	_, m, _ := readSig(t, reg.host, "app", digest)
	if m.Layers[0].Annotations[BundleAnnotation] != bundle {
		t.Fatalf("bundle annotation %q", m.Layers[0].Annotations[BundleAnnotation])
	}

	good := func(b string, payload, sig []byte) (*signing.LogEntry, error) {
		if b != bundle || len(payload) == 0 || len(sig) == 0 {
			return nil, errors.New("bundle mismatch")
		}
		return &signing.LogEntry{LogIndex: 42, UUID: "uuid-1"}, nil
	}
	bad := func(string, []byte, []byte) (*signing.LogEntry, error) { return nil, errors.New("SET does not verify") }

	vr, err := c.Verify(ctx(t), VerifyRequest{Reference: reg.host + "/app:v1", Verifier: key.Verifier(), BundleCheck: good, RequireTlog: true})
	if err != nil || vr.Valid != 1 || vr.Signatures[0].LogIndex == nil || *vr.Signatures[0].LogIndex != 42 {
		t.Fatalf("%v %+v", err, vr)
	}
	vr, err = c.Verify(ctx(t), VerifyRequest{Reference: reg.host + "/app:v1", Verifier: key.Verifier(), BundleCheck: bad, RequireTlog: true})
	mustVerifyFail(t, vr, err, "SET does not verify")
	// Without RequireTlog a bad bundle is not fatal (cosign --insecure-ignore-tlog).
	if vr, err = c.Verify(ctx(t), VerifyRequest{Reference: reg.host + "/app:v1", Verifier: key.Verifier(), BundleCheck: bad}); err != nil || vr.Valid != 1 {
		t.Fatalf("%v", err)
	}

	// A signature without a bundle fails when the log is required.
	if _, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v2", Signer: key}); err != nil {
		t.Fatal(err)
	}
	vr, err = c.Verify(ctx(t), VerifyRequest{Reference: reg.host + "/app:v2", Verifier: key.Verifier(), BundleCheck: good, RequireTlog: true})
	mustVerifyFail(t, vr, err, "no transparency log bundle")

	// A failing upload pushes nothing.
	target := memtest.PushImage(t, reg.host+"/app:v3")
	_, err = c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v3", Signer: key, Tlog: fakeLog{""}})
	if code, _ := errcode.Of(err); code != errcode.CodeTlogError {
		t.Fatalf("empty bundle: %v", err)
	}
	if _, status := rawGet(t, reg.host, "app", "manifests", SignatureTag(target)); status != 404 {
		t.Fatal("pushed a signature although the log upload failed")
	}
}
