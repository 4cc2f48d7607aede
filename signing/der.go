// DER parsers for the key formats ParsePrivateKey takes (PKCS#8, SEC1,
// PKCS#1), and the refusals that name an unsupported curve or algorithm.

package signing

import (
	"crypto/ecdh"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
)

func parsePKCS8(der []byte, what string) (any, error) {
	// Refuse by algorithm and size before x509 parses (and validates) the key:
	// Go cannot parse some of these, and a huge RSA key is slow to validate.
	var p8 struct {
		Version    int
		Algo       pkix.AlgorithmIdentifier
		PrivateKey []byte
	}
	if rest, err := asn1.Unmarshal(der, &p8); err == nil && len(rest) == 0 {
		switch alg := p8.Algo.Algorithm; {
		case alg.Equal(oidPublicKeyRSA):
			if err := checkRSABits(pkcs1ModulusBits(p8.PrivateKey)); err != nil {
				return nil, err
			}
		case alg.Equal(oidPublicKeyECDSA):
			if err := checkCurveParams(p8.Algo.Parameters.FullBytes); err != nil {
				return nil, err
			}
		case alg.Equal(oidPublicKeyEd25519):
		default:
			return nil, unsupportedAlgorithm(alg)
		}
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, ErrInvalidKey.with("%s is not a valid PKCS#8 private key (corrupt or truncated)", what)
	}
	return key, nil
}

func parseSEC1(der []byte) (any, error) {
	var ec struct {
		Version    int
		PrivateKey []byte
		Params     asn1.RawValue  `asn1:"optional,explicit,tag:0"`
		PublicKey  asn1.BitString `asn1:"optional,explicit,tag:1"`
	}
	if _, err := asn1.Unmarshal(der, &ec); err == nil && len(ec.Params.FullBytes) > 0 {
		// encoding/asn1 keeps the [0] wrapper for a RawValue; the parameters are inside.
		params := ec.Params.FullBytes
		if ec.Params.Class == asn1.ClassContextSpecific {
			params = ec.Params.Bytes
		}
		if err := checkCurveParams(params); err != nil {
			return nil, err
		}
	}
	key, err := x509.ParseECPrivateKey(der)
	if err != nil {
		return nil, ErrInvalidKey.with("EC PRIVATE KEY block is not a valid SEC1 private key (corrupt or truncated)")
	}
	return key, nil
}

// checkCurveParams refuses a named curve other than P-256/384/521, and
// explicit curve parameters, which Go cannot read.
func checkCurveParams(params []byte) error {
	var curve asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(params, &curve); err == nil {
		if !supportedCurve(curve) {
			return unsupportedCurveOID(curve)
		}
		return nil
	}
	var raw asn1.RawValue
	if _, err := asn1.Unmarshal(params, &raw); err == nil && raw.Tag == asn1.TagSequence {
		return ErrUnsupportedKey.with("the key spells out its curve parameters instead of naming the curve; " +
			"re-encode it with `openssl ec -param_enc named_curve`")
	}
	return nil
}

func parsePKCS1(der []byte) (any, error) {
	if err := checkRSABits(pkcs1ModulusBits(der)); err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS1PrivateKey(der)
	if err != nil {
		return nil, ErrInvalidKey.with("RSA PRIVATE KEY block is not a valid PKCS#1 private key (corrupt or truncated)")
	}
	return key, nil
}

// pkcs1ModulusBits reads just the modulus size, so that keys Go refuses to
// parse (below 1024 bits) still get the "unsupported size" answer. 0 = unknown.
func pkcs1ModulusBits(der []byte) int {
	var seq asn1.RawValue
	if _, err := asn1.Unmarshal(der, &seq); err != nil || seq.Tag != asn1.TagSequence {
		return 0
	}
	var version int
	rest, err := asn1.Unmarshal(seq.Bytes, &version)
	if err != nil {
		return 0
	}
	var n *big.Int
	if _, err := asn1.Unmarshal(rest, &n); err != nil || n == nil {
		return 0
	}
	return n.BitLen()
}

// checkRSABits refuses sizes cosign verifiers reject; 0 (unknown) passes so
// that the parser reports the corruption.
func checkRSABits(bits int) error {
	if bits == 0 || bits >= 2048 && bits <= 4096 {
		return nil
	}
	return ErrUnsupportedKey.with("RSA key of %d bits is not supported: cosign verifiers accept 2048 to 4096 bits", bits)
}

func unsupportedCurveOID(oid asn1.ObjectIdentifier) error {
	name, known := curveNames[oid.String()]
	if !known {
		name = "with OID " + oid.String()
	}
	return ErrUnsupportedKey.with("ECDSA curve %s is not supported; %s", name, supportedKeys)
}

func unsupportedAlgorithm(oid asn1.ObjectIdentifier) error {
	if name, known := algorithmNames[oid.String()]; known {
		return ErrUnsupportedKey.with("%s keys are not supported; %s", name, supportedKeys)
	}
	return ErrUnsupportedKey.with("key algorithm %s is not supported; %s", oid, supportedKeys)
}

func unsupportedKeyType(key any) error {
	switch k := key.(type) {
	case *ecdh.PrivateKey:
		return ErrUnsupportedKey.with("%s is a key-agreement key and cannot sign; %s", ecdhName(k.Curve()), supportedKeys)
	}
	return ErrUnsupportedKey.with("key type %T is not supported; %s", key, supportedKeys)
}

var (
	oidPublicKeyRSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidPublicKeyECDSA   = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidPublicKeyEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
)

func supportedCurve(oid asn1.ObjectIdentifier) bool {
	switch oid.String() {
	case "1.2.840.10045.3.1.7", "1.3.132.0.34", "1.3.132.0.35":
		return true
	}
	return false
}

// curveNames lets errors name curves Go cannot parse.
var curveNames = map[string]string{
	"1.2.840.10045.3.1.7":   "P-256",
	"1.3.132.0.34":          "P-384",
	"1.3.132.0.35":          "P-521",
	"1.3.132.0.33":          "P-224",
	"1.2.840.10045.3.1.1":   "P-192",
	"1.3.132.0.10":          "secp256k1",
	"1.3.36.3.3.2.8.1.1.7":  "brainpoolP256r1",
	"1.3.36.3.3.2.8.1.1.11": "brainpoolP384r1",
	"1.3.36.3.3.2.8.1.1.13": "brainpoolP512r1",
	"1.2.156.10197.1.301":   "SM2",
}

// algorithmNames lets errors name key algorithms Go cannot parse.
var algorithmNames = map[string]string{
	"1.2.840.10040.4.1":     "DSA",
	"1.3.101.110":           "X25519",
	"1.3.101.111":           "X448",
	"1.3.101.113":           "Ed448",
	"1.2.840.113549.1.1.10": "RSA-PSS",
	"1.2.840.113549.1.3.1":  "Diffie-Hellman",
	"1.2.840.10046.2.1":     "Diffie-Hellman (X9.42)",
	"1.2.643.7.1.1.1.1":     "GOST R 34.10-2012",
}
