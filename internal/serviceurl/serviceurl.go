// Package serviceurl is the one rule for the URL of a service ocisign talks
// to besides registries (a transparency log, a certificate authority): an
// absolute http(s) URL without query, fragment or an "@" after the host.
package serviceurl

import (
	"errors"
	"net/url"
	"strings"
)

// Parse checks rawURL (surrounding space and trailing slashes dropped).
// Errors never repeat the URL, which may hold credentials.
func Parse(rawURL string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(rawURL), "/"))
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, errors.New("must be an absolute http:// or https:// URL")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("must not have a query or fragment")
	case strings.Contains(u.Host+u.Path, "@"):
		// "https://user:pa/ss@host" parses as host "user", path "/ss@host":
		// credentials would become a host name to look up and print.
		return nil, errors.New(`must not have an "@" after its host; percent-encode "/", "?" and "#" in credentials (https://user:token@host)`)
	}
	return u, nil
}
