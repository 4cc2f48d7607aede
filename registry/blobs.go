package registry

import (
	"context"
	"net/http"
	"net/url"
	"sync"

	"github.com/ocisign/ocisign/internal/errcode"
)

// uploadSession is an upload opened with POST /blobs/uploads/. Round 1
// opens two (payload and config) alongside reading the .sig manifest, so
// round 2 needs only one PUT per blob: one round trip fewer than opening
// them when the write is certain. (A monolithic POST with the body would
// save the sessions, but distribution, behind most registries, answers it
// with a session anyway.) A session a plan does not use is cancelled.
type uploadSession struct {
	location *url.URL
	err      error
}

func (c *Client) openUpload(ctx context.Context, conn *repoConn, sigRef string) uploadSession {
	resp, err := conn.do(ctx, request{op: "upload blob", ref: sigRef, method: http.MethodPost,
		url: conn.url("blobs", "uploads/"), ok: []int{http.StatusAccepted}})
	if err != nil {
		return uploadSession{err: err}
	}
	loc := resp.header.Get("Location")
	if loc == "" {
		return uploadSession{err: &errcode.Error{Op: "upload blob", Ref: sigRef, Code: errcode.CodeRegistryError,
			Detail: "the registry opened an upload without a Location header"}}
	}
	u, err := resp.url.Parse(loc)
	if err != nil {
		return uploadSession{err: &errcode.Error{Op: "upload blob", Ref: sigRef, Code: errcode.CodeRegistryError, Err: err,
			Detail: "the registry returned a bad upload Location"}}
	}
	return uploadSession{location: u}
}

// putBlob finishes an upload session with one monolithic PUT.
func (c *Client) putBlob(ctx context.Context, conn *repoConn, sigRef string, up uploadSession, digest string, data []byte) error {
	if up.err != nil {
		return up.err
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
func (c *Client) cancelUploads(ctx context.Context, conn *repoConn, sessions []uploadSession) (wait func()) {
	var wg sync.WaitGroup
	for _, s := range sessions {
		if s.err != nil || s.location == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = conn.do(ctx, request{op: "cancel upload", ref: s.location.Path, method: http.MethodDelete,
				url: s.location.String(), ok: []int{http.StatusNoContent, http.StatusOK, http.StatusAccepted, http.StatusNotFound}})
		}()
	}
	return wg.Wait
}
