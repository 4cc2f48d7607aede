package registry

import (
	"context"
	"net/http"

	"github.com/ocisign/ocisign/internal/errcode"
)

// uploadBlob stores data (whose digest is digest) in the repository: one
// monolithic POST /blobs/uploads/?digest= with the body, which distribution,
// go-containerregistry's registry and the big hosted registries answer
// with 201. A registry that opens an upload session instead (202) gets the
// body with one PUT to the session. Nothing is opened before a write is
// certain, so a deduplicated re-sign leaves no session behind.
func (c *Client) uploadBlob(ctx context.Context, conn *repoConn, sigRef, digest string, data []byte) error {
	ref := sigRef + " (" + digest + ")"
	resp, err := conn.do(ctx, request{op: "upload blob", ref: ref, method: http.MethodPost,
		url: conn.url("blobs", "uploads/") + "?digest=" + digest, body: data, contentType: "application/octet-stream",
		ok: []int{http.StatusCreated, http.StatusAccepted}})
	if err != nil || resp.status == http.StatusCreated {
		return err
	}
	loc := resp.header.Get("Location")
	if loc == "" {
		return &errcode.Error{Op: "upload blob", Ref: ref, Code: errcode.CodeRegistryError,
			Detail: "the registry opened an upload without a Location header"}
	}
	u, err := resp.url.Parse(loc)
	if err != nil {
		return &errcode.Error{Op: "upload blob", Ref: ref, Code: errcode.CodeRegistryError, Err: err,
			Detail: "the registry returned a bad upload Location"}
	}
	q := u.Query()
	q.Set("digest", digest)
	u.RawQuery = q.Encode()
	_, err = conn.do(ctx, request{op: "upload blob", ref: ref, method: http.MethodPut,
		url: u.String(), body: data, contentType: "application/octet-stream",
		ok: []int{http.StatusCreated, http.StatusOK, http.StatusNoContent}})
	return err
}
