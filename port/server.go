// Package port serves the Erlang port protocol (docs/port-protocol.md):
// length-prefixed JSON requests on stdin, replies on stdout, dispatched onto
// the registry package's Client.Sign and Client.Verify.
package port

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/ocisign/ocisign/internal/settings"
	"github.com/ocisign/ocisign/registry"
	"github.com/ocisign/ocisign/signing"
	"github.com/ocisign/ocisign/tlog"
)

// Backend performs the registry operations; *registry.Client is one.
type Backend interface {
	Sign(ctx context.Context, req registry.SignRequest) (*registry.SignResult, error)
	Verify(ctx context.Context, req registry.VerifyRequest) (*registry.VerifyResult, error)
	Connect(ctx context.Context, reference string) error
}

// DefaultShutdownGrace bounds the wait for in-flight replies after stdin EOF.
const DefaultShutdownGrace = 2 * time.Second

// Config configures Serve. The zero value serves with the defaults.
type Config struct {
	// MaxFrameBytes bounds one request frame; 0 means DefaultMaxFrameBytes.
	MaxFrameBytes int
	// Version is the program version the "version" op reports.
	Version string
	// MaxConcurrent bounds requests handled at once; 0 means DefaultMaxConcurrent.
	MaxConcurrent int
	// MaxTimeout caps a request's timeout_ms; 0 means DefaultMaxTimeout
	// (raised to Registry.Timeout if that is longer).
	MaxTimeout time.Duration
	// Registry is the base for the port's registry clients, one per
	// allow_insecure_registry setting. Timeout is the deadline of requests
	// without timeout_ms (0 means registry.DefaultTimeout); the port applies
	// it per request. An empty SignatureRepository is taken from
	// COSIGN_REPOSITORY; a nil Logf from Config.Logf.
	Registry registry.Options
	// NewBackend builds a backend from options; nil means registry.New.
	NewBackend func(registry.Options) Backend
	// LoadPrivateKey loads a signing key; nil means signing.LoadPrivateKey
	// with the password from COSIGN_PASSWORD only (stdin is the port).
	LoadPrivateKey func(path string) (*signing.Signer, error)
	// LoadPublicKey loads a verification key; nil means signing.LoadPublicKey.
	LoadPublicKey func(path string) (*signing.Verifier, error)
	// Defaults are the config file's settings (sign_key, rekor_url,
	// rekor_public_key, annotations, recursive): what a request and the
	// environment leave open, resolved as the CLI resolves them
	// (internal/settings).
	Defaults settings.Values
	// Getenv reads OCIBUILD_SIGN_KEY, COSIGN_REPOSITORY, OCISIGN_REKOR_URL and
	// SIGSTORE_REKOR_PUBLIC_KEY; nil means os.Getenv.
	Getenv func(string) string
	// Tlog is the base for the port's transparency log clients, one per log
	// URL and key file (HTTPClient, Timeout, MaxAttempts, UserAgent).
	Tlog tlog.Options
	// ShutdownGrace bounds the wait for in-flight replies after stdin EOF;
	// 0 means DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// Logf receives diagnostics (stderr in the CLI); nil discards them.
	Logf func(format string, args ...any)
}

