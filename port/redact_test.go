package port

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ocisign/ocisign/internal/memregistry/memtest"
	"github.com/ocisign/ocisign/tlog"
)

// credentialMarker is the password in every Rekor URL below; it must not
// reach a reply or the port's log, whichever way the request ends.
const credentialMarker = "S3cretTok"

func withCredentials(rawURL string) string {
	return strings.Replace(rawURL, "://", "://alice:"+credentialMarker+"@", 1)
}

// closedLoopbackURL is an http:// URL on a loopback port nothing listens on.
func closedLoopbackURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestRekorURLCredentialsNeverEchoed(t *testing.T) {
	t.Setenv(tlog.EnvPublicKey, "")
	host := memtest.Start(t, nil)
	image := host + "/team/app"
	memtest.PushImage(t, image+":1.0")
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "cosign.key")
	pubPath := filepath.Join(dir, "cosign.pub")
	writeFile(t, pubPath, plainKey(t, keyPath))
	rekor := newFakeRekor(t)
	dead := closedLoopbackURL(t)

	var logMu sync.Mutex
	var logged []string
	run := func(env map[string]string, defaultURL, frame string) reply {
		t.Helper()
		cfg := testConfig(env)
		cfg.Defaults.RekorURL = defaultURL
		cfg.Tlog.MaxAttempts = 1
		cfg.Logf = func(format string, args ...any) {
			logMu.Lock()
			defer logMu.Unlock()
			logged = append(logged, fmt.Sprintf(format, args...))
		}
		s := startSession(t, cfg)
		s.sendFrame([]byte(frame))
		r := s.next()
		if err := s.close(); err != nil {
			t.Fatal(err)
		}
		return r
	}
	env := map[string]string{"OCIBUILD_SIGN_KEY": keyPath}

	cases := []struct {
		name       string
		env        map[string]string
		defaultURL string
		frame      string
		ok         bool
		code, want string // for failures: code and a message fragment
	}{
		{name: "sign, URL with a query",
			frame: fmt.Sprintf(`{"id":1,"op":"sign","reference":%q,"rekor_url":%q}`, image+":1.0", withCredentials("https://rekor.example/?q=1")),
			code:  CodeInvalidRequest, want: `got "https://rekor.example/?q=1"`},
		{name: "verify, unparsable URL",
			frame: fmt.Sprintf(`{"id":2,"op":"verify","reference":%q,"public_key":%q,"rekor_url":%q}`, image+":1.0", pubPath, "https://alice:S3cret Tok@rekor.example/"),
			code:  CodeInvalidRequest, want: `got "https://[REDACTED]@rekor.example/"`},
		{name: "sign, log unreachable",
			frame: fmt.Sprintf(`{"id":3,"op":"sign","reference":%q,"rekor_url":%q}`, image+":1.0", withCredentials(dead)),
			code:  tlog.ErrorCode, want: dead},
		{name: "sign, log from OCISIGN_REKOR_URL unreachable",
			env:   map[string]string{"OCIBUILD_SIGN_KEY": keyPath, tlog.EnvURL: withCredentials(dead)},
			frame: fmt.Sprintf(`{"id":4,"op":"sign","reference":%q}`, image+":1.0"),
			code:  tlog.ErrorCode, want: dead},
		{name: "sign, config's log unreachable", defaultURL: withCredentials(dead),
			frame: fmt.Sprintf(`{"id":5,"op":"sign","reference":%q}`, image+":1.0"),
			code:  tlog.ErrorCode, want: dead},
		{name: "verify require_tlog, log unreachable",
			frame: fmt.Sprintf(`{"id":6,"op":"verify","reference":%q,"public_key":%q,"require_tlog":true,"rekor_url":%q}`, image+":1.0", pubPath, withCredentials(dead)),
			code:  tlog.ErrorCode, want: dead},
		{name: "sign, log answers",
			frame: fmt.Sprintf(`{"id":7,"op":"sign","reference":%q,"rekor_url":%q}`, image+":1.0", withCredentials(rekor.Srv.URL)),
			ok:    true},
		{name: "verify, log key from the log",
			frame: fmt.Sprintf(`{"id":8,"op":"verify","reference":%q,"public_key":%q,"require_tlog":true,"rekor_url":%q}`, image+":1.0", pubPath, withCredentials(rekor.Srv.URL)),
			ok:    true},
		{name: "verify, bundles unchecked because the log is down (logged)",
			frame: fmt.Sprintf(`{"id":9,"op":"verify","reference":%q,"public_key":%q,"rekor_url":%q}`, image+":1.0", pubPath, withCredentials(dead)),
			ok:    true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := c.env
			if e == nil {
				e = env
			}
			r := run(e, c.defaultURL, c.frame)
			if strings.Contains(string(r.raw), credentialMarker) {
				t.Errorf("credentials in the reply: %s", r.raw)
			}
			switch {
			case c.ok && !*r.OK:
				t.Fatalf("want success: %s", r.raw)
			case !c.ok && (*r.OK || r.Error.Code != c.code || !strings.Contains(r.Error.Message, c.want)):
				t.Fatalf("want %s containing %q: %s", c.code, c.want, r.raw)
			}
		})
	}
	if rekor.Posts.Load() != 1 || rekor.KeyGets.Load() == 0 {
		t.Errorf("the log saw %d posts and %d key fetches; the successful cases did not reach it", rekor.Posts.Load(), rekor.KeyGets.Load())
	}
	logMu.Lock()
	defer logMu.Unlock()
	all := strings.Join(logged, "\n")
	if strings.Contains(all, credentialMarker) {
		t.Errorf("credentials in the port log:\n%s", all)
	}
	if !strings.Contains(all, "bundles are not checked") || !strings.Contains(all, `got \"https://rekor.example/?q=1\"`) && !strings.Contains(all, `got "https://rekor.example/?q=1"`) {
		t.Errorf("the failures were not logged (so the log check proves nothing):\n%s", all)
	}
}
