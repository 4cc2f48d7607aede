package port

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

const digestA = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// Every bad frame gets one error reply with a specific code and message,
// and the port keeps serving: a version request afterwards is answered.
func TestBadRequestsGetErrorRepliesAndServingGoesOn(t *testing.T) {
	cases := []struct {
		name    string
		frame   string
		code    string
		id      string // the id the reply must echo
		message string // a part of the message naming the problem
	}{
		{"empty frame", ``, CodeInvalidJSON, "null", "not valid JSON"},
		{"truncated JSON", `{"id":1,"op":`, CodeInvalidJSON, "null", "not valid JSON"},
		{"trailing garbage", `{"id":1,"op":"version"} x`, CodeInvalidJSON, "null", "not valid JSON"},
		{"two objects", `{"id":1,"op":"version"}{"id":2,"op":"version"}`, CodeInvalidJSON, "null", "not valid JSON"},
		{"single quotes", `{'id':1}`, CodeInvalidJSON, "null", "not valid JSON"},
		{"invalid UTF-8 in a string", "{\"id\":1,\"op\":\"version\",\"x\":\"\xff\"}", CodeInvalidJSON, "null", "not valid UTF-8 (first bad byte at offset 28)"},
		{"overlong UTF-8", "{\"id\":1,\"op\":\"\xc0\xaf\"}", CodeInvalidJSON, "null", "not valid UTF-8"},
		{"array", `[1,2]`, CodeInvalidRequest, "null", "must be a JSON object, got array"},
		{"string", `"sign"`, CodeInvalidRequest, "null", "must be a JSON object, got string"},
		{"number", `42`, CodeInvalidRequest, "null", "must be a JSON object, got number"},
		{"null", `null`, CodeInvalidRequest, "null", "must be a JSON object, got null"},
		{"missing id", `{"op":"version"}`, CodeInvalidRequest, "null", `missing field "id"`},
		{"null id", `{"id":null,"op":"version"}`, CodeInvalidRequest, "null", `missing field "id"`},
		{"object id", `{"id":{"a":1},"op":"version"}`, CodeInvalidRequest, "null", `field "id" must be a number or a string, got object`},
		{"boolean id", `{"id":true,"op":"version"}`, CodeInvalidRequest, "null", `got boolean`},
		{"duplicate id", `{"id":1,"id":2,"op":"version"}`, CodeInvalidRequest, "null", `field "id" appears more than once`},
		{"duplicate sign_key", `{"id":3,"op":"public_key","sign_key":"a","sign_key":"b"}`, CodeInvalidRequest, "3", `"sign_key" appears more than once`},
		{"missing op", `{"id":5}`, CodeInvalidRequest, "5", `missing field "op"`},
		{"number op", `{"id":5,"op":1}`, CodeInvalidRequest, "5", `field "op" must be a string, got number`},
		{"unknown op", `{"id":"x-1","op":"delete"}`, CodeUnknownOp, `"x-1"`, `unknown op "delete" (expected sign, verify, public_key, connect, identity, version or exit)`},
		{"op in wrong case", `{"id":6,"op":"Sign"}`, CodeUnknownOp, "6", `unknown op "Sign"`},
		{"typo sign_kye", `{"id":7,"op":"sign","reference":"r/x","sign_kye":"k"}`, CodeInvalidRequest, "7", `unknown field "sign_kye" for op "sign"`},
		{"public_key on sign", `{"id":7,"op":"sign","reference":"r/x","public_key":"k"}`, CodeInvalidRequest, "7", `unknown field "public_key" for op "sign"`},
		{"sign_key on verify", `{"id":7,"op":"verify","reference":"r/x","public_key":"p","sign_key":"k"}`, CodeInvalidRequest, "7", `unknown field "sign_key" for op "verify"`},
		{"field on version", `{"id":8,"op":"version","verbose":true}`, CodeInvalidRequest, "8", `unknown field "verbose": op "version" takes no fields`},
		{"sign without reference", `{"id":9,"op":"sign","sign_key":"k"}`, CodeInvalidRequest, "9", `missing field "reference"`},
		{"keyless with sign_key", `{"id":9,"op":"sign","reference":"r/x","keyless":true,"sign_key":"k"}`, CodeInvalidRequest, "9", `"keyless" and "sign_key" exclude each other`},
		{"identity_token number", `{"id":9,"op":"sign","reference":"r/x","identity_token":7}`, CodeInvalidRequest, "9", `field "identity_token" must be a string, got number`},
		{"fulcio_url plain HTTP", `{"id":9,"op":"sign","reference":"r/x","fulcio_url":"http://fulcio.example.test"}`, CodeInvalidRequest, "9", `field "fulcio_url" must be https`},
		{"public_key and identity", `{"id":9,"op":"verify","reference":"r/x","public_key":"p","certificate_identity":"a@b","certificate_oidc_issuer":"https://i"}`, CodeInvalidRequest, "9", `exclude each other`},
		{"identity without issuer", `{"id":9,"op":"verify","reference":"r/x","certificate_identity":"a@b"}`, CodeInvalidRequest, "9", `needs certificate_oidc_issuer or certificate_oidc_issuer_regexp`},
		{"verify with neither key nor identity", `{"id":9,"op":"verify","reference":"r/x"}`, CodeInvalidRequest, "9", `missing field "public_key"`},
		{"sign with null reference", `{"id":9,"op":"sign","reference":null}`, CodeInvalidRequest, "9", `missing field "reference"`},
		{"reference number", `{"id":10,"op":"sign","reference":5}`, CodeInvalidRequest, "10", `field "reference" must be a string, got number`},
		{"reference empty", `{"id":10,"op":"sign","reference":""}`, CodeInvalidRequest, "10", `field "reference" must not be empty`},
		{"digest not sha256", `{"id":11,"op":"sign","reference":"r/x","digest":"sha512:00"}`, CodeInvalidRequest, "11", `field "digest" must be "sha256:" followed by 64 lowercase hex digits`},
		{"digest upper case", `{"id":11,"op":"sign","reference":"r/x","digest":"` + strings.ToUpper(digestA) + `"}`, CodeInvalidRequest, "11", `field "digest"`},
		{"digest short", `{"id":11,"op":"sign","reference":"r/x","digest":"sha256:abc"}`, CodeInvalidRequest, "11", `field "digest"`},
		{"digest array", `{"id":11,"op":"verify","reference":"r/x","public_key":"p","digest":[]}`, CodeInvalidRequest, "11", `field "digest" must be a string, got array`},
		{"annotations array", `{"id":12,"op":"sign","reference":"r/x","annotations":["a=b"]}`, CodeInvalidRequest, "12", `field "annotations" must be an object of strings, got array`},
		{"annotation value number", `{"id":12,"op":"sign","reference":"r/x","annotations":{"a":"b","n":1}}`, CodeInvalidRequest, "12", `field "annotations": value of "n" must be a string, got number`},
		{"annotation empty key", `{"id":12,"op":"sign","reference":"r/x","annotations":{"":"v"}}`, CodeInvalidRequest, "12", `field "annotations" has an empty key`},
		{"annotation duplicate key", `{"id":12,"op":"sign","reference":"r/x","annotations":{"a":"1","a":"2"}}`, CodeInvalidRequest, "12", `has the key "a" more than once`},
		{"recursive string", `{"id":13,"op":"sign","reference":"r/x","recursive":"true"}`, CodeInvalidRequest, "13", `field "recursive" must be true or false, got string`},
		{"just_pushed number", `{"id":13,"op":"sign","reference":"r/x","just_pushed":1}`, CodeInvalidRequest, "13", `field "just_pushed" must be true or false, got number`},
		{"allow_insecure number", `{"id":13,"op":"verify","reference":"r/x","public_key":"p","allow_insecure_registry":1}`, CodeInvalidRequest, "13", `field "allow_insecure_registry" must be true or false, got number`},
		{"timeout zero", `{"id":14,"op":"sign","reference":"r/x","timeout_ms":0}`, CodeInvalidRequest, "14", `field "timeout_ms" must be a positive integer (milliseconds), got 0`},
		{"timeout negative", `{"id":14,"op":"sign","reference":"r/x","timeout_ms":-5}`, CodeInvalidRequest, "14", `got -5`},
		{"timeout fraction", `{"id":14,"op":"sign","reference":"r/x","timeout_ms":1.5}`, CodeInvalidRequest, "14", `got 1.5`},
		{"timeout exponent", `{"id":14,"op":"sign","reference":"r/x","timeout_ms":1e3}`, CodeInvalidRequest, "14", `got 1e3`},
		{"timeout string", `{"id":14,"op":"sign","reference":"r/x","timeout_ms":"1000"}`, CodeInvalidRequest, "14", `got string`},
		{"timeout above the cap", `{"id":14,"op":"sign","reference":"r/x","timeout_ms":3600001}`, CodeInvalidRequest, "14", `is 3600001 ms, above the limit of 3600000 ms`},
		{"timeout overflows int64", `{"id":14,"op":"sign","reference":"r/x","timeout_ms":99999999999999999999}`, CodeInvalidRequest, "14", `must be a positive integer`},
		{"verify without public_key", `{"id":15,"op":"verify","reference":"r/x"}`, CodeInvalidRequest, "15", `missing field "public_key"`},
		{"sign_key number on public_key", `{"id":16,"op":"public_key","sign_key":1}`, CodeInvalidRequest, "16", `field "sign_key" must be a string, got number`},
		{"no key anywhere (sign)", `{"id":17,"op":"sign","reference":"r/x"}`, CodeInvalidRequest, "17", `no sign_key in the request, OCIBUILD_SIGN_KEY is not set, and no config file gives a sign_key (ocisign --config FILE port, or OCISIGN_CONFIG)`},
		{"no key anywhere (public_key)", `{"id":18,"op":"public_key"}`, CodeInvalidRequest, "18", `no sign_key`},
		{"float id is echoed", `{"id":1.25e2,"op":"nope"}`, CodeUnknownOp, "1.25e2", `unknown op`},
		{"escaped string id is echoed", `{"id":"a\"b\u00e9","op":"nope"}`, CodeUnknownOp, `"a\"b\u00e9"`, `unknown op`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startSession(t, testConfig(nil))
			s.sendFrame([]byte(tc.frame))
			r := s.next()
			if *r.OK || r.Error == nil {
				t.Fatalf("want an error reply, got %s", r.raw)
			}
			if r.Error.Code != tc.code || string(r.ID) != tc.id || !strings.Contains(r.Error.Message, tc.message) {
				t.Fatalf("got id %s code %q message %q; want id %s code %q message containing %q",
					r.ID, r.Error.Code, r.Error.Message, tc.id, tc.code, tc.message)
			}
			if r.Error.Retryable == nil || *r.Error.Retryable {
				t.Fatalf("protocol errors are not retryable and say so: %s", r.raw)
			}
			s.expectVersion("after-" + tc.name)
			if err := s.close(); err != nil {
				t.Fatalf("Serve after a clean EOF: %v", err)
			}
		})
	}
}