func (c Config) withDefaults() Config {
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.MaxTimeout <= 0 {
		c.MaxTimeout = DefaultMaxTimeout
	}
	if c.Registry.Timeout <= 0 {
		c.Registry.Timeout = registry.DefaultTimeout
	}
	if c.MaxTimeout < c.Registry.Timeout {
		c.MaxTimeout = c.Registry.Timeout
	}
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if c.NewBackend == nil {
		c.NewBackend = func(o registry.Options) Backend { return registry.New(o) }
	}
	if c.LoadPrivateKey == nil {
		c.LoadPrivateKey = func(path string) (*signing.Signer, error) {
			return signing.LoadPrivateKey(path, signing.EnvPassword(nil))
		}
	}
	if c.LoadPublicKey == nil {
		c.LoadPublicKey = signing.LoadPublicKey
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	if c.Registry.SignatureRepository == "" {
		c.Registry.SignatureRepository = c.Getenv("COSIGN_REPOSITORY")
	}
	if c.Registry.Logf == nil {
		c.Registry.Logf = c.Logf
	}
	return c
}

// Serve reads request frames from in and writes reply frames to out until
// in ends. At EOF (or when ctx is cancelled) it cancels the requests in
// flight, waits up to Config.ShutdownGrace for their replies and returns.
// It returns nil at a clean EOF, an error wrapping ErrTruncatedFrame when in
// ends inside a frame, the write error when out breaks, or ctx's error.
// When it returns before in ends, one goroutine stays blocked reading in
// until in ends or the process exits.
func Serve(ctx context.Context, in io.Reader, out io.Writer, cfg Config) error {
	cfg = cfg.withDefaults()
	s := &server{
		cfg:           cfg,
		keys:          newKeyCache(cfg.LoadPrivateKey),
		backends:      map[bool]Backend{},
		logs:          map[logKey]*tlog.Client{},
		running:       make(chan struct{}, cfg.MaxConcurrent),
		admitted:      make(chan struct{}, maxAdmittedRequests),
		admittedBytes: semaphore.NewWeighted(maxAdmittedBytes),
	}
	serveCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s.out = &frameWriter{w: out, onError: func(err error) {
		cancel(&abandonCause{reason: "the port could not write a reply: " + err.Error(), err: err})
	}}

	type readResult struct {
		frame []byte
		err   error
	}
	frames := make(chan readResult)
	reader := newFrameReader(in, cfg.MaxFrameBytes)
	go func() {
		for {
			frame, err := reader.Next()
			select {
			case frames <- readResult{frame, err}:
			case <-serveCtx.Done():
				return
			}
			var tooLarge *FrameTooLargeError
			if err != nil && !errors.As(err, &tooLarge) {
				return
			}
		}
	}()

	for {
		select {
		case <-serveCtx.Done():
			s.shutdown(cancel, nil) // the cause is already set
			if ctx.Err() != nil {
				return ctx.Err()
			}
			cause := context.Cause(serveCtx)
			var ac *abandonCause
			if errors.As(cause, &ac) && ac.err != nil {
				cause = ac.err
			}
			return fmt.Errorf("writing a reply: %w", cause)
		case r := <-frames:
			var tooLarge *FrameTooLargeError
			switch {
			case r.err == nil:
				if s.dispatch(serveCtx, r.frame) == exitRequested {
					// Like stdin EOF, but the client keeps the pipe open, so
					// it sees the exit status (and never has to signal a PID
					// the runtime may have reaped).
					s.shutdown(cancel, &abandonCause{reason: "the client asked the port to exit"})
					return nil
				}
			case errors.As(r.err, &tooLarge):
				cfg.Logf("refused a request: %v", r.err)
				s.replyError(nil, CodeFrameTooLarge, r.err.Error(), false)
			case errors.Is(r.err, io.EOF):
				s.shutdown(cancel, &abandonCause{reason: "the port's input closed (stdin EOF)"})
				return nil
			default:
				s.shutdown(cancel, &abandonCause{reason: "the port's input failed: " + r.err.Error(), err: r.err})
				return r.err
			}
		}
	}
}

type server struct {
	cfg  Config
	out  *frameWriter
	keys *keyCache

	backendsMu sync.Mutex
	backends   map[bool]Backend

	logsMu sync.Mutex
	logs   map[logKey]*tlog.Client

	running  chan struct{} // semaphore: requests being handled
	admitted chan struct{} // semaphore: requests read but not yet answered
	// admittedBytes bounds the frame bytes of those requests: at most
	// maxAdmittedRequests requests and maxAdmittedBytes bytes wait at once;
	// past either, the port stops reading until replies go out.
	admittedBytes *semaphore.Weighted
	inFlight      sync.WaitGroup
}

// shutdown cancels work in flight with cause (the reason their replies
// give) and waits a bounded time for the replies, so a stuck handler or a
// blocked stdout never keeps the process alive.
func (s *server) shutdown(cancel context.CancelCauseFunc, cause error) {
	cancel(cause)
	done := make(chan struct{})
	go func() { s.inFlight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.cfg.ShutdownGrace):
		s.cfg.Logf("giving up on requests still running after %s", s.cfg.ShutdownGrace)
	}
	s.out.close()
}

// dispatchResult tells the serve loop whether to go on.
type dispatchResult int

const (
	keepServing dispatchResult = iota
	exitRequested
)

// dispatch answers protocol errors, version and exit at once and runs the
// other ops in their own goroutine.
func (s *server) dispatch(ctx context.Context, frame []byte) dispatchResult {
	req, perr := parseRequest(frame, s.cfg.MaxTimeout)
	if perr != nil {
		s.cfg.Logf("refused request %s: %s", idText(perr.id), perr)
		s.replyError(perr.id, perr.code, perr.message, false)
		return keepServing
	}
	switch req.op {
	case "version":
		s.reply(req.id, versionReply{replyHead: okHead(req.id), Version: s.cfg.Version, Protocol: ProtocolVersion,
			MaxFrameBytes: s.cfg.MaxFrameBytes})
		return keepServing
	case "exit":
		s.reply(req.id, okHead(req.id))
		return exitRequested
	}
	weight := min(int64(len(frame)), maxAdmittedBytes)
	if err := s.admittedBytes.Acquire(ctx, weight); err != nil {
		s.replyFailure(ctx, req, ctx.Err())
		return keepServing
	}
	select {
	case s.admitted <- struct{}{}:
	case <-ctx.Done():
		s.admittedBytes.Release(weight)
		s.replyFailure(ctx, req, ctx.Err())
		return keepServing
	}
	s.inFlight.Add(1)
	go func() {
		defer s.inFlight.Done()
		defer s.admittedBytes.Release(weight)
		defer func() { <-s.admitted }()
		select {
		case s.running <- struct{}{}:
		case <-ctx.Done():
			s.replyFailure(ctx, req, ctx.Err())
			return
		}
		defer func() { <-s.running }()
		s.handle(ctx, req)
	}()
	return keepServing
}
