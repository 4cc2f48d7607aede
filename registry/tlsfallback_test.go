package registry

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ocisign/ocisign/internal/memregistry"
)

// A loopback registry with a certificate the client does not trust: the
// https attempt fails on TLS and the plain-HTTP fallback gets 400 from the
// TLS server. The error must name the TLS problem, not only the 400.
func TestUntrustedLoopbackTLSNamesTheTLSError(t *testing.T) {
	srv := httptest.NewUnstartedServer(memregistry.Handler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	c := newTestClient(Options{})
	_, err := c.Sign(context.Background(), SignRequest{Reference: host + "/app:1", Signer: mustSigner(t)})
	if err == nil {
		t.Fatal("signing against an untrusted TLS registry succeeded")
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{"certificate", "https://" + host, "400"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
}
