// Package loopback says whether a host is this machine: plain HTTP is
// allowed to it (registries, transparency logs), and tests may run there.
package loopback

import (
	"net"
	"strings"
)

// Host reports whether host ("name", "name:port", "[v6]:port") is
// localhost or a loopback address.
func Host(host string) bool {
	h := host
	if hn, _, err := net.SplitHostPort(host); err == nil {
		h = hn
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
