package registry

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
)

// checkTagTarget compares what a tag points to with the digest that is
// signed, when a request names both (the rebar3 plugin signs the digest
// ocibuild printed and names the tag it printed). Someone may have pushed
// to the tag since: the signature still goes to the printed digest, and the
// channel gets a warning naming both digests. It gets "" when the tag still
// points there or the request names no tag; a failed check is a warning
// too, never an error, since the digest itself is checked separately.
func (c *Client) checkTagTarget(ctx context.Context, conn *repoConn, ref name.Reference, digest string) <-chan string {
	out := make(chan string, 1)
	tag, isTag := ref.(name.Tag)
	if !isTag || digest == "" {
		out <- ""
		return out
	}
	go func() {
		s, err := c.resolve(ctx, conn, tag, "", false)
		switch {
		case err != nil:
			out <- fmt.Sprintf("could not check that %s still points at the signed digest %s: %v", tag.Name(), digest, err)
		case s.digest != digest:
			out <- fmt.Sprintf("%s now points at %s, not at the signed digest %s: something pushed to the tag after the build; %s is not signed by this run",
				tag.Name(), s.digest, digest, s.digest)
		default:
			out <- ""
		}
	}()
	return out
}
