// What the port keeps for its whole life: one registry client per
// allow_insecure_registry setting and one transparency log client per log
// and key file.

package port

import (
	"context"
	"strings"
	"time"

	"github.com/ocisign/ocisign/internal/settings"
	"github.com/ocisign/ocisign/signing"
	"github.com/ocisign/ocisign/tlog"
)

// logKey names one transparency log client: the log and the key file trusted for it.
type logKey struct{ url, keyFile string }

// logClient returns the port's client for one log and key file, made once
// and kept for the life of the port, so a fetched log key is fetched once.
// The key file is read before the lock is taken and no longer than ctx
// allows, so a slow file never holds up other requests; failures are not
// cached.
func (s *server) logClient(ctx context.Context, url, keyFile string) (*tlog.Client, error) {
	k := logKey{url: strings.TrimRight(url, "/"), keyFile: keyFile}
	s.logsMu.Lock()
	c := s.logs[k]
	s.logsMu.Unlock()
	if c != nil {
		return c, nil
	}
	opts := s.cfg.Tlog
	if keyFile != "" {
		keys, err := s.loadLogKeys(ctx, keyFile)
		if err != nil {
			return nil, err
		}
		opts.Keys = keys
	}
	c, err := tlog.New(url, opts)
	if err != nil {
		return nil, err
	}
	s.logsMu.Lock()
	defer s.logsMu.Unlock()
	if first := s.logs[k]; first != nil {
		return first, nil // a concurrent request made it first
	}
	s.logs[k] = c
	return c, nil
}

// loadLogKeys reads a PEM file of log keys, waiting no longer than ctx.
func (s *server) loadLogKeys(ctx context.Context, path string) (*signing.RekorKeys, error) {
	return waitFor(ctx, path, func() (*signing.RekorKeys, error) { return signing.LoadRekorPublicKeys(path) })
}

// bundleCheck returns the offline check of bundle annotations for verify:
// with the trusted key file, else the key of the request's log (fetched
// once per port). nil when no log key source is configured; then
// require_tlog is refused. On failure it has replied.
func (s *server) bundleCheck(ctx context.Context, req *request, set settings.Values, verifier *signing.Verifier) (signing.BundleCheck, bool) {
	keyFile, url := set.RekorPublicKey, set.RekorURL
	switch {
	case keyFile != "":
		keys, err := s.loadLogKeys(ctx, keyFile)
		if err != nil {
			s.replyFailure(ctx, req, err)
			return nil, false
		}
		return tlog.BundleCheck(verifier, keys), true
	case url != "":
		c, err := s.logClient(ctx, url, "")
		var check signing.BundleCheck
		if err == nil {
			check, err = c.BundleCheck(ctx, verifier)
		}
		if err != nil {
			if req.requireTlog {
				s.replyFailure(ctx, req, err)
				return nil, false
			}
			s.cfg.Logf("request %s: transparency log bundles are not checked: %v", idText(req.id), err)
			return nil, true
		}
		return check, true
	case req.requireTlog:
		s.replyError(req.id, CodeInvalidRequest, `require_tlog needs the log's public key: give rekor_public_key or rekor_url, or set `+
			tlog.EnvPublicKey+` or `+tlog.EnvURL, false)
		return nil, false
	}
	return nil, true
}

// backend returns the port's client for one allow_insecure_registry
// setting, so tokens and connections are reused across requests.
func (s *server) backend(allowInsecure bool) Backend {
	allowInsecure = allowInsecure || s.cfg.Registry.AllowInsecure
	s.backendsMu.Lock()
	defer s.backendsMu.Unlock()
	b := s.backends[allowInsecure]
	if b == nil {
		opts := s.cfg.Registry
		opts.AllowInsecure = allowInsecure
		// A backstop only: each request's own deadline fires first.
		opts.Timeout = s.cfg.MaxTimeout + time.Minute
		b = s.cfg.NewBackend(opts)
		s.backends[allowInsecure] = b
	}
	return b
}
