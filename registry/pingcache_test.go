package registry

import (
	"strings"
	"testing"

	"github.com/ocisign/ocisign/internal/memregistry/memtest"
)

// The registry's challenge does not depend on the repository: a second
// repository on the same registry is signed without another ping, and a
// different registry is pinged on its own.
func TestOnePingPerRegistry(t *testing.T) {
	reg, other := newTestRegistry(t), newTestRegistry(t)
	memtest.PushImage(t, reg.host+"/app:v1")
	memtest.PushImage(t, reg.host+"/tools/app:v1")
	memtest.PushImage(t, other.host+"/app:v1")
	counter := memtest.NewCounter()
	c := newTestClient(Options{Transport: counter})
	sign := func(ref string) string {
		t.Helper()
		if _, err := c.Sign(ctx(t), SignRequest{Reference: ref, Signer: mustSigner(t)}); err != nil {
			t.Fatal(err)
		}
		_, byKind := counter.Snapshot()
		return byKind
	}
	if first := sign(reg.host + "/app:v1"); !strings.Contains(first, "ping") {
		t.Fatalf("the first sign did not ping: %s", first)
	}
	if second := sign(reg.host + "/tools/app:v1"); strings.Contains(second, "ping") {
		t.Fatalf("a second repository of the same registry was pinged again: %s", second)
	}
	if third := sign(other.host + "/app:v1"); !strings.Contains(third, "ping") {
		t.Fatalf("another registry was not pinged: %s", third)
	}
}
