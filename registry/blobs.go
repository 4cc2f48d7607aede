package registry

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"

	"github.com/ocisign/ocisign/internal/errcode"
)

// blobUpload is round 1's upload of one blob, sent before the plan knows
// whether it needs it: a monolithic POST with the body
// (`…/blobs/uploads/?digest=`), which registries that support it store at
// once (201). Distribution, behind most registries, ignores the body and
// opens a session instead (202); round 2 then finishes the session with one
// PUT. Either way a blob the plan needs costs no round trip of its own in
// the common case. A session the plan does not use is cancelled; a stored
// blob nothing references is left to the registry's garbage collection.
type blobUpload struct {
	digest   string   // what the POST carried
	stored   bool     // the registry stored it (201)
	location *url.URL // else the session round 2 finishes
	err      error
}

// startUpload POSTs data (whose digest is digest) monolithically.
func (c *Client) startUpload(ctx context.Context, conn *repoConn, sigRef, digest string, data []byte) (up blobUpload) {
	up.digest = digest
	defer func() { c.uploadModes.learn(conn.repo.RegistryStr(), up) }()
	post := request{op: "upload blob", ref: sigRef + " (" + digest + ")", method: http.MethodPost,
		url: conn.url("blobs", "uploads/") + "?digest=" + url.QueryEscape(digest), body: data,
		contentType: "application/octet-stream", ok: []int{http.StatusCreated, http.StatusAccepted}}
	resp, err := conn.do(ctx, post)
	if refusesMonolithic(err) {
		// A registry that rejects the body instead of opening a session.
		post.url, post.body, post.contentType = conn.url("blobs", "uploads/"), nil, ""
		resp, err = conn.do(ctx, post)
	}
	if err != nil {
		up.err = err
		return up
	}
	if resp.status == http.StatusCreated {
		up.stored = true
		return up
	}
	loc := resp.header.Get("Location")
	if loc == "" {
		up.err = &errcode.Error{Op: "upload blob", Ref: sigRef, Code: errcode.CodeRegistryError,
			Detail: "the registry opened an upload without a Location header"}
		return up
	}
	if up.location, err = resp.url.Parse(loc); err != nil {
		up.err = &errcode.Error{Op: "upload blob", Ref: sigRef, Code: errcode.CodeRegistryError, Err: err,
			Detail: "the registry returned a bad upload Location"}
	}
	return up
}

// refusesMonolithic reports a monolithic POST refused as a request the
// registry does not support (not a refusal of the push itself).
func refusesMonolithic(err error) bool {
	var e *errcode.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Status {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusUnsupportedMediaType, http.StatusNotImplemented:
		return true
	}
	return false
}

// done reports whether up already stored the blob digest.
func (up blobUpload) done(digest string) bool {
	return up.err == nil && up.stored && up.digest == digest
}

// finishUpload makes sure the blob is stored: nothing when round 1 stored
// it, one PUT into round 1's session, or a new upload when round 1 sent
// nothing for it or stored a different blob (a first signature's config,
// and the plan is an append).
func (c *Client) finishUpload(ctx context.Context, conn *repoConn, sigRef string, up blobUpload, digest string, data []byte) error {
	if up.err != nil {
		return up.err
	}
	if up.done(digest) {
		return nil
	}
	if up.location == nil {
		if up = c.startUpload(ctx, conn, sigRef, digest, data); up.err != nil || up.stored {
			return up.err
		}
	}
	u := *up.location
	q := u.Query()
	q.Set("digest", digest)
	u.RawQuery = q.Encode()
	_, err := conn.do(ctx, request{op: "upload blob", ref: sigRef + " (" + digest + ")", method: http.MethodPut,
		url: u.String(), body: data, contentType: "application/octet-stream",
		ok: []int{http.StatusCreated, http.StatusOK, http.StatusNoContent}})
	return err
}

// cancelUploads DELETEs sessions a plan opened and will not use (a
// deduplicated re-sign, a blob already there, a plan replaced by a
// re-merge), in parallel with whatever comes next; wait waits for them.
// Best effort: a registry that refuses lets the session expire.
func (c *Client) cancelUploads(ctx context.Context, conn *repoConn, uploads []blobUpload) (wait func()) {
	var wg sync.WaitGroup
	for _, up := range uploads {
		if up.err != nil || up.location == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = conn.do(ctx, request{op: "cancel upload", ref: up.location.Path, method: http.MethodDelete,
				url: up.location.String(), ok: []int{http.StatusNoContent, http.StatusOK, http.StatusAccepted, http.StatusNotFound}})
		}()
	}
	return wg.Wait
}
