// Package registry talks to OCI registries: it resolves references, reads and
// appends cosign signature manifests (the legacy sha256-<hex>.sig tag layout),
// and verifies what it finds with the signing package. The CLI and the port
// both call Client.Sign and Client.Verify, so there is one implementation.
package registry

import (
	"context"
	"crypto/x509"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/ocisign/ocisign/signing"
)

// Options configure a Client. The zero value is usable.
type Options struct {
	// Keychain resolves credentials; nil means DefaultKeychain (ocibuild's
	// OCIBUILD_PUSH_* variables, then docker config.json and helpers).
	Keychain authn.Keychain
	// AllowInsecure permits plain HTTP to any registry (cosign's
	// --allow-insecure-registry). Loopback registries always may use HTTP.
	AllowInsecure bool
	// InsecureRegistries lists hosts ("host[:port]") allowed plain HTTP.
	InsecureRegistries []string
	// Timeout bounds each Sign or Verify call; 0 means DefaultTimeout.
	Timeout time.Duration
	// SignatureRepository overrides where .sig tags live (COSIGN_REPOSITORY).
	SignatureRepository string
	// Transport is the base HTTP transport (tests count requests with it).
	Transport http.RoundTripper
	// Logf receives progress lines; nil discards them. Never gets secrets.
	Logf func(format string, args ...any)
}

// DefaultTimeout bounds one Sign or Verify call when Options.Timeout is 0.
const DefaultTimeout = 5 * time.Minute

// SignRequest asks for one image (and with Recursive, its children) to be signed.
type SignRequest struct {
	// Reference is "registry/repo[:tag][@digest]".
	Reference string
	// Digest, when set, is the digest to sign; it must exist in the
	// repository. It wins over any digest or tag in Reference.
	Digest string
	Signer *signing.Signer
	// Annotations go into the payload's "optional" map (cosign -a k=v).
	Annotations map[string]string
	// Recursive signs every child manifest of an index, nested indexes too.
	Recursive bool
	// Tlog, when set, records each signature in a transparency log before
	// anything is pushed.
	Tlog TransparencyLog
	// Certificate, for a keyless signature, certifies Signer's key (a
	// short-lived Fulcio certificate): it goes into each layer, and into
	// the log entry instead of the bare key. It requires Tlog: without the
	// log's time the certificate is worthless once it expires.
	Certificate *signing.Certificate
	// JustPushed says the caller pushed the image moments ago (the rebar3
	// flow), so it most likely has no signature yet: round 1 then also
	// uploads the config of a first signature, which saves a round trip when
	// there is none and costs one unused blob upload when there is.
	JustPushed bool
}

// TransparencyLog is what Sign needs from a transparency log (tlog.Client):
// record a signature, returning the bundle annotation to store with it, and
// check an existing bundle offline, so that a re-sign whose signature is
// already logged makes no new entry. A BundleCheck of nil, nil means the log
// cannot check bundles; a log-backed request then never deduplicates.
type TransparencyLog interface {
	Upload(ctx context.Context, payload, signature, publicKeyPEM []byte) (*signing.LogEntry, error)
	BundleCheck(ctx context.Context, v *signing.Verifier) (signing.BundleCheck, error)
}

// SignResult reports what Sign did. JSON names are the port protocol's.
type SignResult struct {
	// SignatureDigest is the pushed .sig manifest digest for the requested digest.
	SignatureDigest string `json:"signature_digest"`
	// Signed has one entry per signed digest, the requested one first.
	Signed []SignedEntry `json:"signed"`
	// Warnings are things the signer's user should know that did not stop
	// the signing, e.g. a tag that no longer points at the signed digest.
	Warnings []string `json:"warnings,omitempty"`
}

// SignedEntry is one signed subject.
type SignedEntry struct {
	Digest          string `json:"digest"`
	SignatureRef    string `json:"signature_ref"`
	SignatureDigest string `json:"signature_digest"`
	Deduplicated    bool   `json:"deduplicated"`
	LogIndex        *int64 `json:"log_index,omitempty"`
	LogUUID         string `json:"log_uuid,omitempty"`
}

// VerifyRequest asks for the signatures of one image to be checked.
type VerifyRequest struct {
	Reference string
	Digest    string
	// Verifier is the public key a signature must verify with; or, for
	// keyless signatures, Keyless says whom to trust (one of the two).
	Verifier    *signing.Verifier
	Keyless     *KeylessPolicy
	Annotations map[string]string
	// BundleCheck, when set, checks a layer's dev.sigstore.cosign/bundle
	// annotation offline; RequireTlog makes a missing or bad bundle fatal
	// for that layer.
	BundleCheck signing.BundleCheck
	RequireTlog bool
}

// KeylessPolicy accepts a keyless signature whose certificate chains to
// one of Roots, names the identity and issuer Identity asks for, and whose
// log bundle (always required) verifies with LogKeys and was integrated
// while the certificate was valid.
type KeylessPolicy struct {
	Roots    []*x509.Certificate
	Identity signing.IdentityPolicy
	LogKeys  *signing.RekorKeys
}

// VerifyResult reports every signature layer found.
type VerifyResult struct {
	Digest       string           `json:"digest"`
	SignatureRef string           `json:"signature_ref"`
	Signatures   []SignatureCheck `json:"signatures"`
	// Valid counts the layers that passed every check.
	Valid int `json:"valid"`
}

// SignatureCheck is the verdict on one layer of the .sig manifest.
type SignatureCheck struct {
	Layer    int    `json:"layer"`
	Digest   string `json:"payload_digest"`
	Valid    bool   `json:"valid"`
	Error    string `json:"error,omitempty"`
	LogIndex *int64 `json:"log_index,omitempty"`
	LogUUID  string `json:"log_uuid,omitempty"`
	// Payload is the raw simplesigning JSON (for --output json consumers).
	Payload string `json:"payload"`
}

// Connect makes ready what signing reference will need (the registry's
// challenge, a push token for the repository, a connection) without
// reading or writing anything, so a later Sign starts warm. The rebar3
// plugin sends it while ocibuild builds.
func (c *Client) Connect(ctx context.Context, reference string) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	_, _, _, err := c.connections(ctx, reference, true)
	return err
}
