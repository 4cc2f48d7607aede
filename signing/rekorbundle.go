package signing

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ocisign/ocisign/internal/errcode"
)

// RekorBundle is the value of the dev.sigstore.cosign/bundle layer annotation
// that cosign writes after a Rekor v1 upload. Field names and order are
// cosign's (pkg/cosign/bundle.RekorBundle), so json.Marshal gives its bytes.
type RekorBundle struct {
	SignedEntryTimestamp []byte       `json:"SignedEntryTimestamp"`
	Payload              RekorPayload `json:"Payload"`
}

// RekorPayload is the part of a Rekor log entry that the Signed Entry
// Timestamp (SET) covers.
type RekorPayload struct {
	Body           string `json:"body"` // base64 of the canonical entry
	IntegratedTime int64  `json:"integratedTime"`
	LogIndex       int64  `json:"logIndex"`
	LogID          string `json:"logID"` // hex sha256 of the log key's PKIX DER
}

// RekorEntry identifies a verified log entry.
type RekorEntry struct {
	LogIndex       int64
	IntegratedTime int64
	LogID          string
	// UUID is Rekor's entry UUID: hex sha256(0x00 || canonical entry), the
	// RFC 6962 leaf hash. Rekor's 80-digit "entry ID" is the 16-digit tree ID
	// followed by this UUID; the tree ID is not in the bundle.
	UUID string
}

// HashedRekord is the hashedrekord v0.0.1 entry, as sent to Rekor and as it
// comes back (canonicalised) in a log entry's body.
type HashedRekord struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Spec       HashedRekordSpec `json:"spec"`
}

// HashedRekordSpec is the spec of a hashedrekord entry.
type HashedRekordSpec struct {
	Data struct {
		Hash struct {
			Algorithm string `json:"algorithm"`
			Value     string `json:"value"`
		} `json:"hash"`
	} `json:"data"`
	Signature struct {
		Content   string `json:"content"` // base64 signature
		PublicKey struct {
			Content string `json:"content"` // base64 of the PEM public key
		} `json:"publicKey"`
	} `json:"signature"`
}

// NewHashedRekord builds the entry cosign proposes for a signature over
// payload: sha256 of the payload, the signature and the signer's PEM key.
func NewHashedRekord(payload, signature, publicKeyPEM []byte) *HashedRekord {
	sum := sha256.Sum256(payload)
	e := &HashedRekord{APIVersion: "0.0.1", Kind: "hashedrekord"}
	e.Spec.Data.Hash.Algorithm = "sha256"
	e.Spec.Data.Hash.Value = hex.EncodeToString(sum[:])
	e.Spec.Signature.Content = base64.StdEncoding.EncodeToString(signature)
	e.Spec.Signature.PublicKey.Content = base64.StdEncoding.EncodeToString(publicKeyPEM)
	return e
}

// RekorKeys are the transparency-log public keys a SET may be signed by,
// indexed by log ID. cosign accepts only ECDSA log keys, so this does too.
type RekorKeys struct {
	byID map[string]*ecdsa.PublicKey
}

// NewRekorKeys trusts the given log public keys.
func NewRekorKeys(keys ...crypto.PublicKey) (*RekorKeys, error) {
	if len(keys) == 0 {
		return nil, ErrInvalidKey.with("no transparency log public key given")
	}
	rk := &RekorKeys{byID: map[string]*ecdsa.PublicKey{}}
	for _, k := range keys {
		ec, ok := k.(*ecdsa.PublicKey)
		if !ok {
			return nil, ErrUnsupportedKey.with("transparency log key is %T; cosign only accepts ECDSA Rekor keys", k)
		}
		id, err := RekorLogID(ec)
		if err != nil {
			return nil, err
		}
		rk.byID[id] = ec
	}
	return rk, nil
}

// ParseRekorPublicKeys reads one or more PEM "PUBLIC KEY" blocks (the file
// SIGSTORE_REKOR_PUBLIC_KEY names, or GET /api/v1/log/publicKey). path is
// only used in errors.
func ParseRekorPublicKeys(pemBytes []byte, path string) (*RekorKeys, error) {
	var keys []crypto.PublicKey
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "PUBLIC KEY" {
			return nil, at(ErrInvalidKey.with("transparency log key: PEM block %q is not a PUBLIC KEY", errcode.Clip(block.Type, maxQuoted)), path)
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, at(ErrInvalidKey.with("transparency log key: PKIX public key does not parse: %v", err), path)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, at(ErrInvalidKey.with("transparency log key: no PEM PUBLIC KEY block found"), path)
	}
	rk, err := NewRekorKeys(keys...)
	return rk, at(err, path)
}

