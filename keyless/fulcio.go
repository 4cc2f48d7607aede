package keyless

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/ocisign/ocisign/internal/errcode"
	"github.com/ocisign/ocisign/internal/loopback"
	"github.com/ocisign/ocisign/internal/serviceurl"
	"github.com/ocisign/ocisign/signing"
)

// DefaultFulcioURL is the public Fulcio instance.
const DefaultFulcioURL = "https://fulcio.sigstore.dev"

// maxFulcioReply bounds Fulcio's answer (a chain of a few certificates).
const maxFulcioReply = 1 << 20

// Fulcio asks a Fulcio certificate authority for a signing certificate
// (API v2, POST /api/v2/signingCert).
type Fulcio struct {
	url  *url.URL
	HTTP *http.Client // nil: http.DefaultClient
}

// CheckFulcioURL accepts https, or plain HTTP to a loopback address only,
// since the identity token goes with every request.
func CheckFulcioURL(rawURL string) (*url.URL, error) {
	u, err := serviceurl.Parse(rawURL)
	if err == nil && u.Scheme == "http" && !loopback.Host(u.Host) {
		err = fmt.Errorf("must be https (plain HTTP only to a loopback address): the identity token is sent to it")
	}
	return u, err
}

// NewFulcio is a client for the Fulcio at rawURL (CheckFulcioURL).
func NewFulcio(rawURL string) (*Fulcio, error) {
	u, err := CheckFulcioURL(rawURL)
	if err != nil {
		return nil, &errcode.Error{Op: "fulcio", Code: errcode.CodeInvalidRequest, Detail: "the Fulcio URL " + err.Error()}
	}
	return &Fulcio{url: u}, nil
}

// Where is the CA's address without credentials, for messages.
func (f *Fulcio) Where() string { return f.url.Scheme + "://" + f.url.Host + f.url.Path }

func (f *Fulcio) caError(status int, retryable bool, detail string) error {
	return &errcode.Error{Op: "fulcio signing certificate", Ref: f.Where(), Status: status, Code: errcode.CodeCAError,
		Retryable: retryable, Detail: detail}
}

// SigningCertificate asks for a certificate for signer's public key and the
// identity in tok, proving possession of the key by signing the token's
// principal. It checks that the certificate certifies that key; the chain's
// trust is checked by the caller (signing.Certificate.VerifyChain).
func (f *Fulcio) SigningCertificate(ctx context.Context, tok *Token, signer *signing.Signer) (*signing.Certificate, []byte, error) {
	pub, err := signer.Verifier().PublicKeyPEM()
	if err != nil {
		return nil, nil, &errcode.Error{Op: "fulcio signing certificate", Code: errcode.CodeInternal, Err: err}
	}
	proof, err := signer.Sign([]byte(tok.Principal()))
	if err != nil {
		return nil, nil, &errcode.Error{Op: "fulcio signing certificate", Code: errcode.CodeInternal, Err: err}
	}
	var req struct {
		Credentials struct {
			OIDCIdentityToken string `json:"oidcIdentityToken"`
		} `json:"credentials"`
		PublicKeyRequest struct {
			PublicKey struct {
				Algorithm string `json:"algorithm"`
				Content   string `json:"content"`
			} `json:"publicKey"`
			ProofOfPossession string `json:"proofOfPossession"`
		} `json:"publicKeyRequest"`
	}
	req.Credentials.OIDCIdentityToken = tok.Raw()
	req.PublicKeyRequest.PublicKey.Algorithm = "ECDSA"
	req.PublicKeyRequest.PublicKey.Content = string(pub)
	req.PublicKeyRequest.ProofOfPossession = base64.StdEncoding.EncodeToString(proof)
	body, err := json.Marshal(req)
	if err != nil {
		return nil, nil, &errcode.Error{Op: "fulcio signing certificate", Code: errcode.CodeInternal, Err: err}
	}
	reply, err := f.post(ctx, "/api/v2/signingCert", body, tok)
	if err != nil {
		return nil, nil, err
	}
	var doc struct {
		Embedded *struct {
			Chain struct {
				Certificates []string `json:"certificates"`
			} `json:"chain"`
		} `json:"signedCertificateEmbeddedSct"`
		Detached *struct {
			Chain struct {
				Certificates []string `json:"certificates"`
			} `json:"chain"`
			SCT []byte `json:"signedCertificateTimestamp"`
		} `json:"signedCertificateDetachedSct"`
	}
	if err := json.Unmarshal(reply, &doc); err != nil {
		return nil, nil, f.caError(http.StatusOK, false, fmt.Sprintf("the answer is not Fulcio's JSON (%d bytes)", len(reply)))
	}
	var chain []string
	var detachedSCT []byte
	switch {
	case doc.Embedded != nil:
		chain = doc.Embedded.Chain.Certificates
	case doc.Detached != nil:
		chain, detachedSCT = doc.Detached.Chain.Certificates, doc.Detached.SCT
	default:
		return nil, nil, f.caError(http.StatusOK, false, "the answer holds no certificate chain")
	}
	cert, err := signing.CertificateFromChain(chain)
	if err != nil {
		return nil, nil, f.caError(http.StatusOK, false, "the certificate chain does not parse: "+err.Error())
	}
	if !cert.CertifiesKey(signer.Verifier()) {
		return nil, nil, f.caError(http.StatusOK, false, "the certificate is not for the key ocisign sent")
	}
	return cert, detachedSCT, nil
}

// post sends body to path and returns the 2xx answer. Fulcio's error
// message is passed on, with the token cut out should it be echoed.
func (f *Fulcio) post(ctx context.Context, path string, body []byte, tok *Token) ([]byte, error) {
	u := *f.url
	u.Path = strings.TrimRight(u.Path, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, &errcode.Error{Op: "fulcio signing certificate", Code: errcode.CodeInternal, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	client := f.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &errcode.Error{Op: "fulcio signing certificate", Ref: f.Where(), Code: errcode.CodeTimeout,
				Detail: "Fulcio did not answer in time"}
		}
		return nil, f.caError(0, true, "Fulcio is unreachable: "+withoutURL(err))
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxFulcioReply+1))
	if err != nil {
		return nil, f.caError(resp.StatusCode, true, "reading Fulcio's answer failed: "+err.Error())
	}
	if len(reply) > maxFulcioReply {
		return nil, f.caError(resp.StatusCode, false, fmt.Sprintf("Fulcio's answer is larger than %d bytes", maxFulcioReply))
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(reply, &e)
		msg := errcode.Clip(strings.ReplaceAll(e.Message, tok.Raw(), "[REDACTED]"), 300)
		detail := "Fulcio refused to issue a certificate"
		if msg != "" {
			detail += ": " + msg
		}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusBadRequest {
			detail += " (is the token from an issuer this Fulcio trusts, for audience " + Audience + ", unexpired?)"
		}
		return nil, f.caError(resp.StatusCode, resp.StatusCode >= 500, detail)
	}
	return reply, nil
}
