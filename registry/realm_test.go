package registry

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ocisign/ocisign/internal/errcode"
	"github.com/ocisign/ocisign/internal/memregistry/memtest"
)

// loopbackDialer sends every host name to 127.0.0.1 (same port): a test of
// a "remote" host never leaves the machine.
func loopbackDialer() http.RoundTripper {
	d := &net.Dialer{}
	return &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
	}}
}

// A loopback (plain HTTP) registry whose challenge names an http:// token
// service on another host would get OCIBUILD_PUSH_USERNAME/PASSWORD sent
// there in cleartext. That is refused unless the token host is itself
// allowed plain HTTP; the registry's own host is compared canonically.
func TestPlainHTTPTokenRealmOnAnotherHost(t *testing.T) {
	t.Setenv("OCIBUILD_PUSH_TOKEN", "")
	t.Setenv("OCIBUILD_PUSH_USERNAME", "robot")
	t.Setenv("OCIBUILD_PUSH_PASSWORD", "realm-secret")
	var tokenHits atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenHits.Add(1)
		if u, p, _ := r.BasicAuth(); u != "robot" || p != "realm-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"token":"tok"}`))
	}))
	t.Cleanup(tokens.Close)
	_, tokenPort, _ := net.SplitHostPort(strings.TrimPrefix(tokens.URL, "http://"))
	realmHost := "tokens.example.test:" + tokenPort

	var reg *testRegistry
	reg = frontedRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") == "Bearer tok" {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+realmHost+`/token",service="test"`)
		w.WriteHeader(http.StatusUnauthorized)
		return true
	})
	memtest.PushImage(t, reg.host+"/app:v1")
	reg.armed.Store(true)

	refused := newTestClient(Options{Transport: loopbackDialer()})
	_, err := refused.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: mustSigner(t)})
	if code, _ := errcode.Of(err); code != errcode.CodeInsecureRegistry || !strings.Contains(err.Error(), realmHost) {
		t.Fatalf("want insecure_registry naming %s, got %v", realmHost, err)
	}
	if strings.Contains(err.Error(), "realm-secret") {
		t.Fatalf("password in error: %v", err)
	}
	if n := tokenHits.Load(); n != 0 {
		t.Fatalf("the plain-HTTP token service got %d request(s)", n)
	}

	// Listed (any case, the registry's own host written with :443 elsewhere
	// is the same server): allowed, and the credentials work.
	allowed := newTestClient(Options{Transport: loopbackDialer(), InsecureRegistries: []string{strings.ToUpper(realmHost)}})
	if _, err := allowed.Sign(ctx(t), SignRequest{Reference: reg.host + "/app:v1", Signer: mustSigner(t)}); err != nil {
		t.Fatalf("token host in insecure_registries: %v", err)
	}
	if tokenHits.Load() == 0 {
		t.Fatal("the allowed token service was never asked")
	}
}

func TestSameHostPort(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"Registry.Example:443", "registry.example", true},
		{"registry.example", "REGISTRY.EXAMPLE", true},
		{"registry.example:5000", "registry.example", false},
		{"[::1]:443", "[::1]", true},
		{"127.0.0.1:5000", "127.0.0.1:5001", false},
	} {
		if got := sameHostPort(tc.a, tc.b); got != tc.want {
			t.Errorf("sameHostPort(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}
