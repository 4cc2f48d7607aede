package keyless

import (
	"strings"
	"testing"
	"time"

	"github.com/ocisign/ocisign/internal/errcode"
)

// Any input is a token or an identity_error; a refusal never repeats a
// token-sized part of the input.
func FuzzParseToken(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2kiLCJzdWIiOiJzIiwiYXVkIjoic2lnc3RvcmUiLCJleHAiOjQwMDAwMDAwMDB9.c2ln")
	f.Add("a.b.c")
	f.Add("")
	f.Add("x.eyJhdWQiOlsic2lnc3RvcmUiLDFdfQ.y")
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := ParseToken(raw, "fuzz", time.Unix(1700000000, 0))
		if err != nil {
			if code, _ := errcode.Of(err); code != errcode.CodeIdentityError {
				t.Fatalf("code %q for %q", code, raw)
			}
			if len(raw) >= 16 && strings.Contains(err.Error(), raw) {
				t.Fatalf("the error repeats the input: %v", err)
			}
			return
		}
		if tok.Issuer == "" || tok.Principal() == "" || tok.Raw() != strings.TrimSpace(raw) {
			t.Fatalf("accepted %q as %+v", raw, tok)
		}
	})
}
