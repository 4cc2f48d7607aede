package keyless

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocisign/ocisign/internal/memregistry"
	th "github.com/ocisign/ocisign/test/internal/harness"
	"github.com/ocisign/ocisign/test/internal/oidctest"
)

var repoN atomic.Int32

// pushImage pushes a fresh image and returns "registry/repo@digest".
func pushImage(t *testing.T) string {
	t.Helper()
	repo := fmt.Sprintf("%s/keyless/app%d", env.pkg.Reg.Addr, repoN.Add(1))
	d, err := memregistry.PushImage(repo + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	return repo + "@" + d
}

// sigTag is the digest the image's .sig tag points at, "" when there is none.
func sigTag(t *testing.T, image string) string {
	t.Helper()
	repo, digest, _ := strings.Cut(image, "@")
	tag, err := name.NewTag(repo + ":" + strings.Replace(digest, ":", "-", 1) + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(tag)
	if err != nil {
		return ""
	}
	return desc.Digest.String()
}

// keylessArgs point ocisign at the local Fulcio and Rekor.
func keylessArgs() []string {
	return []string{"--keyless", "--fulcio-url", env.fulcio.URL, "--fulcio-root", env.fulcio.RootFile, "--insecure-ignore-sct",
		"--rekor-url", env.rekor.URL, "--rekor-public-key", env.rekor.PublicKeyFile}
}

func ocisign(t *testing.T, extraEnv []string, args ...string) th.Result {
	t.Helper()
	r, err := th.Run(th.IsolatedEnv(env.pkg.Home, env.pkg.TUF, extraEnv...), 2*time.Minute, env.pkg.Ocisign, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// signKeyless signs image as the test issuer's Email with token.
func signKeyless(t *testing.T, token, image string, extra ...string) th.Result {
	t.Helper()
	args := append(append([]string{"sign"}, keylessArgs()...), extra...)
	r := ocisign(t, []string{"SIGSTORE_ID_TOKEN=" + token}, append(args, image)...)
	if strings.Contains(r.Stdout+r.Stderr, token) {
		t.Fatalf("ocisign printed the identity token:\n%s", r)
	}
	return r
}

// cosignVerify runs cosign `version` ("v2"/"v3") verify by identity and
// issuer, with the local Fulcio root and Rekor key given by environment.
func cosignVerify(t *testing.T, version, image, identity, issuer string) (th.Result, bool) {
	t.Helper()
	args := []string{"verify", "--certificate-identity", identity, "--certificate-oidc-issuer", issuer,
		"--insecure-ignore-sct", "--allow-insecure-registry"}
	if version == "v3" {
		args = append(args, "--offline")
	}
	r, err := th.Run(th.IsolatedEnv(env.pkg.Home, env.pkg.TUF, "SIGSTORE_ROOT_FILE="+env.fulcio.RootFile,
		"SIGSTORE_REKOR_PUBLIC_KEY="+env.rekor.PublicKeyFile), 2*time.Minute, env.pkg.Tools.Cosign[version], append(args, image)...)
	if err != nil {
		t.Fatal(err)
	}
	return r, r.Code == 0
}

func TestKeylessSignatureVerifiedByCosign(t *testing.T) {
	image := pushImage(t)
	token := env.issuer.Token(oidctest.EmailClaims())
	if r := signKeyless(t, token, image); r.Code != 0 {
		t.Fatalf("keyless sign failed:\n%s", r)
	} else if !strings.Contains(r.Stderr, "signing keylessly as "+oidctest.Email) {
		t.Errorf("no line naming the identity:\n%s", r.Stderr)
	}
	for _, v := range []string{"v2", "v3"} {
		if r, ok := cosignVerify(t, v, image, oidctest.Email, env.issuer.URL); !ok {
			t.Errorf("cosign %s rejects ocisign's keyless signature:\n%s", v, r)
		} else if !strings.Contains(r.Stderr, "verified using trusted certificate authority certificates") ||
			!strings.Contains(r.Stderr, "transparency log was verified offline") {
			t.Errorf("cosign %s did not say it checked the certificate and the log entry:\n%s", v, r)
		}
		if r, ok := cosignVerify(t, v, image, "someone-else@ocisign.test", env.issuer.URL); ok {
			t.Errorf("cosign %s accepted a wrong identity:\n%s", v, r)
		}
		if r, ok := cosignVerify(t, v, image, oidctest.Email, "https://other-issuer.test"); ok {
			t.Errorf("cosign %s accepted a wrong issuer:\n%s", v, r)
		}
	}
	// cosign v3 with the private instances in a trusted root (no environment).
	root := trustedRoot(t)
	for _, tc := range []struct {
		identity string
		ok       bool
	}{{oidctest.Email, true}, {"someone-else@ocisign.test", false}} {
		r, err := th.Run(th.IsolatedEnv(env.pkg.Home, env.pkg.TUF), 2*time.Minute, env.pkg.Tools.Cosign["v3"],
			"verify", "--trusted-root", root, "--certificate-identity", tc.identity, "--certificate-oidc-issuer", env.issuer.URL,
			"--insecure-ignore-sct", "--allow-insecure-registry", "--offline", image)
		if err != nil {
			t.Fatal(err)
		}
		if (r.Code == 0) != tc.ok {
			t.Errorf("cosign v3 --trusted-root as %s: exit %d, want success %v:\n%s", tc.identity, r.Code, tc.ok, r)
		}
	}
	// ocisign's own keyless verify agrees with cosign.
	for _, tc := range []struct {
		policy []string
		ok     bool
	}{
		{[]string{"--certificate-identity", oidctest.Email, "--certificate-oidc-issuer", env.issuer.URL}, true},
		{[]string{"--certificate-identity-regexp", `ci@ocisign\.test`, "--certificate-oidc-issuer-regexp", `http://127\.0\.0\.1:\d+`}, true},
		{[]string{"--certificate-identity", "someone-else@ocisign.test", "--certificate-oidc-issuer", env.issuer.URL}, false},
		{[]string{"--certificate-identity", oidctest.Email, "--certificate-oidc-issuer", "https://other-issuer.test"}, false},
	} {
		args := append(append([]string{"verify"}, tc.policy...), "--fulcio-root", env.fulcio.RootFile,
			"--rekor-public-key", env.rekor.PublicKeyFile, image)
		if r := ocisign(t, nil, args...); (r.Code == 0) != tc.ok {
			t.Errorf("ocisign verify %v: exit %d, want success %v:\n%s", tc.policy, r.Code, tc.ok, r)
		}
	}
	other := filepath.Join(t.TempDir(), "other-root.pem")
	if err := os.WriteFile(other, selfSignedCA(t), 0o644); err != nil {
		t.Fatal(err)
	}
	r := ocisign(t, nil, "verify", "--certificate-identity", oidctest.Email, "--certificate-oidc-issuer", env.issuer.URL,
		"--fulcio-root", other, "--rekor-public-key", env.rekor.PublicKeyFile, image)
	if r.Code != 1 || !strings.Contains(r.Stdout, "does not chain to a trusted root") {
		t.Errorf("ocisign verify with another root: exit %d\n%s", r.Code, r)
	}
}

func TestKeylessRecursiveIndex(t *testing.T) {
	repo := fmt.Sprintf("%s/keyless/multi%d", env.pkg.Reg.Addr, repoN.Add(1))
	idx, children, err := memregistry.PushIndex(repo+":v1", memregistry.Platforms(2))
	if err != nil {
		t.Fatal(err)
	}
	if r := signKeyless(t, env.issuer.Token(oidctest.EmailClaims()), repo+"@"+idx, "--recursive"); r.Code != 0 {
		t.Fatalf("recursive keyless sign failed:\n%s", r)
	}
	for _, d := range append([]string{idx}, children...) {
		for _, v := range []string{"v2", "v3"} {
			if r, ok := cosignVerify(t, v, repo+"@"+d, oidctest.Email, env.issuer.URL); !ok {
				t.Errorf("cosign %s rejects %s:\n%s", v, d, r)
			}
		}
	}
}

// A key-based and a keyless signature on one image: each verifies the
// way it is meant to, and neither displaced the other.
func TestKeyAndKeylessOnOneImage(t *testing.T) {
	image := pushImage(t)
	prefix := filepath.Join(t.TempDir(), "cosign")
	pw := "COSIGN_PASSWORD=keyless-e2e-pw"
	if r := ocisign(t, []string{pw}, "generate-key-pair", "--output-key-prefix", prefix); r.Code != 0 {
		t.Fatalf("generate-key-pair:\n%s", r)
	}
	if r := ocisign(t, []string{pw}, "sign", "--key", prefix+".key", image); r.Code != 0 {
		t.Fatalf("key sign:\n%s", r)
	}
	if r := signKeyless(t, env.issuer.Token(oidctest.EmailClaims()), image); r.Code != 0 {
		t.Fatalf("keyless sign:\n%s", r)
	}
	for _, v := range []string{"v2", "v3"} {
		if r, ok := cosignVerify(t, v, image, oidctest.Email, env.issuer.URL); !ok {
			t.Errorf("cosign %s rejects the keyless signature next to a key-based one:\n%s", v, r)
		}
		r, err := th.Run(th.IsolatedEnv(env.pkg.Home, env.pkg.TUF), 2*time.Minute, env.pkg.Tools.Cosign[v],
			append(th.CosignVerifyArgs(prefix+".pub"), "--allow-insecure-registry", image)...)
		if err != nil || r.Code != 0 {
			t.Errorf("cosign %s rejects the key-based signature next to a keyless one: %v\n%s", v, err, r)
		}
	}
}

// With no key configured, GitHub Actions' token variables make ocisign
// sign keylessly (with a notice), asking the endpoint for audience sigstore.
func TestGitHubActionsTokenWithoutAKey(t *testing.T) {
	image := pushImage(t)
	const bearer = "actions-request-token-secret"
	url := env.issuer.ActionsEndpoint(bearer, oidctest.EmailClaims())
	before := env.issuer.ActionsRequests.Load()
	args := []string{"sign", "--fulcio-url", env.fulcio.URL, "--fulcio-root", env.fulcio.RootFile, "--insecure-ignore-sct",
		"--rekor-url", env.rekor.URL, "--rekor-public-key", env.rekor.PublicKeyFile, image}
	r := ocisign(t, []string{"ACTIONS_ID_TOKEN_REQUEST_URL=" + url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN=" + bearer}, args...)
	if r.Code != 0 || !strings.Contains(r.Stderr, "signing keylessly") {
		t.Fatalf("sign with GitHub Actions' token and no key:\n%s", r)
	}
	if strings.Contains(r.Stdout+r.Stderr, bearer) {
		t.Fatalf("the request token was printed:\n%s", r)
	}
	if env.issuer.ActionsRequests.Load() != before+1 {
		t.Fatalf("%d requests to the token endpoint, want 1", env.issuer.ActionsRequests.Load()-before)
	}
	if r, ok := cosignVerify(t, "v2", image, oidctest.Email, env.issuer.URL); !ok {
		t.Errorf("cosign v2 rejects the signature:\n%s", r)
	}
}

// Every failure before the push is a specific error, prints no token, and
// leaves the image without a .sig tag.
func TestKeylessFailuresPushNothing(t *testing.T) {
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html>not fulcio</html>"))
	}))
	defer garbage.Close()
	otherRoot := filepath.Join(t.TempDir(), "other-root.pem")
	if err := os.WriteFile(otherRoot, selfSignedCA(t), 0o644); err != nil {
		t.Fatal(err)
	}
	closed := closedURL(t)
	good := oidctest.EmailClaims()
	expired := oidctest.EmailClaims()
	expired["exp"] = time.Now().Add(-time.Minute).Unix()
	wrongAud := oidctest.EmailClaims()
	wrongAud["aud"] = "https://github.com/ocisign"
	for _, tc := range []struct {
		name   string
		claims map[string]any
		args   []string
		want   []string
	}{
		{"expired token", expired, nil, []string{"identity token", "expired"}},
		{"wrong audience", wrongAud, nil, []string{"identity token", `Fulcio needs "sigstore"`}},
		{"Fulcio down", good, []string{"--fulcio-url", closed}, []string{"Fulcio is unreachable"}},
		{"Fulcio answers garbage", good, []string{"--fulcio-url", garbage.URL}, []string{"not Fulcio's JSON"}},
		{"chain does not reach the given root", good, []string{"--fulcio-root", otherRoot}, []string{"does not chain to a trusted root"}},
		{"Rekor down", good, []string{"--rekor-url", closed}, []string{"transparency log upload", "unreachable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			image := pushImage(t)
			// Later flags win: the table overrides keylessArgs.
			r := signKeyless(t, env.issuer.Token(tc.claims), image, tc.args...)
			if r.Code != 1 {
				t.Fatalf("exit %d, want 1:\n%s", r.Code, r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.Stderr)
				}
			}
			if d := sigTag(t, image); d != "" {
				t.Errorf("a .sig tag was pushed (%s) although signing failed", d)
			}
		})
	}
}

func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func selfSignedCA(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "not fulcio"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
