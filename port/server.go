// Package port serves the Erlang port protocol (docs/port-protocol.md):
// length-prefixed JSON requests on stdin, replies on stdout, dispatched onto
// the registry package's Client.Sign and Client.Verify.
package port

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ocisign/ocisign/internal/errcode"

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
		s.reply(versionReply{replyHead: okHead(req.id), Version: s.cfg.Version, Protocol: ProtocolVersion,
			MaxFrameBytes: s.cfg.MaxFrameBytes})
		return keepServing
	case "exit":
		s.reply(okHead(req.id))
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

func (s *server) handle(ctx context.Context, req *request) {
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Logf("request %s (%s) panicked: %v\n%s", idText(req.id), req.op, p, debug.Stack())
			s.replyError(req.id, CodeInternal, fmt.Sprintf("internal error while handling %s", req.op), false)
		}
	}()
	// The port owns the deadline so timeout_ms can be longer than the
	// clients' default and a timeout reply names the limit that applied.
	limit, limitName := s.cfg.Registry.Timeout, "the default timeout"
	if req.timeout > 0 {
		limit, limitName = req.timeout, "timeout_ms"
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	ctx = context.WithValue(ctx, deadlineKey{}, fmt.Sprintf("%s (%s)", limit, limitName))
	switch req.op {
	case "sign":
		s.sign(ctx, req)
	case "verify":
		s.verify(ctx, req)
	case "public_key":
		s.publicKey(ctx, req)
	default:
		s.replyError(req.id, CodeInternal, "no handler for op "+req.op, false)
	}
}

// settings resolves the request's fields over the environment and the
// config file, the CLI's order (internal/settings).
func (s *server) settings(req *request) settings.Values {
	op := settings.Sign
	if req.op == "verify" {
		op = settings.Verify
	}
	return settings.Resolve(settings.Values{SignKey: req.signKey, RekorURL: req.rekorURL, RekorPublicKey: req.rekorPublicKey,
		Annotations: req.annotations, Recursive: req.recursive}, s.cfg.Getenv, s.cfg.Defaults, op)
}

func (s *server) sign(ctx context.Context, req *request) {
	signer, ok := s.signer(ctx, req)
	if !ok {
		return
	}
	set := s.settings(req)
	signReq := registry.SignRequest{
		Reference:   req.reference,
		Digest:      req.digest,
		Signer:      signer,
		Annotations: set.Annotations,
		Recursive:   set.Recursive,
	}
	if url := s.rekorURL(req); url != "" {
		logClient, err := s.logClient(ctx, url, s.rekorPublicKey(req))
		if err != nil {
			s.replyFailure(ctx, req, err)
			return
		}
		signReq.Tlog = logClient
	}
	res, err := s.backend(req.allowInsecure).Sign(ctx, signReq)
	if err == nil && res == nil {
		err = errors.New("registry returned no result")
	}
	if err != nil {
		s.replyFailure(ctx, req, err)
		return
	}
	if w := signer.Warning(); w != "" {
		res.Warnings = append([]string{w}, res.Warnings...)
	}
	s.reply(signReply{replyHead: okHead(req.id), SignResult: res})
}

func (s *server) verify(ctx context.Context, req *request) {
	verifier, err := s.loadPublicKey(ctx, req.publicKey)
	if err != nil {
		s.replyFailure(ctx, req, err)
		return
	}
	check, ok := s.bundleCheck(ctx, req, verifier)
	if !ok {
		return
	}
	res, err := s.backend(req.allowInsecure).Verify(ctx, registry.VerifyRequest{
		Reference:   req.reference,
		Digest:      req.digest,
		Verifier:    verifier,
		Annotations: req.annotations,
		BundleCheck: check,
		RequireTlog: req.requireTlog,
	})
	if err == nil && (res == nil || res.Valid == 0) {
		err = &errcode.Error{Op: "verify", Ref: req.reference, Code: CodeVerifyFailed, Err: errors.New("no valid signature")}
	}
	if err != nil {
		if code, _ := errcode.Of(err); code == CodeVerifyFailed && res != nil {
			message := withLayerReasons(err.Error(), res)
			s.logFailure(req, code, message)
			s.replyError(req.id, code, message, false)
			return
		}
		s.replyFailure(ctx, req, err)
		return
	}
	s.reply(verifyReply{replyHead: okHead(req.id), VerifyResult: res})
}

