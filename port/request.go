package port

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ocisign/ocisign/internal/errcode"

	"github.com/ocisign/ocisign/keyless"
	"github.com/ocisign/ocisign/signing"
	"github.com/ocisign/ocisign/tlog"
)

// Protocol error codes; backend errors use registry.ErrorCode's codes.
const (
	CodeInvalidJSON      = "invalid_json"
	CodeInvalidRequest   = errcode.CodeInvalidRequest
	CodeUnknownOp        = "unknown_op"
	CodeFrameTooLarge    = "frame_too_large"
	CodeInternal         = errcode.CodeInternal
	CodeVerifyFailed     = errcode.CodeVerificationFailed
	ProtocolVersion      = 1
	DefaultMaxTimeout    = time.Hour
	DefaultMaxConcurrent = 16
	maxAdmittedRequests  = 1024
	maxAdmittedBytes     = 16 << 20
)

// Ops and the fields each accepts besides id and op. Anything else is
// refused so a typo such as "sign_kye" cannot silently fall back to the env.
var opFields = map[string][]string{
	"sign": {"reference", "digest", "sign_key", "annotations", "recursive", "allow_insecure_registry", "timeout_ms", "rekor_url", "rekor_public_key",
		"keyless", "identity_token", "fulcio_url", "fulcio_root", "insecure_ignore_sct", "just_pushed"},
	"verify": {"reference", "digest", "public_key", "annotations", "allow_insecure_registry", "timeout_ms", "require_tlog", "rekor_public_key", "rekor_url",
		"certificate_identity", "certificate_identity_regexp", "certificate_oidc_issuer", "certificate_oidc_issuer_regexp", "fulcio_root"},
	"public_key": {"sign_key"},
	"connect":    {"reference", "allow_insecure_registry", "timeout_ms"},
	"identity":   {"identity_token", "fulcio_url", "fulcio_root", "timeout_ms"},
	"version":    {},
	"exit":       {},
}

const opList = "sign, verify, public_key, connect, identity, version or exit"

var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// request is one validated request frame.
type request struct {
	id json.RawMessage
	op string

	reference     string
	digest        string
	signKey       string // "" = not given (OCIBUILD_SIGN_KEY applies)
	publicKey     string
	annotations   map[string]string
	recursive     bool
	justPushed    bool // the caller pushed the image moments ago (registry.SignRequest.JustPushed)
	allowInsecure bool
	timeout       time.Duration // 0 = not given
	// Transparency log; "" = not given (OCISIGN_REKOR_URL and
	// SIGSTORE_REKOR_PUBLIC_KEY apply).
	rekorURL       string
	rekorPublicKey string
	requireTlog    bool
	// Keyless signing (sign) and verification (verify).
	keyless           bool
	identityToken     string // a secret: never logged or echoed
	fulcioURL         string
	fulcioRoot        string
	insecureIgnoreSCT bool
	identity          signing.IdentityPolicy
}

// protoError is a refusal of a frame; id is nil when it could not be read.
type protoError struct {
	id      json.RawMessage
	code    string
	message string
}

func (e *protoError) Error() string { return e.code + ": " + e.message }

