package harness

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ocisign/ocisign/internal/memregistry/memtest"
)

// Record is one request as the proxy saw it.
type Record struct {
	Method, Path string
	Monolithic   bool // a blob POST that carries its digest (and body)
	Status       int
	Start, End   time.Time // request headers read; response fully written
}

// Class is "METHOD kind": the request type without digests, tags or upload ids.
func (r Record) Class() string {
	if r.Monolithic {
		return r.Method + " blob upload (monolithic)"
	}
	return r.Method + " " + memtest.PathClass(r.Path)
}

// Hook may answer a request itself (a fault) and return true, or return
// false to let it through to the registry. attempt counts earlier requests
// of the same method and path (0 for the first).
type Hook func(w http.ResponseWriter, r *http.Request, attempt int) bool

// Proxy is a recording (and optionally fault-injecting) reverse proxy on
// 127.0.0.1 in front of a registry.
type Proxy struct {
	Addr string

	mu      sync.Mutex
	records []Record
	seen    map[string]int
	hook    Hook
	srv     *http.Server
}

// StartProxy proxies to target ("host:port").
func StartProxy(target string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: l.Addr().String(), seen: map[string]int{}}
	u := &url.URL{Scheme: "http", Host: target}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	// Location headers name the registry; the client must keep coming back here.
	rp.ModifyResponse = func(resp *http.Response) error {
		if loc := resp.Header.Get("Location"); loc != "" {
			resp.Header.Set("Location", strings.Replace(loc, "http://"+target, "http://"+p.Addr, 1))
		}
		return nil
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := Record{Method: r.Method, Path: r.URL.Path, Start: time.Now(),
			Monolithic: r.Method == http.MethodPost && r.URL.Query().Has("digest")}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		p.mu.Lock()
		key := r.Method + " " + r.URL.Path
		attempt := p.seen[key]
		p.seen[key]++
		hook := p.hook
		p.mu.Unlock()
		defer func() {
			rec.End, rec.Status = time.Now(), sw.status
			p.mu.Lock()
			p.records = append(p.records, rec)
			p.mu.Unlock()
		}()
		if hook != nil && hook(sw, r, attempt) {
			return
		}
		rp.ServeHTTP(sw, r)
	})}
	go p.srv.Serve(l)
	return p, nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack lets a fault drop the connection.
func (s *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	s.status = 0
	return http.NewResponseController(s.ResponseWriter).Hijack()
}

// SetHook replaces the fault hook (nil: pass everything through) and
// forgets the attempt counts.
func (p *Proxy) SetHook(h Hook) {
	p.mu.Lock()
	p.hook = h
	p.seen = map[string]int{}
	p.mu.Unlock()
}

// Take returns the records so far, by start time, and forgets them.
func (p *Proxy) Take() []Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.records
	p.records = nil
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.Close() }

// RoundTrips is the length of the longest chain of requests in which each
// starts after the previous one ended: the sequential round trips on the
// critical path. Requests that overlap count once.
func RoundTrips(recs []Record) int {
	depth := make([]int, len(recs))
	best := 0
	for i, r := range recs {
		depth[i] = 1
		for j := range recs[:i] {
			if !recs[j].End.After(r.Start) && depth[j]+1 > depth[i] {
				depth[i] = depth[j] + 1
			}
		}
		best = max(best, depth[i])
	}
	return best
}

// CountByClass counts records per Class.
func CountByClass(recs []Record) map[string]int {
	out := map[string]int{}
	for _, r := range recs {
		out[r.Class()]++
	}
	return out
}