// LoadRekorPublicKeys reads a PEM file of transparency log public keys.
func LoadRekorPublicKeys(path string) (*RekorKeys, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	return ParseRekorPublicKeys(b, path)
}

// LogIDs lists the trusted log IDs, sorted.
func (k *RekorKeys) LogIDs() []string {
	ids := make([]string, 0, len(k.byID))
	for id := range k.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// RekorLogID is the log ID Rekor reports for its key: hex sha256 of the
// PKIX DER public key.
func RekorLogID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", ErrInvalidKey.with("transparency log key: %v", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// ParseRekorBundle decodes a dev.sigstore.cosign/bundle annotation.
func ParseRekorBundle(annotation string) (*RekorBundle, error) {
	var b RekorBundle
	dec := json.NewDecoder(strings.NewReader(annotation))
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("bundle annotation is not a cosign Rekor bundle: %v", err)
	}
	if dec.More() {
		return nil, errors.New("bundle annotation has data after the JSON object")
	}
	if len(b.SignedEntryTimestamp) == 0 {
		return nil, errors.New("bundle has no SignedEntryTimestamp")
	}
	if b.Payload.Body == "" {
		return nil, errors.New("bundle payload has no body")
	}
	if b.Payload.LogID == "" {
		return nil, errors.New("bundle payload has no logID")
	}
	return &b, nil
}

// Annotation encodes the bundle exactly as cosign stores it.
func (b *RekorBundle) Annotation() (string, error) {
	out, err := json.Marshal(b)
	return string(out), err
}

// CanonicalSETPayload returns the bytes the SET signs: the RFC 8785
// canonical JSON of {body, integratedTime, logID, logIndex}. Rekor signs
// jsoncanonicalizer.Transform(json.Marshal(entry)) and cosign verifies the
// same transform of its RekorPayload, so this reproduces that transform:
// keys sorted by UTF-16 code units, ES6 number formatting (integers go
// through float64, as in the canonicalizer), minimal string escaping.
func CanonicalSETPayload(p RekorPayload) []byte {
	var b bytes.Buffer
	b.WriteString(`{"body":`)
	writeCanonicalString(&b, p.Body)
	b.WriteString(`,"integratedTime":`)
	b.WriteString(canonicalInteger(p.IntegratedTime))
	b.WriteString(`,"logID":`)
	writeCanonicalString(&b, p.LogID)
	b.WriteString(`,"logIndex":`)
	b.WriteString(canonicalInteger(p.LogIndex))
	b.WriteByte('}')
	return b.Bytes()
}

// canonicalInteger formats n as ES6 Number.prototype.toString does after the
// float64 round trip the canonicalizer makes; |n| < 2^63 < 1e21, so ES6
// never uses exponent notation here.
func canonicalInteger(n int64) string {
	return strconv.FormatFloat(float64(n), 'f', -1, 64)
}