// parseRequest validates one frame. maxTimeout caps timeout_ms.
func parseRequest(frame []byte, maxTimeout time.Duration) (*request, *protoError) {
	if !utf8.Valid(frame) {
		return nil, &protoError{code: CodeInvalidJSON, message: fmt.Sprintf("request is not valid UTF-8 (first bad byte at offset %d)", firstInvalidUTF8(frame))}
	}
	if !json.Valid(frame) {
		var v any
		err := json.Unmarshal(frame, &v)
		return nil, &protoError{code: CodeInvalidJSON, message: "request is not valid JSON: " + jsonErrorText(err)}
	}
	fields, order, dup, kind := objectFields(frame)
	if fields == nil {
		return nil, &protoError{code: CodeInvalidRequest, message: "request must be a JSON object, got " + kind}
	}

	req := &request{}
	idRaw, ok := fields["id"]
	switch {
	case dup == "id":
		return nil, &protoError{code: CodeInvalidRequest, message: `field "id" appears more than once`}
	case !ok || isNull(idRaw):
		return nil, &protoError{code: CodeInvalidRequest, message: `missing field "id" (a number or a string)`}
	case idRaw[0] != '"' && jsonKind(idRaw) != "number":
		return nil, &protoError{code: CodeInvalidRequest, message: `field "id" must be a number or a string, got ` + jsonKind(idRaw)}
	}
	req.id = idRaw
	fail := func(code, format string, args ...any) (*request, *protoError) {
		return nil, &protoError{id: req.id, code: code, message: fmt.Sprintf(format, args...)}
	}
	if dup != "" {
		return fail(CodeInvalidRequest, "field %q appears more than once", dup)
	}

	opRaw, ok := fields["op"]
	if !ok || isNull(opRaw) {
		return fail(CodeInvalidRequest, `missing field "op" (%s)`, opList)
	}
	if jsonKind(opRaw) != "string" {
		return fail(CodeInvalidRequest, `field "op" must be a string, got %s`, jsonKind(opRaw))
	}
	_ = json.Unmarshal(opRaw, &req.op)
	allowed, known := opFields[req.op]
	if !known {
		return fail(CodeUnknownOp, "unknown op %q (expected %s)", req.op, opList)
	}
	for _, name := range order {
		if name != "id" && name != "op" && !contains(allowed, name) {
			if len(allowed) == 0 {
				return fail(CodeInvalidRequest, "unknown field %q: op %q takes no fields besides id and op", name, req.op)
			}
			return fail(CodeInvalidRequest, "unknown field %q for op %q (allowed: %s)", name, req.op, strings.Join(allowed, ", "))
		}
	}

	p := fieldParser{fields: fields}
	switch req.op {
	case "sign", "verify":
		req.reference = p.str("reference", true)
		req.digest = p.str("digest", false)
		if req.digest != "" && p.err == nil && !digestPattern.MatchString(req.digest) {
			p.fail(`field "digest" must be "sha256:" followed by 64 lowercase hex digits, got %q`, req.digest)
		}
		req.annotations = p.stringMap("annotations")
		req.allowInsecure = p.boolean("allow_insecure_registry")
		req.timeout = p.timeoutMS("timeout_ms", maxTimeout)
		req.rekorURL = p.str("rekor_url", false)
		if req.rekorURL != "" && p.err == nil {
			if err := tlog.CheckURL(req.rekorURL); err != nil {
				p.fail(`field "rekor_url" %v, got %q`, err, tlog.RedactURL(req.rekorURL))
			}
		}
		req.rekorPublicKey = p.str("rekor_public_key", false)
		req.fulcioRoot = p.str("fulcio_root", false)
		if req.op == "sign" {
			req.signKey = p.str("sign_key", false)
			req.recursive = p.boolean("recursive")
			req.justPushed = p.boolean("just_pushed")
			req.keyless = p.boolean("keyless")
			req.identityToken = p.str("identity_token", false)
			req.insecureIgnoreSCT = p.boolean("insecure_ignore_sct")
			req.fulcioURL = p.str("fulcio_url", false)
			if req.fulcioURL != "" && p.err == nil {
				if _, err := keyless.CheckFulcioURL(req.fulcioURL); err != nil {
					p.fail(`field "fulcio_url" %v, got %q`, err, tlog.RedactURL(req.fulcioURL))
				}
			}
			if req.keyless && req.signKey != "" && p.err == nil {
				p.fail(`fields "keyless" and "sign_key" exclude each other: sign with one or the other`)
			}
		} else {
			req.identity = signing.IdentityPolicy{Identity: p.str("certificate_identity", false), IdentityRegexp: p.str("certificate_identity_regexp", false),
				Issuer: p.str("certificate_oidc_issuer", false), IssuerRegexp: p.str("certificate_oidc_issuer_regexp", false)}
			req.publicKey = p.str("public_key", req.identity == signing.IdentityPolicy{})
			req.requireTlog = p.boolean("require_tlog")
			if p.err == nil && req.identity != (signing.IdentityPolicy{}) {
				if req.publicKey != "" {
					p.fail(`field "public_key" and the certificate_* fields exclude each other: verify key-based or keyless signatures`)
				} else if err := req.identity.Validate(); err != nil {
					p.fail("%v", strings.NewReplacer("--certificate-", "certificate_", "-regexp", "_regexp", "oidc-issuer", "oidc_issuer").Replace(err.Error()))
				}
			}
		}
	case "public_key":
		req.signKey = p.str("sign_key", false)
	case "identity":
		req.identityToken = p.str("identity_token", false)
		req.fulcioRoot = p.str("fulcio_root", false)
		req.fulcioURL = p.str("fulcio_url", false)
		req.timeout = p.timeoutMS("timeout_ms", maxTimeout)
		if req.fulcioURL != "" && p.err == nil {
			if _, err := keyless.CheckFulcioURL(req.fulcioURL); err != nil {
				p.fail(`field "fulcio_url" %v, got %q`, err, tlog.RedactURL(req.fulcioURL))
			}
		}
	case "connect":
		req.reference = p.str("reference", true)
		req.allowInsecure = p.boolean("allow_insecure_registry")
		req.timeout = p.timeoutMS("timeout_ms", maxTimeout)
	}
	if p.err != nil {
		return fail(CodeInvalidRequest, "%s", p.err.Error())
	}
	return req, nil
}

