// Keyless signatures: a short-lived certificate (from Fulcio) for a key
// made for one signing, instead of a key the verifier already has. Offline
// checks only: the chain to a trusted root, the identity and issuer the
// certificate names, and the key it certifies.

package signing

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ocisign/ocisign/internal/bounded"
	"github.com/ocisign/ocisign/internal/errcode"
)

// Fulcio's certificate extensions (docs: fulcio/docs/oid-info.md).
var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1} // raw string (deprecated)
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8} // DER UTF8String
	oidSCTList  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}
)

// MaxCertificateFileSize bounds a root certificate file.
const MaxCertificateFileSize = 1 << 20

// Certificate is a leaf certificate and the chain that issued it, as the
// legacy .sig layer stores them: dev.sigstore.cosign/certificate (the leaf,
// PEM) and dev.sigstore.cosign/chain (intermediates, then the root, PEM).
type Certificate struct {
	Leaf     *x509.Certificate
	LeafPEM  []byte
	ChainPEM []byte
	chain    []*x509.Certificate
}

// NewCertificate parses a leaf and its chain (PEM blocks, leaf's issuer first).
func NewCertificate(leafPEM, chainPEM []byte) (*Certificate, error) {
	leaves, err := parseCertificates(leafPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	if len(leaves) != 1 {
		return nil, fmt.Errorf("certificate: want one certificate, got %d", len(leaves))
	}
	chain, err := parseCertificates(chainPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate chain: %w", err)
	}
	return &Certificate{Leaf: leaves[0], LeafPEM: leafPEM, ChainPEM: chainPEM, chain: chain}, nil
}

// CertificateFromChain splits a chain as Fulcio returns it (PEM strings,
// leaf first) into leaf and chain.
func CertificateFromChain(pems []string) (*Certificate, error) {
	if len(pems) == 0 {
		return nil, errors.New("empty certificate chain")
	}
	var chain bytes.Buffer
	for _, p := range pems[1:] {
		chain.WriteString(strings.TrimSpace(p))
		chain.WriteString("\n")
	}
	return NewCertificate([]byte(strings.TrimSpace(pems[0])+"\n"), chain.Bytes())
}

func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if len(bytes.TrimSpace(rest)) != 0 {
				return nil, errors.New("not PEM")
			}
			return out, nil
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q, want CERTIFICATE", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// LoadRootCertificates reads trusted roots (PEM, one or more certificates)
// from path.
func LoadRootCertificates(path string) ([]*x509.Certificate, error) {
	b, err := bounded.ReadFile(path, MaxCertificateFileSize)
	if err == nil {
		var roots []*x509.Certificate
		if roots, err = parseCertificates(b); err == nil && len(roots) == 0 {
			err = errors.New("no certificate in it")
		}
		if err == nil {
			return roots, nil
		}
	}
	return nil, &errcode.Error{Op: "root certificates", Ref: path, Code: errcode.CodeInvalidRequest, Err: err, Detail: err.Error()}
}

// Verifier is the key the certificate certifies.
func (c *Certificate) Verifier() (*Verifier, error) { return NewVerifier(c.Leaf.PublicKey) }

// CertifiesKey reports whether the certificate is for v's public key.
func (c *Certificate) CertifiesKey(v *Verifier) bool {
	own, err := c.Verifier()
	if err != nil {
		return false
	}
	a, errA := own.PublicKeyPEM()
	b, errB := v.PublicKeyPEM()
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

// HasSCT reports whether the leaf carries an embedded certificate-transparency timestamp.
func (c *Certificate) HasSCT() bool {
	for _, e := range c.Leaf.Extensions {
		if e.Id.Equal(oidSCTList) {
			return true
		}
	}
	return false
}

// VerifyChain checks that the leaf chains to one of roots through the
// stored intermediates and was valid at the moment at, for code signing.
func (c *Certificate) VerifyChain(roots []*x509.Certificate, at time.Time) error {
	rootPool, intermediates := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		rootPool.AddCert(r)
	}
	for _, ic := range c.chain {
		if !isSelfSigned(ic) {
			intermediates.AddCert(ic)
		}
	}
	_, err := c.Leaf.Verify(x509.VerifyOptions{Roots: rootPool, Intermediates: intermediates, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}})
	if err != nil {
		return fmt.Errorf("the certificate does not chain to a trusted root at %s: %w", at.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// ChainRoot is the last certificate of the stored chain, if it is self-signed.
func (c *Certificate) ChainRoot() *x509.Certificate {
	if n := len(c.chain); n > 0 && isSelfSigned(c.chain[n-1]) {
		return c.chain[n-1]
	}
	return nil
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// Identities are the leaf's subject alternative names: emails and URIs.
func (c *Certificate) Identities() []string {
	out := append([]string(nil), c.Leaf.EmailAddresses...)
	for _, u := range c.Leaf.URIs {
		out = append(out, u.String())
	}
	return out
}

// Issuer is the OIDC issuer Fulcio recorded in the leaf ("" if none).
func (c *Certificate) Issuer() string {
	for _, e := range c.Leaf.Extensions {
		if e.Id.Equal(oidIssuerV2) {
			var s string
			if _, err := asn1.Unmarshal(e.Value, &s); err == nil {
				return s
			}
		}
	}
	for _, e := range c.Leaf.Extensions {
		if e.Id.Equal(oidIssuerV1) {
			return string(e.Value)
		}
	}
	return ""
}

// IdentityPolicy is what a keyless signature must name: an identity (a
// subject alternative name) and an OIDC issuer, each exactly or by a
// regular expression (matched against the whole value).
type IdentityPolicy struct {
	Identity, IdentityRegexp string
	Issuer, IssuerRegexp     string
}

// Validate reports a policy that names no identity or issuer, or a bad regexp.
func (p IdentityPolicy) Validate() error {
	if p.Identity == "" && p.IdentityRegexp == "" {
		return errors.New("a keyless verification needs --certificate-identity or --certificate-identity-regexp")
	}
	if p.Issuer == "" && p.IssuerRegexp == "" {
		return errors.New("a keyless verification needs --certificate-oidc-issuer or --certificate-oidc-issuer-regexp")
	}
	for _, r := range []string{p.IdentityRegexp, p.IssuerRegexp} {
		if _, err := regexp.Compile(r); err != nil {
			return fmt.Errorf("bad regular expression %q: %v", r, err)
		}
	}
	return nil
}

// Check reports why c does not satisfy the policy, nil when it does.
func (p IdentityPolicy) Check(c *Certificate) error {
	if issuer := c.Issuer(); !matches(issuer, p.Issuer, p.IssuerRegexp) {
		return fmt.Errorf("the certificate's OIDC issuer is %q, not the one asked for", issuer)
	}
	ids := c.Identities()
	for _, id := range ids {
		if matches(id, p.Identity, p.IdentityRegexp) {
			return nil
		}
	}
	return fmt.Errorf("the certificate's identities %q do not match the one asked for", ids)
}

func matches(value, exact, pattern string) bool {
	if exact != "" && value != exact {
		return false
	}
	if pattern != "" {
		re, err := regexp.Compile("^(?:" + pattern + ")$")
		if err != nil || !re.MatchString(value) {
			return false
		}
	}
	return true
}

// VerifierFromPEM is the key of a PUBLIC KEY block, or of a keyless
// signature's CERTIFICATE: a log entry records either.
func VerifierFromPEM(data []byte) (*Verifier, error) {
	if block, _ := pem.Decode(data); block != nil && block.Type == "CERTIFICATE" {
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
		return NewVerifier(c.PublicKey)
	}
	return ParsePublicKey(data, "")
}