func (s *server) publicKey(ctx context.Context, req *request) {
	signer, ok := s.signer(ctx, req)
	if !ok {
		return
	}
	pemBytes, err := signer.Verifier().PublicKeyPEM()
	if err != nil {
		s.replyFailure(ctx, req, err)
		return
	}
	s.reply(publicKeyReply{replyHead: okHead(req.id), PublicKey: string(pemBytes), Algorithm: string(signer.Algorithm())})
}

// signer resolves the key (request sign_key > OCIBUILD_SIGN_KEY > the
// config's sign_key) through the key cache, waiting no longer than ctx;
// on failure it has replied.
func (s *server) signer(ctx context.Context, req *request) (*signing.Signer, bool) {
	path := s.settings(req).SignKey
	if path == "" {
		s.replyError(req.id, CodeInvalidRequest, noSignKeyMessage, false)
		return nil, false
	}
	signer, err := s.keys.get(ctx, path)
	if err != nil {
		s.replyFailure(ctx, req, err)
		return nil, false
	}
	return signer, true
}

// noSignKeyMessage is the invalid_request message when no key source names
// a signing key.
const noSignKeyMessage = `no sign_key in the request, OCIBUILD_SIGN_KEY is not set, and no config file gives a sign_key (ocisign --config FILE port, or OCISIGN_CONFIG)`

// loadPublicKey loads a verification key, waiting no longer than ctx.
// Pipes and devices are refused, as for signing keys.
func (s *server) loadPublicKey(ctx context.Context, path string) (*signing.Verifier, error) {
	return waitFor(ctx, path, func() (*signing.Verifier, error) { return s.cfg.LoadPublicKey(path) })
}

// logKey names one transparency log client: the log and the key file trusted for it.
type logKey struct{ url, keyFile string }

// rekorURL: the request's rekor_url > OCISIGN_REKOR_URL > the config's.
func (s *server) rekorURL(req *request) string { return s.settings(req).RekorURL }

// rekorPublicKey: the request's rekor_public_key > SIGSTORE_REKOR_PUBLIC_KEY >
// the config's; "" means the key is fetched from the log.
func (s *server) rekorPublicKey(req *request) string { return s.settings(req).RekorPublicKey }

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
func (s *server) bundleCheck(ctx context.Context, req *request, verifier *signing.Verifier) (signing.BundleCheck, bool) {
	keyFile, url := s.rekorPublicKey(req), s.rekorURL(req)
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

// withLayerReasons makes sure the message says why each signature layer
// was refused, adding the reasons the error text does not already carry.
func withLayerReasons(message string, res *registry.VerifyResult) string {
	var missing []string
	for _, c := range res.Signatures {
		if c.Valid {
			continue
		}
		reason := c.Error
		if reason == "" {
			reason = "not valid"
		}
		if c.Error == "" || !strings.Contains(message, c.Error) {
			missing = append(missing, fmt.Sprintf("layer %d (%s): %s", c.Layer, c.Digest, reason))
		}
	}
	if len(missing) == 0 {
		return message
	}
	return message + ": " + strings.Join(missing, "; ")
}

// deadlineKey carries the description of a request's deadline.
type deadlineKey struct{}

// replyFailure sends err with its stable code. When the request's own
// deadline passed, the message says which limit applied; when the port
// abandoned it, the message says why.
func (s *server) replyFailure(ctx context.Context, req *request, err error) {
	code, retryable := errcode.Of(err)
	message := err.Error()
	switch {
	case code == errcode.CodeTimeout && errors.Is(ctx.Err(), context.DeadlineExceeded):
		limit, _ := ctx.Value(deadlineKey{}).(string)
		message = failureSubject(req, err) + ": timed out after " + limit + whileLoadingKey(err)
	case code == errcode.CodeCancelled && errors.Is(ctx.Err(), context.Canceled):
		message = failureSubject(req, err) + ": request abandoned: " + abandonReason(context.Cause(ctx)) + whileLoadingKey(err)
	}
	s.logFailure(req, code, message)
	s.replyError(req.id, code, message, retryable)
}

// failureSubject names what failed: the registry step and its reference
// when the error has them, else the op and the request's reference.
func failureSubject(req *request, err error) string {
	var re *errcode.Error
	if errors.As(err, &re) && re.Op != "" {
		return strings.TrimSpace(re.Op + " " + re.Ref)
	}
	return strings.TrimSpace(req.op + " " + req.reference)
}

func whileLoadingKey(err error) string {
	var kw *keyWaitError
	if errors.As(err, &kw) {
		return " while loading key " + kw.path
	}
	return ""
}

// abandonCause is why the port cancelled the requests in flight.
type abandonCause struct {
	reason string
	err    error // the underlying failure, if any
}

func (c *abandonCause) Error() string { return c.reason }
func (c *abandonCause) Unwrap() error { return c.err }

// abandonReason words the cause of a cancelled request: the port's own
// (stdin EOF, a broken stdout) or its caller's (a signal in the CLI).
func abandonReason(cause error) string {
	var ac *abandonCause
	switch {
	case errors.As(cause, &ac):
		return ac.reason
	case cause == nil || cause == context.Canceled:
		return "the port is shutting down"
	}
	// os/signal.NotifyContext's cause reads "<signal> signal received".
	for _, sig := range []struct {
		signal os.Signal
		name   string
	}{{syscall.SIGTERM, "SIGTERM"}, {os.Interrupt, "SIGINT"}} {
		if cause.Error() == sig.signal.String()+" signal received" {
			return "the port received " + sig.name
		}
	}
	return "the port is shutting down: " + cause.Error()
}

func (s *server) logFailure(req *request, code, message string) {
	s.cfg.Logf("request %s (%s) failed: %s: %s", idText(req.id), req.op, code, message)
}

// Reply shapes. Every reply starts with id and ok.
type replyHead struct {
	ID json.RawMessage `json:"id"`
	OK bool            `json:"ok"`
}

func okHead(id json.RawMessage) replyHead { return replyHead{ID: id, OK: true} }

type errorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
}

