// The .sig tag's requests: read the manifest, push it, read its digest.

package registry

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ocisign/ocisign/internal/errcode"
)

// readSignatures GETs the .sig manifest; nil when there is none yet.
func (c *Client) readSignatures(ctx context.Context, conn *repoConn, sigRef, tag string) (*existingSignatures, error) {
	existing, _, err := c.readSignaturesDigest(ctx, conn, sigRef, tag)
	return existing, err
}

// readSignaturesDigest is readSignatures plus the Docker-Content-Digest the
// registry sent (what its HEAD will say for the same manifest).
func (c *Client) readSignaturesDigest(ctx context.Context, conn *repoConn, sigRef, tag string) (*existingSignatures, string, error) {
	resp, err := conn.do(ctx, request{op: "read signatures", ref: sigRef, method: http.MethodGet,
		url: conn.url("manifests", tag), accept: manifestAccept, ok: []int{http.StatusOK, http.StatusNotFound}, readBody: true})
	if err != nil {
		return nil, "", err
	}
	if resp.status == http.StatusNotFound {
		return nil, "", nil
	}
	existing, err := parseSignatureManifest(resp.body, resp.header.Get("Content-Type"))
	if err != nil {
		return nil, "", &errcode.Error{Op: "read signatures", Ref: sigRef, Code: errcode.CodeRegistryError, Detail: err.Error()}
	}
	return existing, resp.header.Get("Docker-Content-Digest"), nil
}

// putManifest pushes the manifest to the tag and returns its digest.
func (c *Client) putManifest(ctx context.Context, conn *repoConn, sigRef, tag string, manifest []byte, mediaType string) (string, error) {
	resp, err := conn.do(ctx, request{op: "push signature manifest", ref: sigRef, method: http.MethodPut,
		url: conn.url("manifests", tag), body: manifest, contentType: mediaType,
		ok: []int{http.StatusCreated, http.StatusOK, http.StatusNoContent}})
	if err != nil {
		return "", err
	}
	computed := sha256Digest(manifest)
	if d := resp.header.Get("Docker-Content-Digest"); d != "" && d != computed {
		return "", &errcode.Error{Op: "push signature manifest", Ref: sigRef, Code: errcode.CodeRegistryError,
			Detail: fmt.Sprintf("the registry stored digest %s, the manifest we sent is %s", d, computed)}
	}
	return computed, nil
}

// tagDigest HEADs the .sig tag: its digest ("" when there is none) and
// whether the registry said (known is false without Docker-Content-Digest).
func (c *Client) tagDigest(ctx context.Context, conn *repoConn, sigRef, tag string) (digest string, known bool, err error) {
	resp, err := conn.do(ctx, request{op: "read back signatures", ref: sigRef, method: http.MethodHead,
		url: conn.url("manifests", tag), accept: manifestAccept, ok: []int{http.StatusOK, http.StatusNotFound}})
	if err != nil {
		return "", false, err
	}
	if resp.status == http.StatusNotFound {
		return "", true, nil
	}
	d := resp.header.Get("Docker-Content-Digest")
	return d, d != "", nil
}