// writeCanonicalString escapes as RFC 8785 §3.2.2.2 (ES6 JSON.stringify):
// only '"', '\\' and control characters; invalid UTF-8 becomes U+FFFD as
// json.Marshal would have made it before canonicalisation.
func writeCanonicalString(b *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	s = strings.ToValidUTF8(s, string(utf8.RuneError))
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\f':
			b.WriteString(`\f`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// VerifySET checks the Signed Entry Timestamp with the key of the log that
// the payload names (ECDSA over SHA-256, as cosign's VerifySET).
func (b *RekorBundle) VerifySET(keys *RekorKeys) error {
	if keys == nil || len(keys.byID) == 0 {
		return errors.New("no transparency log public key configured to check the bundle with")
	}
	pub, ok := keys.byID[b.Payload.LogID]
	if !ok {
		return fmt.Errorf("bundle is from log %s, whose public key is not trusted (trusted: %s)",
			errcode.Clip(b.Payload.LogID, maxQuoted), strings.Join(keys.LogIDs(), ", "))
	}
	sum := sha256.Sum256(CanonicalSETPayload(b.Payload))
	if !ecdsa.VerifyASN1(pub, sum[:], b.SignedEntryTimestamp) {
		return fmt.Errorf("signed entry timestamp does not verify with the key of log %s", b.Payload.LogID)
	}
	return nil
}

// Entry decodes the bundle body as a hashedrekord v0.0.1 entry and returns
// it with the entry UUID.
func (b *RekorBundle) Entry() (*HashedRekord, string, error) {
	raw, err := base64.StdEncoding.DecodeString(b.Payload.Body)
	if err != nil {
		return nil, "", fmt.Errorf("bundle body is not base64: %v", err)
	}
	var e HashedRekord
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, "", fmt.Errorf("bundle body is not a Rekor entry: %v", err)
	}
	if e.Kind != "hashedrekord" || e.APIVersion != "0.0.1" {
		return nil, "", fmt.Errorf("bundle body is a %q %q entry, want hashedrekord 0.0.1", errcode.Clip(e.Kind, maxQuoted), errcode.Clip(e.APIVersion, maxQuoted))
	}
	return &e, RekorEntryUUID(raw), nil
}

// RekorEntryUUID is the UUID Rekor gives the entry whose canonical body is
// leaf: the RFC 6962 leaf hash sha256(0x00 || leaf), in hex.
func RekorEntryUUID(leaf []byte) string {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(leaf)
	return hex.EncodeToString(h.Sum(nil))
}

// VerifyRekorBundle makes cosign's offline checks of a bundle annotation
// (VerifyBundle): the body is a hashedrekord whose signature is signature
// (the raw bytes of the layer's signature), whose public key is signer's,
// whose hash is sha256 over payload; and the SET verifies with one of the
// trusted log keys. It never touches the network.
func VerifyRekorBundle(annotation string, payload, signature []byte, signer *Verifier, keys *RekorKeys) (*RekorEntry, error) {
	b, err := ParseRekorBundle(annotation)
	if err != nil {
		return nil, err
	}
	e, uuid, err := b.Entry()
	if err != nil {
		return nil, err
	}
	if err := e.Matches(payload, signature, signer); err != nil {
		return nil, err
	}
	if err := b.VerifySET(keys); err != nil {
		return nil, err
	}
	return &RekorEntry{LogIndex: b.Payload.LogIndex, IntegratedTime: b.Payload.IntegratedTime,
		LogID: b.Payload.LogID, UUID: uuid}, nil
}

// Matches checks that the entry records signature over payload by signer.
func (e *HashedRekord) Matches(payload, signature []byte, signer *Verifier) error {
	// cosign compares the base64 texts; the layer's is canonical (strict).
	if e.Spec.Signature.Content != base64.StdEncoding.EncodeToString(signature) {
		return errors.New("log entry is for a different signature than this layer's")
	}
	pemBytes, err := base64.StdEncoding.DecodeString(e.Spec.Signature.PublicKey.Content)
	if err != nil {
		return fmt.Errorf("log entry public key is not base64: %v", err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return errors.New("log entry public key is not PEM")
	}
	if signer == nil {
		return errors.New("no public key to compare the log entry's key with")
	}
	want, err := x509.MarshalPKIXPublicKey(signer.PublicKey())
	if err != nil {
		return fmt.Errorf("encoding the verification key: %v", err)
	}
	got, err := entryPublicKey(block)
	if err != nil {
		return fmt.Errorf("log entry public key does not parse: %v", err)
	}
	gotDER, err := x509.MarshalPKIXPublicKey(got)
	if err != nil || !bytes.Equal(gotDER, want) {
		return errors.New("log entry was made with a different public key than the verification key")
	}
	if e.Spec.Data.Hash.Algorithm != "sha256" {
		return fmt.Errorf("log entry hash algorithm is %q; cosign requires sha256", errcode.Clip(e.Spec.Data.Hash.Algorithm, maxQuoted))
	}
	sum := sha256.Sum256(payload)
	if e.Spec.Data.Hash.Value != hex.EncodeToString(sum[:]) { // cosign compares lower-case hex exactly
		return fmt.Errorf("log entry is for payload sha256:%s, not this layer's sha256:%x", errcode.Clip(e.Spec.Data.Hash.Value, maxQuoted), sum)
	}
	return nil
}

// entryPublicKey is the key an entry records: a public key, or a keyless
// signature's certificate.
func entryPublicKey(block *pem.Block) (any, error) {
	if block.Type == "CERTIFICATE" {
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return c.PublicKey, nil
	}
	return x509.ParsePKIXPublicKey(block.Bytes)
}

// LogEntry is what a transparency log gave back for one signature: the
// dev.sigstore.cosign/bundle annotation to store with it, and the entry's
// index and UUID for reports.
type LogEntry struct {
	BundleAnnotation string
	LogIndex         int64
	UUID             string
	IntegratedTime   int64 // Unix seconds: when the log recorded it
}

// BundleCheck checks a signature layer's dev.sigstore.cosign/bundle
// annotation offline, for that payload and signature; it returns the entry
// the bundle proves.
type BundleCheck func(bundleJSON string, payload, signature []byte) (*LogEntry, error)
