package signing

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRekorCanonicalSETPayloadGolden(t *testing.T) {
	cases := []struct {
		name string
		in   RekorPayload
		want string
	}{
		{"cosign shape",
			RekorPayload{Body: "eyJhIjoxfQ==", IntegratedTime: 1795557292, LogIndex: 1, LogID: "6e03ab"},
			`{"body":"eyJhIjoxfQ==","integratedTime":1795557292,"logID":"6e03ab","logIndex":1}`},
		{"zero and negative",
			RekorPayload{Body: "", IntegratedTime: 0, LogIndex: -5, LogID: ""},
			`{"body":"","integratedTime":0,"logID":"","logIndex":-5}`},
		// The canonicalizer parses numbers as float64: above 2^53 they round.
		{"float64 rounding",
			RekorPayload{Body: "x", IntegratedTime: 1<<53 + 1, LogIndex: 1e18 + 1, LogID: "y"},
			`{"body":"x","integratedTime":9007199254740992,"logID":"y","logIndex":1000000000000000000}`},
		// RFC 8785: only '"', '\\' and controls are escaped; '/', '<', non-ASCII
		// stay literal; controls without a short form use lower-case \u00xx.
		{"string escaping",
			RekorPayload{Body: "a\"b\\c\n\t\r\b\f\x01\x1f/<>&é\u2028", LogID: "\x7f"},
			"{\"body\":\"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u001f/<>&é\u2028\",\"integratedTime\":0,\"logID\":\"\x7f\",\"logIndex\":0}"},
		{"invalid UTF-8 becomes U+FFFD as json.Marshal does",
			RekorPayload{Body: "a\xffb"},
			`{"body":"a` + "\ufffd" + `b","integratedTime":0,"logID":"","logIndex":0}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := string(CanonicalSETPayload(c.in))
			if got != c.want {
				t.Errorf("canonical payload\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

// rekorFixture is a signature plus a bundle for it, signed by a throwaway
// ECDSA "log" key.
type rekorFixture struct {
	signer    *Signer
	logKey    *ecdsa.PrivateKey
	keys      *RekorKeys
	payload   []byte
	signature []byte
	body      []byte // canonical entry bytes
	bundle    RekorBundle
}

func newRekorFixture(t *testing.T) *rekorFixture {
	t.Helper()
	signer, err := GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	logKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := NewRekorKeys(&logKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := Payload("registry.example/app", "sha256:"+strings.Repeat("ab", 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	f := &rekorFixture{signer: signer, logKey: logKey, keys: keys, payload: payload, signature: sig}
	f.setBody(t, NewHashedRekord(payload, sig, mustPEM(t, signer.Verifier())))
	logID, _ := RekorLogID(&logKey.PublicKey)
	f.bundle.Payload.IntegratedTime = 1795557292
	f.bundle.Payload.LogIndex = 42
	f.bundle.Payload.LogID = logID
	f.sign(t)
	return f
}

func mustPEM(t *testing.T, v *Verifier) []byte {
	t.Helper()
	p, err := v.PublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *rekorFixture) setBody(t *testing.T, e *HashedRekord) {
	t.Helper()
	body, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	f.body = body
	f.bundle.Payload.Body = base64.StdEncoding.EncodeToString(body)
}

// sign makes the SET the way Rekor does: ECDSA over sha256 of the
// canonical payload.
func (f *rekorFixture) sign(t *testing.T) {
	t.Helper()
	sum := sha256.Sum256(CanonicalSETPayload(f.bundle.Payload))
	set, err := ecdsa.SignASN1(rand.Reader, f.logKey, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	f.bundle.SignedEntryTimestamp = set
}

func (f *rekorFixture) annotation(t *testing.T) string {
	t.Helper()
	a, err := f.bundle.Annotation()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRekorBundleVerifies(t *testing.T) {
	f := newRekorFixture(t)
	ann := f.annotation(t)
	entry, err := VerifyRekorBundle(ann, f.payload, f.signature, f.signer.Verifier(), f.keys)
	if err != nil {
		t.Fatalf("VerifyRekorBundle: %v", err)
	}
	leaf := sha256.Sum256(append([]byte{0}, f.body...))
	if entry.LogIndex != 42 || entry.IntegratedTime != 1795557292 || entry.UUID != hex.EncodeToString(leaf[:]) ||
		entry.LogID != f.bundle.Payload.LogID {
		t.Errorf("entry = %+v", entry)
	}
}

func TestRekorBundleAnnotationFormat(t *testing.T) {
	b := RekorBundle{SignedEntryTimestamp: []byte{1, 2, 3},
		Payload: RekorPayload{Body: "Ym9keQ==", IntegratedTime: 7, LogIndex: 1, LogID: "6e03"}}
	got, err := b.Annotation()
	if err != nil {
		t.Fatal(err)
	}
	// cosign-format.md §4.3: exact field names and order.
	want := `{"SignedEntryTimestamp":"AQID","Payload":{"body":"Ym9keQ==","integratedTime":7,"logIndex":1,"logID":"6e03"}}`
	if got != want {
		t.Errorf("annotation\n got %s\nwant %s", got, want)
	}
	back, err := ParseRekorBundle(got)
	if err != nil {
		t.Fatal(err)
	}
	if back.Payload != b.Payload || string(back.SignedEntryTimestamp) != string(b.SignedEntryTimestamp) {
		t.Errorf("round trip = %+v", back)
	}
}

func TestRekorBundleRejectsTampering(t *testing.T) {
	other, err := GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		mutate func(t *testing.T, f *rekorFixture) (ann string, payload, sig []byte, v *Verifier, keys *RekorKeys)
		want   string
	}{
		{"SET byte flipped", func(t *testing.T, f *rekorFixture) (string, []byte, []byte, *Verifier, *RekorKeys) {
			f.bundle.SignedEntryTimestamp[len(f.bundle.SignedEntryTimestamp)-1] ^= 1
			return f.annotation(t), f.payload, f.signature, f.signer.Verifier(), f.keys
		}, "signed entry timestamp does not verify"},
		{"integratedTime changed after signing", func(t *testing.T, f *rekorFixture) (string, []byte, []byte, *Verifier, *RekorKeys) {
			f.bundle.Payload.IntegratedTime++
			return f.annotation(t), f.payload, f.signature, f.signer.Verifier(), f.keys
		}, "signed entry timestamp does not verify"},
		{"logIndex changed after signing", func(t *testing.T, f *rekorFixture) (string, []byte, []byte, *Verifier, *RekorKeys) {
			f.bundle.Payload.LogIndex = 41
			return f.annotation(t), f.payload, f.signature, f.signer.Verifier(), f.keys
		}, "signed entry timestamp does not verify"},
		{"SET from an untrusted log", func(t *testing.T, f *rekorFixture) (string, []byte, []byte, *Verifier, *RekorKeys) {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			keys, _ := NewRekorKeys(&k.PublicKey)
			return f.annotation(t), f.payload, f.signature, f.signer.Verifier(), keys
		}, "whose public key is not trusted"},
		{"logID of the trusted log but SET by another key", func(t *testing.T, f *rekorFixture) (string, []byte, []byte, *Verifier, *RekorKeys) {
			f.logKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			f.sign(t)
			return f.annotation(t), f.payload, f.signature, f.signer.Verifier(), f.keys
		}, "signed entry timestamp does not verify"},
		{"no trusted log keys", func(t *testing.T, f *rekorFixture) (string, []byte, []byte, *Verifier, *RekorKeys) {
			return f.annotation(t), f.payload, f.signature, f.signer.Verifier(), nil
		}, "no transparency log public key"},
		{"entry for another payload (validly signed)", func(t *testing.T, f *rekorFixture) (string, []byte, []byte, *Verifier, *RekorKeys) {
			otherPayload := append([]byte(nil), f.payload...)
			otherPayload[len(otherPayload)-2] ^= 1
			sig, _ := f.signer.Sign(otherPayload)
			f.setBody(t, NewHashedRekord(otherPayload, sig, mustPEM(t, f.signer.Verifier())))
			f.sign(t)
			return f.annotation(t), f.payload, sig, f.signer.Verifier(), f.keys
		}, "log entry is for payload sha256:"},
		{"entry for another signature", func(t *testing.T, f *rekorFixture) (string, []byte, []byte, *Verifier, *RekorKeys) {
			sig2, _ := f.signer.Sign(f.payload) // ECDSA: a different valid signature
			return f.annotation(t), f.payload, sig2, f.signer.Verifier(), f.keys
		}, "different signature"},
		{"entry made with another public key", func(t *testing.T, f *rekorFixture) (string, []byte, []byte, *Verifier, *RekorKeys) {
			f.setBody(t, NewHashedRekord(f.payload, f.signature, mustPEM(t, other.Verifier())))
			f.sign(t)
			return f.annotation(t), f.payload, f.signature, f.signer.Verifier(), f.keys
		}, "different public key"},
		{"verifying with another key", func(t *testing.T, f *rekorFixture) (string, []byte, []byte, *Verifier, *RekorKeys) {
			return f.annotation(t), f.payload, f.signature, other.Verifier(), f.keys
		}, "different public key"},
		{"sha512 entry", func(t *testing.T, f *rekorFixture) (string, []byte, []byte, *Verifier, *RekorKeys) {
			e := NewHashedRekord(f.payload, f.signature, mustPEM(t, f.signer.Verifier()))
			e.Spec.Data.Hash.Algorithm = "sha512"
			f.setBody(t, e)
			f.sign(t)
			return f.annotation(t), f.payload, f.signature, f.signer.Verifier(), f.keys
		}, `hash algorithm is "sha512"`},
		{"upper-case hash (cosign compares exactly)", func(t *testing.T, f *rekorFixture) (string, []byte, []byte, *Verifier, *RekorKeys) {
			e := NewHashedRekord(f.payload, f.signature, mustPEM(t, f.signer.Verifier()))
			e.Spec.Data.Hash.Value = strings.ToUpper(e.Spec.Data.Hash.Value)
			f.setBody(t, e)
			f.sign(t)
			return f.annotation(t), f.payload, f.signature, f.signer.Verifier(), f.keys
		}, "log entry is for payload"},
		{"rekord kind", func(t *testing.T, f *rekorFixture) (string, []byte, []byte, *Verifier, *RekorKeys) {
			e := NewHashedRekord(f.payload, f.signature, mustPEM(t, f.signer.Verifier()))
			e.Kind = "rekord"
			f.setBody(t, e)
			f.sign(t)
			return f.annotation(t), f.payload, f.signature, f.signer.Verifier(), f.keys
		}, "want hashedrekord 0.0.1"},
		{"body not base64", func(t *testing.T, f *rekorFixture) (string, []byte, []byte, *Verifier, *RekorKeys) {
			f.bundle.Payload.Body = "not base64!"
			f.sign(t)
			return f.annotation(t), f.payload, f.signature, f.signer.Verifier(), f.keys
		}, "bundle body is not base64"},
		{"not JSON", func(t *testing.T, f *rekorFixture) (string, []byte, []byte, *Verifier, *RekorKeys) {
			return `{"SignedEntryTimestamp":`, f.payload, f.signature, f.signer.Verifier(), f.keys
		}, "not a cosign Rekor bundle"},
		{"fractional logIndex", func(t *testing.T, f *rekorFixture) (string, []byte, []byte, *Verifier, *RekorKeys) {
			return strings.Replace(f.annotation(t), `"logIndex":42`, `"logIndex":42.5`, 1), f.payload, f.signature, f.signer.Verifier(), f.keys
		}, "not a cosign Rekor bundle"},
		{"trailing data", func(t *testing.T, f *rekorFixture) (string, []byte, []byte, *Verifier, *RekorKeys) {
			return f.annotation(t) + "{}", f.payload, f.signature, f.signer.Verifier(), f.keys
		}, "data after the JSON object"},
		{"no SET", func(t *testing.T, f *rekorFixture) (string, []byte, []byte, *Verifier, *RekorKeys) {
			f.bundle.SignedEntryTimestamp = nil
			return f.annotation(t), f.payload, f.signature, f.signer.Verifier(), f.keys
		}, "no SignedEntryTimestamp"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newRekorFixture(t)
			// The untampered fixture verifies, so each failure is the mutation's.
			if _, err := VerifyRekorBundle(f.annotation(t), f.payload, f.signature, f.signer.Verifier(), f.keys); err != nil {
				t.Fatalf("untampered fixture: %v", err)
			}
			ann, payload, sig, v, keys := c.mutate(t, f)
			entry, err := VerifyRekorBundle(ann, payload, sig, v, keys)
			if err == nil {
				t.Fatalf("accepted: %+v", entry)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestRekorPublicKeys(t *testing.T) {
	dir := t.TempDir()
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	var pemBytes []byte
	for _, k := range []*ecdsa.PrivateKey{k1, k2} {
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		pemBytes = append(pemBytes, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	path := filepath.Join(dir, "rekor.pub")
	if err := os.WriteFile(path, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadRekorPublicKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	id1, _ := RekorLogID(&k1.PublicKey)
	id2, _ := RekorLogID(&k2.PublicKey)
	der1, _ := x509.MarshalPKIXPublicKey(&k1.PublicKey)
	sum := sha256.Sum256(der1)
	if id1 != hex.EncodeToString(sum[:]) {
		t.Errorf("log ID %s is not sha256 of the PKIX DER", id1)
	}
	ids := keys.LogIDs()
	if len(ids) != 2 || !(ids[0] == id1 || ids[1] == id1) || !(ids[0] == id2 || ids[1] == id2) {
		t.Errorf("LogIDs = %v, want %s and %s", ids, id1, id2)
	}

	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKIXPublicKey(edPub)
	bad := []struct {
		name string
		pem  []byte
		is   error
	}{
		{"RSA log key", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaDER}), ErrUnsupportedKey},
		{"Ed25519 log key", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: edDER}), ErrUnsupportedKey},
		{"no PEM", []byte("hello"), ErrInvalidKey},
		{"certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), ErrInvalidKey},
		{"corrupt DER", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2}}), ErrInvalidKey},
	}
	for _, b := range bad {
		_, err := ParseRekorPublicKeys(b.pem, "rekor.pub")
		if !errors.Is(err, b.is) || !strings.Contains(err.Error(), "rekor.pub") {
			t.Errorf("%s: err = %v, want %v naming the file", b.name, err, b.is)
		}
	}
	if _, err := LoadRekorPublicKeys(filepath.Join(dir, "missing.pub")); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("missing file: err = %v", err)
	}
}