func TestVersionReplyIsExact(t *testing.T) {
	s := startSession(t, testConfig(nil))
	s.sendFrame([]byte(`{"id":1,"op":"version"}`))
	r := s.next()
	if want := `{"id":1,"ok":true,"version":"9.9.9-test","protocol":1,"max_frame_bytes":1048576}`; string(r.raw) != want {
		t.Fatalf("got %s, want %s", r.raw, want)
	}
	// null counts as absent for optional fields only; the id round-trips as written.
	s.sendFrame([]byte(` { "op" : "version" , "id" : -7 } `))
	if r := s.next(); string(r.raw) != `{"id":-7,"ok":true,"version":"9.9.9-test","protocol":1,"max_frame_bytes":1048576}` {
		t.Fatalf("got %s", r.raw)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
}

// "exit" ends the port like stdin EOF while the client keeps its pipe, so
// the client can wait for the exit status instead of polling a PID.
func TestExitOpEndsThePort(t *testing.T) {
	s := startSession(t, testConfig(nil))
	s.sendFrame([]byte(`{"id":"bye","op":"exit"}`))
	if r := s.next(); string(r.raw) != `{"id":"bye","ok":true}` {
		t.Fatalf("got %s", r.raw)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("Serve returned %v, want nil", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Serve did not return after exit")
	}
}

func TestOversizedFrameIsRefusedAndSkipped(t *testing.T) {
	cfg := testConfig(nil)
	cfg.MaxFrameBytes = 64
	s := startSession(t, cfg)
	big := []byte(`{"id":1,"op":"version","pad":"` + strings.Repeat("x", 100) + `"}`)
	s.sendFrame(big)
	r := s.next()
	if *r.OK || r.Error.Code != CodeFrameTooLarge || string(r.ID) != "null" ||
		!strings.Contains(r.Error.Message, "frame of 132 bytes exceeds the limit of 64 bytes") {
		t.Fatalf("got %s", r.raw)
	}
	// A frame exactly at the limit is accepted.
	exact := []byte(`{"id":"exact","op":"version"}`)
	exact = append(exact, bytes.Repeat([]byte(" "), 64-len(exact))...)
	s.sendFrame(exact)
	if r := s.next(); !*r.OK || string(r.ID) != `"exact"` {
		t.Fatalf("64-byte frame: %s", r.raw)
	}
	s.expectVersion("after-oversized")
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
}

// A header announcing 4 GiB must be refused without allocating it; the
// reply comes before any of the payload is sent.
func TestFourGiBHeaderDoesNotAllocate(t *testing.T) {
	s := startSession(t, testConfig(nil))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s.sendRaw(header(0xFFFFFFFF))
	r := s.next()
	runtime.ReadMemStats(&after)
	if *r.OK || r.Error.Code != CodeFrameTooLarge || string(r.ID) != "null" ||
		!strings.Contains(r.Error.Message, "4294967295 bytes exceeds the limit of 1048576") {
		t.Fatalf("got %s", r.raw)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("allocated %d bytes for a refused frame", grew)
	}
	// The announced payload never comes: the stream ends inside it.
	s.sendRaw([]byte("partial"))
	if err := s.close(); !errors.Is(err, ErrTruncatedFrame) {
		t.Fatalf("want ErrTruncatedFrame, got %v", err)
	}
}

func TestFrameReaderNeverAllocatesTheAnnouncedSize(t *testing.T) {
	in := io.MultiReader(bytes.NewReader(header(0xFFFFFFFF)), bytes.NewReader(make([]byte, 10)))
	fr := newFrameReader(in, 1024)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := fr.Next()
	var tooLarge *FrameTooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.Size != 0xFFFFFFFF || tooLarge.Limit != 1024 {
		t.Fatalf("got %v", err)
	}
	_, err = fr.Next() // discarding the rest hits the end of the input
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTruncatedFrame) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("allocated %d bytes", grew)
	}
}

