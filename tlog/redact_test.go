package tlog

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"https://rekor.example", "https://rekor.example"},
		{"https://alice:S3cretTok@rekor.example/?q=1", "https://rekor.example/?q=1"},
		{"https://S3cretTok@rekor.example:3000/api", "https://rekor.example:3000/api"},
		{"ftp://alice:S3cretTok@rekor.example", "ftp://rekor.example"},
		{"https://alice%40corp:S3cretTok@rekor.example", "https://rekor.example"},
		// Unparsable: a space in the password, a bad port.
		{"https://alice:S3cret Tok@rekor.example/", "https://[REDACTED]@rekor.example/"},
		{"https://alice:S3cretTok@rekor.example:port/", "https://[REDACTED]@rekor.example:port/"},
		// Parsable, but the "@" ends up after the host: "/" in the password.
		{"https://alice:12/S3cretTok@rekor.example/", "https://[REDACTED]@rekor.example/"},
		// No "//": the parser sees scheme "alice" and opaque data.
		{"alice:S3cretTok@rekor.example", "[REDACTED]@rekor.example"},
		{"https:alice:S3cretTok@rekor.example", "[REDACTED]@rekor.example"},
		{"alice:S3cretTok@host://x", "[REDACTED]@host://x"},
		{"", ""},
		{"rekor example", "rekor example"},
		{"%zz", "%zz"},
	}
	for _, c := range cases {
		got := RedactURL(c.in)
		if got != c.want {
			t.Errorf("RedactURL(%q) = %q, want %q", c.in, got, c.want)
		}
		if strings.Contains(got, "S3cret") {
			t.Errorf("RedactURL(%q) = %q keeps the credentials", c.in, got)
		}
	}
}

// New's refusals and a client's messages name the log without credentials.
func TestNewErrorsRedactCredentials(t *testing.T) {
	for _, u := range []string{
		"https://alice:S3cretTok@rekor.example/?q=1",
		"https://alice:S3cretTok@rekor.example/#f",
		"ftp://alice:S3cretTok@rekor.example",
		"https://alice:S3cret Tok@rekor.example",
		"alice:S3cretTok@rekor.example",
	} {
		_, err := New(u, Options{})
		if err == nil {
			t.Errorf("New(%q) accepted", u)
			continue
		}
		if strings.Contains(err.Error(), "S3cret") {
			t.Errorf("New(%q): credentials in error %q", u, err)
		}
	}
	c, err := New("https://alice:S3cretTok@rekor.example/", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.URL() != "https://rekor.example" {
		t.Errorf("URL() = %q", c.URL())
	}
	if msg := c.fail("upload", false, errTest).Error(); strings.Contains(msg, "S3cret") || !strings.Contains(msg, "https://rekor.example") {
		t.Errorf("failure message %q", msg)
	}
}

type testError string

func (e testError) Error() string { return string(e) }

const errTest = testError("boom")
