package registry

import (
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocisign/ocisign/signing"
)

// keylessCertificate reads a layer's certificate and chain and checks the
// identity policy: no download needed, so a layer for someone else costs
// nothing more.
func keylessCertificate(l v1.Descriptor, policy *KeylessPolicy) (*signing.Certificate, error) {
	leaf, ok := l.Annotations[CertificateAnnotation]
	if !ok {
		return nil, fmt.Errorf("no certificate (%s): not a keyless signature", CertificateAnnotation)
	}
	cert, err := signing.NewCertificate([]byte(leaf), []byte(l.Annotations[ChainAnnotation]))
	if err != nil {
		return nil, err
	}
	if err := policy.Identity.Check(cert); err != nil {
		return nil, err
	}
	return cert, nil
}

// checkKeyless verifies a keyless layer as cosign does: the signature with
// the certified key, the log bundle (which must record this certificate's
// key) with the trusted log keys, and the chain to a trusted root at the
// time the log integrated the entry, inside the certificate's validity.
func checkKeyless(cert *signing.Certificate, bundle string, payload, sig []byte, policy *KeylessPolicy) (*signing.LogEntry, error) {
	verifier, err := cert.Verifier()
	if err != nil {
		return nil, err
	}
	if err := verifier.Verify(payload, sig); err != nil {
		return nil, err
	}
	if policy.LogKeys == nil {
		return nil, errors.New("no transparency log key to check the bundle with")
	}
	entry, err := signing.VerifyRekorBundle(bundle, payload, sig, verifier, policy.LogKeys)
	if err != nil {
		return nil, fmt.Errorf("transparency log bundle: %v", err)
	}
	if err := cert.VerifyChain(policy.Roots, time.Unix(entry.IntegratedTime, 0)); err != nil {
		return nil, err
	}
	return &signing.LogEntry{BundleAnnotation: bundle, LogIndex: entry.LogIndex, UUID: entry.UUID, IntegratedTime: entry.IntegratedTime}, nil
}
