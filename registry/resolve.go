package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/ocisign/ocisign/internal/errcode"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// parseReference parses an image reference with a clear error.
func parseReference(ref string) (name.Reference, error) {
	if strings.TrimSpace(ref) == "" {
		return nil, &errcode.Error{Op: "parse reference", Code: errcode.CodeInvalidReference, Detail: "no image reference given"}
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, &errcode.Error{Op: "parse reference", Ref: ref, Code: errcode.CodeInvalidReference, Err: err,
			Detail: "not a valid image reference (want registry/repository[:tag][@sha256:<hex>])"}
	}
	return r, nil
}

func parseRepository(repo string) (name.Repository, error) {
	r, err := name.NewRepository(repo)
	if err != nil {
		// Only COSIGN_REPOSITORY sets a signature repository: name it.
		return name.Repository{}, &errcode.Error{Op: fmt.Sprintf("COSIGN_REPOSITORY %q is not a repository (registry/namespace/name)", repo),
			Code: errcode.CodeInvalidReference, Err: err}
	}
	return r, nil
}

// checkDigest validates a sha256 digest string.
func checkDigest(op, ref, d string) error {
	h, err := v1.NewHash(d)
	if err != nil || h.Algorithm != "sha256" {
		return &errcode.Error{Op: op, Ref: ref, Code: errcode.CodeInvalidReference,
			Detail: fmt.Sprintf("%q is not a sha256 digest (want sha256:<64 hex>)", d)}
	}
	return nil
}

// subject is a resolved manifest or index.
type subject struct {
	digest    string
	mediaType types.MediaType
	body      []byte // set when fetched with GET
}

func (s subject) isIndex() bool {
	return s.mediaType == types.OCIImageIndex || s.mediaType == types.DockerManifestList
}

// resolve turns ref (or an explicit digest, which wins) into a digest. With
// fetch it GETs the manifest (needed to walk an index); otherwise a HEAD
// suffices.
func (c *Client) resolve(ctx context.Context, conn *repoConn, ref name.Reference, digest string, fetch bool) (subject, error) {
	target := knownDigest(ref, digest)
	byDigest := target != ""
	if !byDigest {
		target = ref.Identifier()
	}
	display := conn.repo.Name() + ":" + target
	if byDigest {
		display = conn.repo.Name() + "@" + target
		if err := checkDigest("resolve", display, target); err != nil {
			return subject{}, err
		}
	}
	method := http.MethodHead
	if fetch {
		method = http.MethodGet
	}
	for {
		resp, err := conn.do(ctx, request{op: "resolve", ref: display, method: method,
			url: conn.url("manifests", target), accept: manifestAccept, ok: []int{http.StatusOK}, readBody: method == http.MethodGet})
		if err != nil {
			if e, ok := err.(*errcode.Error); ok && e.Code == errcode.CodeNotFound && e.Detail == "" {
				e.Detail = "no such manifest in " + conn.repo.Name()
			}
			return subject{}, err
		}
		s := subject{mediaType: types.MediaType(strings.TrimSpace(strings.Split(resp.header.Get("Content-Type"), ";")[0]))}
		if method == http.MethodGet {
			s.body = resp.body
			s.digest = sha256Digest(resp.body)
			var probe struct {
				MediaType types.MediaType `json:"mediaType"`
			}
			if json.Unmarshal(resp.body, &probe) == nil && probe.MediaType != "" {
				s.mediaType = probe.MediaType
			}
			if byDigest && s.digest != target {
				return subject{}, &errcode.Error{Op: "resolve", Ref: display, Code: errcode.CodeRegistryError,
					Detail: "the registry returned a manifest whose digest is " + s.digest}
			}
			return s, nil
		}
		hdr := resp.header.Get("Docker-Content-Digest")
		switch {
		case byDigest:
			s.digest = target
		case checkDigest("", "", hdr) == nil:
			s.digest = hdr
		default:
			// No usable Docker-Content-Digest: compute it from the bytes.
			method = http.MethodGet
			continue
		}
		return s, nil
	}
}

// maxRecursiveSubjects bounds what one recursive Sign signs: an index and
// all its (nested) children. Real multi-platform images have a handful.
const maxRecursiveSubjects = 1024

// subjects returns the digests to sign: the requested one first and, with
// recursive on an index, every child manifest (nested indexes walked, each
// digest once, breadth first). One index body is held at a time.
func (c *Client) subjects(ctx context.Context, conn *repoConn, ref name.Reference, digest string, recursive bool) ([]string, error) {
	root, err := c.resolve(ctx, conn, ref, digest, recursive)
	if err != nil {
		return nil, err
	}
	out := []string{root.digest}
	if !recursive || !root.isIndex() {
		return out, nil
	}
	seen := map[string]bool{root.digest: true}
	var nested []string // index digests still to read
	for idx := root; ; {
		children, err := indexChildren(conn, idx)
		if err != nil {
			return nil, err
		}
		for _, child := range children {
			d := child.Digest.String()
			if seen[d] {
				continue
			}
			switch child.MediaType {
			case types.OCIImageIndex, types.DockerManifestList:
				nested = append(nested, d)
			case types.OCIManifestSchema1, types.DockerManifestSchema2:
			default:
				continue
			}
			seen[d] = true
			out = append(out, d)
			if len(out) > maxRecursiveSubjects {
				return nil, &errcode.Error{Op: "read index", Ref: conn.repo.Name() + "@" + root.digest, Code: errcode.CodeRegistryError,
					Detail: fmt.Sprintf("the index holds more than %d manifests (nested indexes included); refusing to sign them all", maxRecursiveSubjects)}
			}
		}
		if len(nested) == 0 {
			return out, nil
		}
		d := nested[0]
		nested = nested[1:]
		if idx, err = c.resolve(ctx, conn, conn.repo.Digest(d), d, true); err != nil {
			return nil, err
		}
	}
}

// indexChildren parses an index's manifest list; the body can go after.
func indexChildren(conn *repoConn, idx subject) ([]v1.Descriptor, error) {
	var im v1.IndexManifest
	if err := json.Unmarshal(idx.body, &im); err != nil {
		return nil, &errcode.Error{Op: "read index", Ref: conn.repo.Name() + "@" + idx.digest, Code: errcode.CodeRegistryError,
			Err: err, Detail: "index does not parse"}
	}
	return im.Manifests, nil
}
