package signing

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// testChain makes a root, a leaf for key signed by it (code signing, the
// e-mail SAN and Fulcio's v2 issuer extension), valid from notBefore for ten minutes.
func testChain(t *testing.T, key *ecdsa.PrivateKey, email, issuer string, notBefore time.Time) (root *x509.Certificate, leafPEM, chainPEM []byte) {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"},
		NotBefore: notBefore.Add(-time.Hour), NotAfter: notBefore.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ = x509.ParseCertificate(rootDER)
	issuerDER, _ := asn1.Marshal(issuer)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: notBefore, NotAfter: notBefore.Add(10 * time.Minute),
		EmailAddresses: []string{email}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{{Id: oidIssuerV2, Value: issuerDER}}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, root, &key.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER})
}

func TestCertificateChainIdentityAndKey(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	start := time.Now().Add(-time.Minute)
	root, leafPEM, chainPEM := testChain(t, key, "dev@example.test", "https://issuer.example.test", start)
	c, err := NewCertificate(leafPEM, chainPEM)
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer() != "https://issuer.example.test" || strings.Join(c.Identities(), ",") != "dev@example.test" {
		t.Fatalf("issuer %q identities %v", c.Issuer(), c.Identities())
	}
	if c.ChainRoot() == nil || c.HasSCT() {
		t.Fatalf("chain root %v, SCT %v", c.ChainRoot(), c.HasSCT())
	}
	if err := c.VerifyChain([]*x509.Certificate{root}, start.Add(time.Minute)); err != nil {
		t.Fatalf("chain at a time inside the validity: %v", err)
	}
	if err := c.VerifyChain([]*x509.Certificate{root}, start.Add(20*time.Minute)); err == nil {
		t.Fatal("the chain verified after the leaf expired")
	}
	other, _, _ := testChain(t, key, "x@y", "z", start)
	if err := c.VerifyChain([]*x509.Certificate{other}, start.Add(time.Minute)); err == nil {
		t.Fatal("the chain verified against another root")
	}
	signer, _ := NewSigner(key)
	if !c.CertifiesKey(signer.Verifier()) {
		t.Fatal("the certificate does not certify its own key")
	}
	stranger, _ := GenerateSigner()
	if c.CertifiesKey(stranger.Verifier()) {
		t.Fatal("the certificate certifies another key")
	}
	if v, err := VerifierFromPEM(leafPEM); err != nil || !c.CertifiesKey(v) {
		t.Fatalf("VerifierFromPEM(certificate): %v", err)
	}
	if _, err := NewCertificate([]byte("junk"), nil); err == nil {
		t.Fatal("junk parsed as a certificate")
	}
}

func TestIdentityPolicy(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, leafPEM, chainPEM := testChain(t, key, "dev@example.test", "https://issuer.example.test", time.Now())
	c, _ := NewCertificate(leafPEM, chainPEM)
	for _, tc := range []struct {
		p  IdentityPolicy
		ok bool
	}{
		{IdentityPolicy{Identity: "dev@example.test", Issuer: "https://issuer.example.test"}, true},
		{IdentityPolicy{IdentityRegexp: `.*@example\.test`, IssuerRegexp: `https://issuer\..*`}, true},
		{IdentityPolicy{IdentityRegexp: `dev`, Issuer: "https://issuer.example.test"}, false}, // whole value only
		{IdentityPolicy{Identity: "dev@example.test", Issuer: "https://other.test"}, false},
		{IdentityPolicy{Identity: "other@example.test", Issuer: "https://issuer.example.test"}, false},
	} {
		if err := tc.p.Check(c); (err == nil) != tc.ok {
			t.Errorf("%+v: %v, want ok %v", tc.p, err, tc.ok)
		}
	}
	for _, bad := range []IdentityPolicy{{Issuer: "x"}, {Identity: "x"}, {IdentityRegexp: "(", Issuer: "x"}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}
