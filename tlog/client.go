// Package tlog records signatures in a Rekor v1 transparency log over plain
// net/http (no sigstore client stack) and checks what the log answers before
// anything is pushed. It implements registry.TransparencyLog; the offline check
// of a bundle annotation lives in the signing package.
package tlog

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ocisign/ocisign/internal/errcode"
	"github.com/ocisign/ocisign/internal/loopback"
	"github.com/ocisign/ocisign/internal/retry"
	"github.com/ocisign/ocisign/internal/serviceurl"

	"github.com/ocisign/ocisign/signing"
)

const (
	// PublicURL is the public Sigstore log (--tlog-upload without --rekor-url).
	PublicURL = "https://rekor.sigstore.dev"
	// EnvPublicKey names a PEM file of trusted log keys, as for cosign.
	EnvPublicKey = "SIGSTORE_REKOR_PUBLIC_KEY"
	// EnvURL is ocisign's variable for the log URL (the CLI reads it).
	EnvURL = "OCISIGN_REKOR_URL"
	// DefaultTimeout bounds one Upload (key fetch, retries and all).
	DefaultTimeout = 30 * time.Second
	// ErrorCode is the code of every log failure (docs/design.md).
	ErrorCode = "tlog_error"

	maxReplyBytes = 4 << 20 // an entry with its inclusion proof is a few KiB
	// maxRetryAfter caps the wait a log's Retry-After can ask for, so a
	// bad header cannot hold an upload for its whole deadline.
	maxRetryAfter = 10 * time.Second
	entriesPath   = "/api/v1/log/entries"
	publicKeyPath = "/api/v1/log/publicKey"
)

// Options configure a Client. The zero value is usable.
type Options struct {
	// Keys are trusted log keys already loaded (the port reads key files
	// with a deadline before it makes a client); they win over the fields
	// below.
	Keys *signing.RekorKeys
	// PublicKey is the trusted log key (ECDSA, as cosign requires).
	PublicKey crypto.PublicKey
	// PublicKeyFile is a PEM file of trusted log keys, used when PublicKey
	// is nil. When both are empty, $SIGSTORE_REKOR_PUBLIC_KEY is read; when
	// that is unset too, the key is fetched once from the log itself
	// (GET /api/v1/log/publicKey, refused over plain HTTP to a non-loopback
	// host, where anyone on the path could swap it).
	PublicKeyFile string
	// HTTPClient sends the requests; nil means a client on
	// http.DefaultTransport. Its own Timeout, if any, also applies.
	HTTPClient *http.Client
	// Timeout bounds each Upload; 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxAttempts bounds tries on 5xx and network errors; 0 means 3.
	MaxAttempts int
	// UserAgent is sent with every request; "" means "ocisign".
	UserAgent string
}

// Client talks to one Rekor v1 log. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	name      string // base URL without credentials, for messages
	http      *http.Client
	timeout   time.Duration
	retry     retry.Policy
	userAgent string

	mu   sync.Mutex
	keys *signing.RekorKeys
}