// objectFields splits a valid JSON document into its top-level members,
// keeping their order and noting the first duplicate name. For a document
// that is not an object it returns nil fields and the document's kind.
func objectFields(doc []byte) (fields map[string]json.RawMessage, order []string, dup, kind string) {
	trimmed := bytes.TrimSpace(doc)
	if kind = jsonKind(trimmed); kind != "object" {
		return nil, nil, "", kind
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil { // '{'
		return nil, nil, "", kind
	}
	fields = map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, "", kind
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, "", kind
		}
		if _, seen := fields[name]; seen && dup == "" {
			dup = name
		}
		fields[name] = raw
		order = append(order, name)
	}
	return fields, order, dup, kind
}

// fieldParser reads typed fields, keeping the first error. null counts as
// absent so encoders that write undefined members as null are accepted.
type fieldParser struct {
	fields map[string]json.RawMessage
	err    error
}

func (p *fieldParser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf(format, args...)
	}
}

func (p *fieldParser) get(name string) (json.RawMessage, bool) {
	raw, ok := p.fields[name]
	if !ok || isNull(raw) || p.err != nil {
		return nil, false
	}
	return raw, true
}

func (p *fieldParser) str(name string, required bool) string {
	raw, ok := p.get(name)
	if !ok {
		if required {
			p.fail("missing field %q (a non-empty string)", name)
		}
		return ""
	}
	var s string
	if jsonKind(raw) != "string" || json.Unmarshal(raw, &s) != nil {
		p.fail("field %q must be a string, got %s", name, jsonKind(raw))
		return ""
	}
	if s == "" {
		p.fail("field %q must not be empty", name)
	}
	return s
}

func (p *fieldParser) boolean(name string) bool {
	raw, ok := p.get(name)
	if !ok {
		return false
	}
	switch string(raw) {
	case "true":
		return true
	case "false":
		return false
	}
	p.fail("field %q must be true or false, got %s", name, jsonKind(raw))
	return false
}

func (p *fieldParser) stringMap(name string) map[string]string {
	raw, ok := p.get(name)
	if !ok {
		return nil
	}
	members, order, dup, kind := objectFields(raw)
	if members == nil {
		p.fail("field %q must be an object of strings, got %s", name, kind)
		return nil
	}
	if dup != "" {
		p.fail("field %q has the key %q more than once", name, dup)
		return nil
	}
	out := make(map[string]string, len(members))
	for _, k := range order {
		v := members[k]
		if k == "" {
			p.fail("field %q has an empty key", name)
			return nil
		}
		var s string
		if jsonKind(v) != "string" || json.Unmarshal(v, &s) != nil {
			p.fail("field %q: value of %q must be a string, got %s", name, k, jsonKind(v))
			return nil
		}
		out[k] = s
	}
	return out
}

func (p *fieldParser) timeoutMS(name string, limit time.Duration) time.Duration {
	raw, ok := p.get(name)
	if !ok {
		return 0
	}
	if jsonKind(raw) != "number" {
		p.fail("field %q must be a positive integer (milliseconds), got %s", name, jsonKind(raw))
		return 0
	}
	ms, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || ms <= 0 {
		p.fail("field %q must be a positive integer (milliseconds), got %s", name, raw)
		return 0
	}
	if ms > limit.Milliseconds() {
		p.fail("field %q is %d ms, above the limit of %d ms", name, ms, limit.Milliseconds())
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

// jsonKind names the type of a valid JSON value by its first byte.
func jsonKind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func isNull(raw []byte) bool { return string(bytes.TrimSpace(raw)) == "null" }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

func jsonErrorText(err error) string {
	if err == nil {
		return "unexpected content"
	}
	if se, ok := err.(*json.SyntaxError); ok {
		return fmt.Sprintf("%s (offset %d)", se.Error(), se.Offset)
	}
	return err.Error()
}
