package signing

import (
	"strings"
	"testing"
)

const testDigest = "sha256:ef9f14c3b3e6fa3b4fc6d8a4e3d1e0a0b8b4ed6fda3e5d4a1bd2e1a1f0c9be82"

func TestPayloadBytes(t *testing.T) {
	for _, c := range []struct {
		name        string
		repo        string
		annotations map[string]string
		want        string
	}{
		{
			// cosign-format.md §1.6, byte for byte.
			"no annotations", "127.0.0.1:5055/test/app", nil,
			`{"critical":{"identity":{"docker-reference":"127.0.0.1:5055/test/app"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"cosign container image signature"},"optional":null}`,
		},
		{
			"empty map is null", "127.0.0.1:5055/test/app", map[string]string{},
			`{"critical":{"identity":{"docker-reference":"127.0.0.1:5055/test/app"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"cosign container image signature"},"optional":null}`,
		},
		{
			// cosign sign -a foo=bar.
			"one annotation", "127.0.0.1:5055/test/app", map[string]string{"foo": "bar"},
			`{"critical":{"identity":{"docker-reference":"127.0.0.1:5055/test/app"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"cosign container image signature"},"optional":{"foo":"bar"}}`,
		},
		{
			"sorted keys", "index.docker.io/library/nginx", map[string]string{"zeta": "1", "alpha": "2", "Mid": "3", "m": ""},
			`{"critical":{"identity":{"docker-reference":"index.docker.io/library/nginx"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"cosign container image signature"},"optional":{"Mid":"3","alpha":"2","m":"","zeta":"1"}}`,
		},
		{
			// json.Marshal's HTML escaping, which cosign's json.Marshal applies too.
			"escaping as encoding/json", "registry.example.com:5000/team/app", map[string]string{"url": "a<b>&c", "q": `"x"\`, "u": "é\u2028"},
			`{"critical":{"identity":{"docker-reference":"registry.example.com:5000/team/app"},"image":{"docker-manifest-digest":"` + testDigest + `"},"type":"cosign container image signature"},"optional":{"q":"\"x\"\\","u":"é\u2028","url":"a\u003cb\u003e\u0026c"}}`,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Payload(c.repo, testDigest, c.annotations)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("Payload =\n%s\nwant\n%s", got, c.want)
			}
			p, err := ParsePayload(got)
			if err != nil {
				t.Fatal(err)
			}
			if p.Critical.Image.DockerManifestDigest != testDigest || p.Critical.Identity.DockerReference != c.repo || p.Critical.Type != SimpleSigningType {
				t.Errorf("round trip: %+v", p.Critical)
			}
			for k, v := range c.annotations {
				if p.Optional[k] != v {
					t.Errorf("optional[%q] = %v, want %q", k, p.Optional[k], v)
				}
			}
		})
	}
}

func TestPayloadRefusals(t *testing.T) {
	for _, c := range []struct {
		repo, digest, text string
	}{
		{"", testDigest, "empty docker-reference"},
		{"127.0.0.1:5055/test/app:v1", testDigest, "tag or digest"},
		{"127.0.0.1:5055/test/app@" + testDigest, testDigest, "tag or digest"},
		{"127.0.0.1:5055/test/app", "sha256:abc", "not a sha256 digest"},
		{"127.0.0.1:5055/test/app", "sha512:" + strings.Repeat("a", 64), "not a sha256 digest"},
		{"127.0.0.1:5055/test/app", "latest", "not a sha256 digest"},
	} {
		if _, err := Payload(c.repo, c.digest, nil); err == nil || !strings.Contains(err.Error(), c.text) {
			t.Errorf("Payload(%q, %q): err = %v, want %q", c.repo, c.digest, err, c.text)
		}
	}
}

// ParsePayload accepts what cosign's claim check accepts: any key order,
// whitespace and the capitalised field name of SIGNATURE_SPEC.md.
func TestParsePayloadLikeCosign(t *testing.T) {
	in := `{
  "optional": {"foo": "bar", "n": 1},
  "critical": {"type": "cosign container image signature",
    "image": {"Docker-manifest-digest": "` + testDigest + `"},
    "identity": {"docker-reference": "totally.different/repo:sometag"}}
}`
	p, err := ParsePayload([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if p.Critical.Image.DockerManifestDigest != testDigest {
		t.Errorf("digest = %q", p.Critical.Image.DockerManifestDigest)
	}
	if p.Optional["foo"] != "bar" || p.Optional["n"] != float64(1) {
		t.Errorf("optional = %v", p.Optional)
	}
	if _, err := ParsePayload([]byte(`{"critical":`)); err == nil {
		t.Error("truncated payload parsed")
	}
}