// New returns a client for the log at rawURL (e.g. http://127.0.0.1:3000
// or PublicURL). A configured key that does not load is an error here, not
// at the first upload.
func New(rawURL string, opts Options) (*Client, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, &errcode.Error{Op: "transparency log", Ref: RedactURL(rawURL), Code: errcode.CodeInvalidRequest,
			Err: fmt.Errorf("the Rekor URL %w", err)}
	}
	c := &Client{base: u, name: RedactURL(u.String()), http: opts.HTTPClient, timeout: opts.Timeout,
		userAgent: opts.UserAgent}
	if c.http == nil {
		c.http = &http.Client{Transport: http.DefaultTransport}
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	// At most 3 attempts unless told; a log's Retry-After is capped so a
	// bad header cannot hold an upload for its whole deadline.
	c.retry = retry.Policy{MaxRetries: 2, BaseDelay: 250 * time.Millisecond, MaxDelay: maxRetryAfter}
	if opts.MaxAttempts > 0 {
		c.retry.MaxRetries = opts.MaxAttempts - 1
	}
	if c.userAgent == "" {
		c.userAgent = "ocisign"
	}
	c.keys = opts.Keys
	if c.keys == nil {
		keys, err := TrustedKeys(opts.PublicKey, opts.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		c.keys = keys
	}
	return c, nil
}

// CheckURL says what is wrong with a Rekor URL ("must be …", to follow the
// URL's name), nil when New would take it; the error never quotes the URL
// (the caller names it, redacted).
func CheckURL(rawURL string) error {
	_, err := parseURL(rawURL)
	return err
}

func parseURL(rawURL string) (*url.URL, error) { return serviceurl.Parse(rawURL) }

// TrustedKeys returns the configured log keys: key, else the PEM file at
// path, else the file $SIGSTORE_REKOR_PUBLIC_KEY names; nil, nil when none
// is configured. The CLI uses it for verify without a log URL.
func TrustedKeys(key crypto.PublicKey, path string) (*signing.RekorKeys, error) {
	switch {
	case key != nil:
		return signing.NewRekorKeys(key)
	case path != "":
		return signing.LoadRekorPublicKeys(path)
	case os.Getenv(EnvPublicKey) != "":
		return signing.LoadRekorPublicKeys(os.Getenv(EnvPublicKey))
	}
	return nil, nil
}

// URL is the log's base URL without credentials.
func (c *Client) URL() string { return c.name }

// Upload records signature (raw bytes, over payload, by the key in
// publicKeyPEM, a public key or a keyless certificate) as a hashedrekord v0.0.1 entry and returns the bundle
// annotation cosign would write. An entry that already exists (409) is
// fetched and reused. The reply must be for this very entry and its Signed
// Entry Timestamp must verify with a trusted log key; otherwise Upload fails
// and the caller must not push the signature.
func (c *Client) Upload(ctx context.Context, payload, signature, publicKeyPEM []byte) (*signing.LogEntry, error) {
	verifier, err := signing.VerifierFromPEM(publicKeyPEM)
	if err != nil {
		return nil, err
	}
	switch verifier.Algorithm() {
	case signing.ECDSAP256SHA256, signing.RSAPKCS1SHA256:
	default:
		// Rekor checks the signature over the sha256 it is given, and cosign
		// only accepts sha256 bundles: other schemes cannot be logged.
		return nil, &signing.KeyError{Code: signing.ErrUnsupportedKey.Code, Problem: fmt.Sprintf(
			"%s signatures cannot be recorded in a Rekor log as cosign verifies them (hashedrekord over sha256); use an ECDSA P-256 or RSA key", verifier.Algorithm())}
	}
	if err := verifier.Verify(payload, signature); err != nil {
		return nil, c.fail("upload", false, errors.New("the signature does not verify with the given public key; not recording it"))
	}

	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	keys, err := c.PublicKeys(ctx)
	if err != nil {
		return nil, c.ctxFail(parent, "upload", err)
	}
	proposed, err := json.Marshal(signing.NewHashedRekord(payload, signature, publicKeyPEM))
	if err != nil {
		return nil, c.fail("upload", false, err)
	}
	reply, err := c.do(ctx, http.MethodPost, entriesPath, proposed, http.StatusCreated, http.StatusConflict)
	if err != nil {
		return nil, c.ctxFail(parent, "upload", err)
	}
	if reply.status == http.StatusConflict {
		reply, err = c.existing(ctx, reply, proposed)
		if err != nil {
			return nil, c.ctxFail(parent, "fetch existing entry", err)
		}
	}
	entry, err := c.checkReply(reply.body, payload, signature, verifier, keys)
	if err != nil {
		return nil, c.fail("upload", false, err)
	}
	return entry, nil
}

// existing fetches the entry a 409 points at: by its Location, else by
// searching for the proposed entry (POST /api/v1/log/entries/retrieve).
func (c *Client) existing(ctx context.Context, conflict *reply, proposed []byte) (*reply, error) {
	if id := entryIDFromLocation(conflict.location); id != "" {
		return c.do(ctx, http.MethodGet, entriesPath+"/"+id, nil, http.StatusOK)
	}
	search, err := json.Marshal(map[string][]json.RawMessage{"entries": {proposed}})
	if err != nil {
		return nil, err
	}
	r, err := c.do(ctx, http.MethodPost, entriesPath+"/retrieve", search, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var found []json.RawMessage
	if err := json.Unmarshal(r.body, &found); err != nil {
		return nil, fmt.Errorf("the log's search reply is not a JSON list: %v", err)
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("the log said the entry exists (409) but a search found %d entries", len(found))
	}
	r.body = found[0]
	return r, nil
}

var entryIDPattern = regexp.MustCompile(`^([0-9a-fA-F]{16})?[0-9a-fA-F]{64}$`)

func entryIDFromLocation(loc string) string {
	if loc == "" {
		return ""
	}
	u, err := url.Parse(loc)
	if err != nil {
		return ""
	}
	id := u.Path[strings.LastIndex(u.Path, "/")+1:]
	if !entryIDPattern.MatchString(id) {
		return ""
	}
	return id
}

// logEntry is one value of Rekor's {"<entry id>": {...}} reply.
type logEntry struct {
	Body           *string `json:"body"`
	IntegratedTime *int64  `json:"integratedTime"`
	LogID          *string `json:"logID"`
	LogIndex       *int64  `json:"logIndex"`
	Verification   *struct {
		SignedEntryTimestamp []byte `json:"signedEntryTimestamp"`
	} `json:"verification"`
}

// checkReply turns a log reply into a bundle and accepts it only if it is
// the entry we asked for and its SET verifies: the same check verifiers run.
func (c *Client) checkReply(body, payload, signature []byte, verifier *signing.Verifier, keys *signing.RekorKeys) (*signing.LogEntry, error) {
	var entries map[string]logEntry
	if err := json.Unmarshal(body, &entries); err != nil {
		return nil, fmt.Errorf("the log's reply is not a Rekor log entry: %v", err)
	}
	if len(entries) != 1 {
		return nil, fmt.Errorf("the log's reply has %d entries, want 1", len(entries))
	}
	var id string
	var e logEntry
	for k, v := range entries { // exactly one
		id, e = k, v
	}
	switch {
	case e.Body == nil || e.IntegratedTime == nil || e.LogID == nil || e.LogIndex == nil:
		return nil, errors.New("the log's reply lacks body, integratedTime, logID or logIndex")
	case e.Verification == nil || len(e.Verification.SignedEntryTimestamp) == 0:
		return nil, errors.New("the log's reply has no signed entry timestamp")
	}
	bundle := signing.RekorBundle{SignedEntryTimestamp: e.Verification.SignedEntryTimestamp,
		Payload: signing.RekorPayload{Body: *e.Body, IntegratedTime: *e.IntegratedTime, LogIndex: *e.LogIndex, LogID: *e.LogID}}
	annotation, err := bundle.Annotation()
	if err != nil {
		return nil, err
	}
	checked, err := signing.VerifyRekorBundle(annotation, payload, signature, verifier, keys)
	if err != nil {
		return nil, fmt.Errorf("the log's reply does not check out: %w", err)
	}
	// Rekor keys the reply by "<16-hex tree ID><UUID>" (or the bare UUID).
	if !strings.HasSuffix(strings.ToLower(id), checked.UUID) {
		return nil, fmt.Errorf("the log's reply names entry %s but its body is entry %s", errcode.Clip(id, maxQuoted), checked.UUID)
	}
	return &signing.LogEntry{BundleAnnotation: annotation, LogIndex: checked.LogIndex, UUID: checked.UUID,
		IntegratedTime: checked.IntegratedTime}, nil
}

// PublicKeys returns the trusted log keys, fetching the log's own key once
// when none was configured.
func (c *Client) PublicKeys(ctx context.Context) (*signing.RekorKeys, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys != nil {
		return c.keys, nil
	}
	if c.base.Scheme == "http" && !loopback.Host(c.base.Hostname()) {
		return nil, fmt.Errorf("refusing to trust a log key fetched over plain HTTP from %s; pass --rekor-public-key or set %s", c.name, EnvPublicKey)
	}
	r, err := c.do(ctx, http.MethodGet, publicKeyPath, nil, http.StatusOK)
	if err != nil {
		return nil, fmt.Errorf("fetching the log's public key: %w", err)
	}
	pemBytes := r.body
	var quoted string // a JSON string, if content negotiation went that way
	if json.Unmarshal(r.body, &quoted) == nil {
		pemBytes = []byte(quoted)
	}
	keys, err := signing.ParseRekorPublicKeys(pemBytes, c.name+publicKeyPath)
	if err != nil {
		return nil, fmt.Errorf("the log's public key: %w", err)
	}
	c.keys = keys
	return keys, nil
}

// BundleCheck returns the check for registry.VerifyRequest.BundleCheck,
// trusting the configured log keys or, when none was configured, the key
// fetched once from this log.
func (c *Client) BundleCheck(ctx context.Context, v *signing.Verifier) (signing.BundleCheck, error) {
	tctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	keys, err := c.PublicKeys(tctx)
	if err != nil {
		return nil, c.ctxFail(ctx, "fetch public key", err)
	}
	return BundleCheck(v, keys), nil
}

// BundleCheck returns the offline check of a layer's bundle annotation for
// signatures by v, trusting the log keys: for registry.VerifyRequest.
// signature is the layer's raw (base64-decoded) signature.
func BundleCheck(v *signing.Verifier, keys *signing.RekorKeys) func(bundleJSON string, payload, signature []byte) (*signing.LogEntry, error) {
	return func(bundleJSON string, payload, signature []byte) (*signing.LogEntry, error) {
		e, err := signing.VerifyRekorBundle(bundleJSON, payload, signature, v, keys)
		if err != nil {
			return nil, err
		}
		return &signing.LogEntry{BundleAnnotation: bundleJSON, LogIndex: e.LogIndex, UUID: e.UUID, IntegratedTime: e.IntegratedTime}, nil
	}
}

// RedactURL returns raw for messages without its user-info, where
// credentials go (https://user:token@host/). A URL that does not parse
// cleanly, or has an "@" left after the host (a password holding "/" makes
// the parser end the host early), gets everything between "://" (or its
// start) and its last "@" replaced by "[REDACTED]".
func RedactURL(raw string) string {
	if !strings.Contains(raw, "@") {
		return raw // nothing to hide; keep it as typed
	}
	if u, err := url.Parse(raw); err == nil && u.Opaque == "" {
		u.User = nil
		if s := u.String(); !strings.Contains(s, "@") {
			return s
		}
	}
	head, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 && !strings.Contains(raw[:i], "@") {
		head, rest = raw[:i+3], raw[i+3:]
	}
	if j := strings.LastIndex(rest, "@"); j >= 0 {
		return head + "[REDACTED]" + rest[j:]
	}
	return raw
}

// maxQuoted bounds the log's own text quoted in an error.
const maxQuoted = 200
