// Which registries answer a monolithic blob POST with an upload session.

package registry

import (
	"strings"
	"sync"
)

// uploadModes remembers, per registry, whether it answered a monolithic
// blob POST (`…/blobs/uploads/?digest=` with the body) by opening an upload
// session instead of storing the blob (distribution, behind most
// registries). It decides what round 1 sends for the config (planAppend):
// a session takes any blob, so on such a registry opening one for the
// config is never wasted, whatever config the plan turns out to need. On a
// registry that stores the POST, or one this Client has not uploaded to
// yet, round 1 sends the config of a first signature only for a request
// that expects one (SignRequest.JustPushed): on an append that blob would
// be one request for nothing.
type uploadModes struct {
	mu       sync.Mutex
	sessions map[string]bool // by lower-case registry host
}

// opensSessions reports whether host answered a monolithic POST with a session.
func (m *uploadModes) opensSessions(host string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions[strings.ToLower(host)]
}

// learn records how host answered up.
func (m *uploadModes) learn(host string, up blobUpload) {
	if up.err != nil || (!up.stored && up.location == nil) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sessions == nil {
		m.sessions = map[string]bool{}
	}
	m.sessions[strings.ToLower(host)] = !up.stored
}
