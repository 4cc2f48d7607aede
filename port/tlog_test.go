package port

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocisign/ocisign/internal/memregistry/memtest"
	"github.com/ocisign/ocisign/internal/rekortest"
	"github.com/ocisign/ocisign/tlog"
)

// newFakeRekor starts a stand-in Rekor v1 log with real SETs (the real log
// is exercised in test/rekor).
func newFakeRekor(t *testing.T) *rekortest.Log {
	return rekortest.Start(t, rekortest.Options{})
}

type loggedEntry struct {
	Digest       string `json:"digest"`
	Deduplicated bool   `json:"deduplicated"`
	LogIndex     *int64 `json:"log_index"`
	LogUUID      string `json:"log_uuid"`
}

func TestSignAndVerifyWithATransparencyLog(t *testing.T) {
	t.Setenv(tlog.EnvPublicKey, "") // tlog.New reads it when no key file is given
	host := memtest.Start(t, nil)
	image := host + "/team/app"
	memtest.PushImage(t, image+":1.0")
	plain := host + "/team/plain"
	memtest.PushImage(t, plain+":1.0")
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "cosign.key")
	pubPath := filepath.Join(dir, "cosign.pub")
	writeFile(t, pubPath, plainKey(t, keyPath))
	rekor := newFakeRekor(t)

	env := map[string]string{"OCIBUILD_SIGN_KEY": keyPath}
	s := startSession(t, testConfig(env))
	request := func(format string, args ...any) reply {
		t.Helper()
		s.sendFrame([]byte(fmt.Sprintf(format, args...)))
		return s.next()
	}
	signed := func(r reply) loggedEntry {
		t.Helper()
		var es []loggedEntry
		if r.OK == nil || !*r.OK || json.Unmarshal(r.Signed, &es) != nil || len(es) != 1 {
			t.Fatalf("sign: %s", r.raw)
		}
		return es[0]
	}

	// Key fetched from the log (no key file): once for the life of the port.
	first := signed(request(`{"id":1,"op":"sign","reference":%q,"rekor_url":%q}`, image+":1.0", rekor.Srv.URL))
	if first.LogIndex == nil || len(first.LogUUID) != 64 || first.Deduplicated || rekor.Posts.Load() != 1 {
		t.Fatalf("log-backed sign: %+v, %d posts", first, rekor.Posts.Load())
	}
	again := signed(request(`{"id":2,"op":"sign","reference":%q,"rekor_url":%q}`, image+":1.0", rekor.Srv.URL+"/"))
	if !again.Deduplicated || again.LogUUID != first.LogUUID || rekor.Posts.Load() != 1 {
		t.Fatalf("re-sign: %+v, %d posts (want deduplicated without a post)", again, rekor.Posts.Load())
	}
	// OCISIGN_REKOR_URL applies when the request names no log.
	env["OCISIGN_REKOR_URL"] = rekor.Srv.URL
	other := signed(request(`{"id":3,"op":"sign","reference":%q,"annotations":{"n":"3"}}`, image+":1.0"))
	if other.LogIndex == nil || rekor.Posts.Load() != 2 {
		t.Fatalf("sign via OCISIGN_REKOR_URL: %+v", other)
	}
	delete(env, "OCISIGN_REKOR_URL")
	if n := rekor.KeyGets.Load(); n != 1 {
		t.Fatalf("the log's key was fetched %d times, want once per port", n)
	}
	// A pinned key file is another client; no fetch.
	pinned := signed(request(`{"id":4,"op":"sign","reference":%q,"rekor_url":%q,"rekor_public_key":%q,"annotations":{"n":"4"}}`,
		image+":1.0", rekor.Srv.URL, rekor.KeyFile))
	if pinned.LogIndex == nil || rekor.KeyGets.Load() != 1 {
		t.Fatalf("pinned sign: %+v, %d key fetches", pinned, rekor.KeyGets.Load())
	}
	// No log anywhere: nothing posted.
	signed(request(`{"id":5,"op":"sign","reference":%q}`, plain+":1.0"))
	if rekor.Posts.Load() != 3 {
		t.Fatalf("a sign without a log posted to it")
	}

	// verify: bundles checked with the pinned key or the fetched one.
	for _, src := range []string{`"rekor_public_key":"` + rekor.KeyFile + `"`, `"rekor_url":"` + rekor.Srv.URL + `"`} {
		r := request(`{"id":6,"op":"verify","reference":%q,"public_key":%q,"require_tlog":true,%s}`, image+":1.0", pubPath, src)
		if r.OK == nil || !*r.OK || r.Valid != 3 || !strings.Contains(string(r.raw), `"log_uuid":"`+first.LogUUID+`"`) {
			t.Fatalf("verify with %s: %s", src, r.raw)
		}
	}
	r := request(`{"id":7,"op":"verify","reference":%q,"public_key":%q,"require_tlog":true,"rekor_public_key":%q}`, plain+":1.0", pubPath, rekor.KeyFile)
	if *r.OK || r.Error.Code != CodeVerifyFailed || !strings.Contains(r.Error.Message, "no transparency log bundle") {
		t.Fatalf("require_tlog on a plain signature: %s", r.raw)
	}
	r = request(`{"id":8,"op":"verify","reference":%q,"public_key":%q,"require_tlog":true}`, image+":1.0", pubPath)
	if *r.OK || r.Error.Code != CodeInvalidRequest || !strings.Contains(r.Error.Message, "require_tlog needs the log's public key") {
		t.Fatalf("require_tlog without a key source: %s", r.raw)
	}
	// Without require_tlog a plain signature is still fine.
	r = request(`{"id":9,"op":"verify","reference":%q,"public_key":%q,"rekor_public_key":%q}`, plain+":1.0", pubPath, rekor.KeyFile)
	if !*r.OK || r.Valid != 1 {
		t.Fatalf("verify plain: %s", r.raw)
	}

	// The log failing: tlog_error, retryable, and the .sig unchanged.
	before := request(`{"id":10,"op":"verify","reference":%q,"public_key":%q}`, image+":1.0", pubPath)
	rekor.Down.Store(true)
	r = request(`{"id":11,"op":"sign","reference":%q,"rekor_url":%q,"annotations":{"n":"down"},"timeout_ms":20000}`, image+":1.0", rekor.Srv.URL)
	if *r.OK || r.Error.Code != tlog.ErrorCode || !*r.Error.Retryable || !strings.Contains(r.Error.Message, "HTTP 500") {
		t.Fatalf("sign with the log down: %s", r.raw)
	}
	after := request(`{"id":12,"op":"verify","reference":%q,"public_key":%q}`, image+":1.0", pubPath)
	if after.Valid != before.Valid {
		t.Fatalf("the .sig changed while the log was down: %d → %d signatures", before.Valid, after.Valid)
	}
	// A missing key file is the key's error, not cached.
	r = request(`{"id":13,"op":"sign","reference":%q,"rekor_url":%q,"rekor_public_key":"/nonexistent/rekor.pub"}`, image+":1.0", rekor.Srv.URL)
	if *r.OK || r.Error.Code != "key_not_found" || !strings.Contains(r.Error.Message, "/nonexistent/rekor.pub") {
		t.Fatalf("missing log key file: %s", r.raw)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
}