type errorReply struct {
	replyHead
	Error errorBody `json:"error"`
}

type versionReply struct {
	replyHead
	Version  string `json:"version"`
	Protocol int    `json:"protocol"`
	// MaxFrameBytes is the largest request frame this port reads, so a
	// client never has to guess it (a larger frame gets a null-id reply).
	MaxFrameBytes int `json:"max_frame_bytes"`
}

type signReply struct {
	replyHead
	// Its warnings include the key's (verifiers need extra flags for
	// P-384/P-521 keys).
	*registry.SignResult
}

type verifyReply struct {
	replyHead
	*registry.VerifyResult
}

type publicKeyReply struct {
	replyHead
	PublicKey string `json:"public_key"`
	Algorithm string `json:"algorithm"`
}

func (s *server) replyError(id json.RawMessage, code, message string, retryable bool) {
	s.reply(errorReply{replyHead: replyHead{ID: id}, Error: errorBody{Code: code, Message: message, Retryable: retryable}})
}

func (s *server) reply(v any) {
	payload, err := json.Marshal(v)
	if err != nil {
		s.cfg.Logf("encoding a reply: %v", err)
		var id json.RawMessage
		if h, ok := replyID(v); ok {
			id = h
		}
		payload, _ = json.Marshal(errorReply{replyHead: replyHead{ID: id}, Error: errorBody{Code: CodeInternal, Message: "could not encode the reply"}})
	}
	s.out.write(payload)
}

func replyID(v any) (json.RawMessage, bool) {
	switch r := v.(type) {
	case signReply:
		return r.ID, true
	case verifyReply:
		return r.ID, true
	case publicKeyReply:
		return r.ID, true
	case versionReply:
		return r.ID, true
	case replyHead:
		return r.ID, true
	case errorReply:
		return r.ID, true
	}
	return nil, false
}

// idText renders an id for logs.
func idText(id json.RawMessage) string {
	if id == nil {
		return "null"
	}
	return string(id)
}

// frameWriter serialises reply frames: one Write per frame under a mutex,
// so frames from concurrent handlers never interleave.
type frameWriter struct {
	mu      sync.Mutex
	w       io.Writer
	buf     []byte
	failed  bool
	closed  atomic.Bool
	onError func(error)
}

func (f *frameWriter) write(payload []byte) {
	if f.closed.Load() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failed || f.closed.Load() {
		return
	}
	f.buf = appendFrame(f.buf[:0], payload)
	if _, err := f.w.Write(f.buf); err != nil {
		f.failed = true
		f.onError(err)
	}
	if cap(f.buf) > 1<<20 {
		f.buf = nil // do not pin one huge reply's buffer
	}
}

// close drops later replies: Serve has returned and out is the caller's again.
func (f *frameWriter) close() { f.closed.Store(true) }