// The input ending inside a frame stops the port with ErrTruncatedFrame
// after answering everything complete before it.
func TestEOFInsideAFrame(t *testing.T) {
	cases := []struct {
		name string
		tail []byte
	}{
		{"inside the header", []byte{0, 0}},
		{"after the header", header(20)},
		{"inside the payload", append(header(30), `{"id":2,"op":"vers`...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startSession(t, testConfig(nil))
			s.expectVersion("before")
			s.sendRaw(tc.tail)
			err := s.close()
			if !errors.Is(err, ErrTruncatedFrame) {
				t.Fatalf("want ErrTruncatedFrame, got %v", err)
			}
			if extra, open := <-s.replies; open {
				t.Fatalf("no reply expected for a truncated frame, got %s", extra)
			}
		})
	}
}

func TestCleanEOFWithNothingSent(t *testing.T) {
	s := startSession(t, testConfig(nil))
	if err := s.close(); err != nil {
		t.Fatalf("got %v", err)
	}
}

func TestParseRequestFields(t *testing.T) {
	req, perr := parseRequest([]byte(`{"id":"a","op":"sign","reference":"localhost:5000/app:1","digest":"`+digestA+
		`","sign_key":"/k/cosign.key","annotations":{"team":"erl","x":""},"recursive":true,"allow_insecure_registry":true,"timeout_ms":1500}`), DefaultMaxTimeout)
	if perr != nil {
		t.Fatal(perr)
	}
	if req.op != "sign" || req.reference != "localhost:5000/app:1" || req.digest != digestA || req.signKey != "/k/cosign.key" ||
		req.annotations["team"] != "erl" || len(req.annotations) != 2 || !req.recursive || !req.allowInsecure || req.timeout.Milliseconds() != 1500 {
		t.Fatalf("parsed %+v", req)
	}
	// Optional members given as null are absent.
	req, perr = parseRequest([]byte(`{"id":1,"op":"verify","reference":"r/x","public_key":"p.pub","digest":null,"annotations":null,"timeout_ms":null}`), DefaultMaxTimeout)
	if perr != nil || req.digest != "" || req.annotations != nil || req.timeout != 0 || req.publicKey != "p.pub" {
		t.Fatalf("parsed %+v, %v", req, perr)
	}
	var id any
	if err := json.Unmarshal(req.id, &id); err != nil || id.(float64) != 1 {
		t.Fatalf("id %s", req.id)
	}
}
