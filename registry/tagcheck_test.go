package registry

import (
	"context"
	"strings"
	"testing"

	"github.com/ocisign/ocisign/internal/memregistry/memtest"
)

// The rebar3 plugin names the tag ocibuild printed and the digest it
// pushed: the digest is signed whatever the tag points to now, and a moved
// tag is reported with both digests.
func TestSignDigestWarnsWhenTheTagMoved(t *testing.T) {
	reg := newTestRegistry(t)
	c := newTestClient(Options{})
	signer := mustSigner(t)
	pushed := memtest.PushImage(t, reg.host+"/app:1.0")

	res, err := c.Sign(context.Background(), SignRequest{Reference: reg.host + "/app:1.0", Digest: pushed, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 0 {
		t.Fatalf("tag still points at the digest, got warnings %q", res.Warnings)
	}

	intruder := memtest.PushImage(t, reg.host+"/app:1.0")
	res, err = c.Sign(context.Background(), SignRequest{Reference: reg.host + "/app:1.0", Digest: pushed, Signer: signer,
		Annotations: map[string]string{"run": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Signed[0].Digest != pushed || len(res.Signed) != 1 {
		t.Fatalf("signed %+v, want only %s", res.Signed, pushed)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], intruder) || !strings.Contains(res.Warnings[0], pushed) {
		t.Fatalf("want one warning naming %s and %s, got %q", intruder, pushed, res.Warnings)
	}
	if _, status := rawGet(t, reg.host, "app", "manifests", SignatureTag(intruder)); status != 404 {
		t.Fatalf("the intruder %s got a signature", intruder)
	}
}

func TestSignTagOrDigestAloneHasNoTagWarning(t *testing.T) {
	reg := newTestRegistry(t)
	c := newTestClient(Options{})
	d := memtest.PushImage(t, reg.host+"/app:1.0")
	for _, ref := range []string{reg.host + "/app:1.0", reg.host + "/app@" + d} {
		res, err := c.Sign(context.Background(), SignRequest{Reference: ref, Signer: mustSigner(t)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Warnings) != 0 {
			t.Fatalf("%s: unexpected warnings %q", ref, res.Warnings)
		}
	}
}