func TestTlogFieldsAreValidated(t *testing.T) {
	cases := []struct{ frame, want string }{
		{`{"id":1,"op":"sign","reference":"r","rekor_url":5}`, `field "rekor_url" must be a string, got number`},
		{`{"id":1,"op":"sign","reference":"r","rekor_url":"rekor.example"}`, `field "rekor_url" must be an absolute http:// or https:// URL`},
		{`{"id":1,"op":"sign","reference":"r","rekor_url":"https://rekor.example/?a=b"}`, `field "rekor_url" must not have a query or fragment`},
		{`{"id":1,"op":"sign","reference":"r","rekor_public_key":""}`, `field "rekor_public_key" must not be empty`},
		{`{"id":1,"op":"sign","reference":"r","require_tlog":true}`, `unknown field "require_tlog" for op "sign"`},
		{`{"id":1,"op":"verify","reference":"r","public_key":"p","require_tlog":"yes"}`, `field "require_tlog" must be true or false, got string`},
	}
	for _, tc := range cases {
		_, perr := parseRequest([]byte(tc.frame), time.Hour)
		if perr == nil || perr.code != CodeInvalidRequest || !strings.Contains(perr.message, tc.want) {
			t.Errorf("%s: got %v, want invalid_request containing %q", tc.frame, perr, tc.want)
		}
	}
	req, perr := parseRequest([]byte(`{"id":1,"op":"verify","reference":"r","public_key":"p","require_tlog":true,"rekor_url":"http://127.0.0.1:3000","rekor_public_key":"/k.pub"}`), time.Hour)
	if perr != nil || !req.requireTlog || req.rekorURL != "http://127.0.0.1:3000" || req.rekorPublicKey != "/k.pub" {
		t.Fatalf("%v %+v", perr, req)
	}
}
