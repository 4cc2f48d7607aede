package registry

import (
	"strings"
	"testing"

	"github.com/ocisign/ocisign/internal/memregistry/memtest"
)

// Connect does the ping and token exchange ahead: the Sign that follows
// sends no /v2/ ping of its own, and Connect reads or writes nothing.
func TestConnectWarmsTheSign(t *testing.T) {
	reg := newTestRegistry(t)
	memtest.PushImage(t, reg.host+"/app:v1")
	counter := memtest.NewCounter()
	c := newTestClient(Options{Transport: counter})
	if err := c.Connect(ctx(t), reg.host+"/app:v1"); err != nil {
		t.Fatal(err)
	}
	total, byKind := counter.Snapshot()
	if total == 0 || strings.Contains(byKind, "manifest") || strings.Contains(byKind, "upload") {
		t.Fatalf("connect sent %d requests: %s", total, byKind)
	}
	if _, err := c.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: mustSigner(t)}); err != nil {
		t.Fatal(err)
	}
	_, after := counter.Snapshot()
	if !strings.Contains(byKind, "ping") || strings.Contains(after, "ping") {
		t.Fatalf("the sign pinged again: before %s, after %s", byKind, after)
	}
	if err := c.Connect(ctx(t), "not a reference!"); err == nil {
		t.Fatal("a bad reference must be an error")
	}
}
