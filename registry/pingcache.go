package registry

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// pingCache remembers a registry's answer to the unauthenticated
// `GET /v2/` ping, so that a Client pings each registry once instead of once
// per repository: go-containerregistry's transport pings whenever a
// repository's transport is built, but the challenge (scheme and token
// realm) belongs to the registry, not the repository. On a loopback
// registry the first ping costs about four round trips (an https attempt
// the plain-HTTP server refuses, then http); later repositories cost none.
// Answers expire after pingCacheTTL, so a long-running port follows a
// registry that changes its authentication.
type pingCache struct {
	mu      sync.Mutex
	answers map[string]pingAnswer // by lower-case registry host
}

const pingCacheTTL = 10 * time.Minute

type pingAnswer struct {
	scheme    string // the scheme that answered
	status    int    // 200 or 401
	challenge []string
	at        time.Time
}

// errPingSchemeKnown fails an https ping to a registry known to answer on
// http only, so go-containerregistry starts its http ping at once.
var errPingSchemeKnown = errors.New("this registry answered on plain HTTP before; https not tried again")

// isPing reports whether req is the anonymous registry ping.
func isPing(req *http.Request) bool {
	return req.Method == http.MethodGet && req.URL.Path == "/v2/" && req.Header.Get("Authorization") == ""
}

// answer returns a stored answer to req as a response, or an error for an
// https ping to an http-only registry; ok is false when req must be sent.
func (p *pingCache) answer(host string, req *http.Request) (resp *http.Response, ok bool, err error) {
	if p == nil {
		return nil, false, nil
	}
	p.mu.Lock()
	a, found := p.answers[strings.ToLower(host)]
	p.mu.Unlock()
	if !found || time.Since(a.at) > pingCacheTTL {
		return nil, false, nil
	}
	if a.scheme != req.URL.Scheme {
		if req.URL.Scheme == "https" {
			return nil, true, errPingSchemeKnown
		}
		return nil, false, nil
	}
	header := http.Header{}
	for _, c := range a.challenge {
		header.Add("WWW-Authenticate", c)
	}
	return &http.Response{Status: http.StatusText(a.status), StatusCode: a.status, Header: header,
		Body: io.NopCloser(strings.NewReader("")), Request: req, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}, true, nil
}

// store keeps resp, the answer to a ping by scheme, as host's answer if it
// is one go-containerregistry acts on.
func (p *pingCache) store(host, scheme string, resp *http.Response) {
	if p == nil || (resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.answers == nil {
		p.answers = map[string]pingAnswer{}
	}
	p.answers[strings.ToLower(host)] = pingAnswer{scheme: scheme, status: resp.StatusCode,
		challenge: resp.Header.Values("WWW-Authenticate"), at: time.Now()}
}
