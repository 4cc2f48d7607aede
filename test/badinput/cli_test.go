package badinput

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const keyPassword = "badinput-password"

// cliCase is one bad command line, config file or key file.
type cliCase struct {
	name   string
	args   []string
	env    []string
	exit   int
	stderr string // exact, after "ocisign: "; {reg} is the registry address
	code   string // JSON error code when args carry --output json
}

// files are written into the working directory of every case.
var files = map[string]string{
	"unknown-field.yml": "sign_key: k.key\nbogus: 1\n",
	"bad-timeout.yml":   "timeout: soon\n",
	"bad-annot.yml":     "annotations: [a, b]\n",
	"bad-insecure.yml":  "insecure_registries: [\"a/b\"]\n",
	"broken.yml":        "sign_key: [\n",
	"bad-recursive.yml": "recursive: maybe\n",
	"empty-annot.yml":   "annotations: {\"\": v}\n",
	"not-a-key.key":     "not a key\n",
	"empty.key":         "",
	"rsa1024.pem":       fixture("openssl-rsa1024-pkcs8.pem"),
	"secp256k1.pem":     fixture("openssl-secp256k1-sec1.pem"),
	"cert.pem":          fixture("openssl-p256-cert.pem"),
	"dsa.pem":           fixture("openssl-dsa-pkcs8.pem"),
	"ed448.pem":         fixture("openssl-ed448-pkcs8.pem"),
	"p224.pem":          fixture("openssl-p224-sec1.pem"),
	"rsa512-pkcs1.pem":  fixture("openssl-rsa512-pkcs1.pem"),
	"openssl-encr.pem":  fixture("openssl-p256-pkcs8-encrypted.pem"),
	"explicit-ec.pem":   fixture("openssl-p256-sec1-explicit.pem"),
}

func fixture(name string) string {
	b, err := os.ReadFile(filepath.Join("..", "..", "signing", "testdata", name))
	if err != nil {
		panic(err)
	}
	return string(b)
}

func cliCases() []cliCase {
	img := "{reg}/bad/app:1"
	sign := func(key string) []string { return []string{"sign", "--key", key, "--output", "json", img} }
	return []cliCase{
		// Command lines.
		{name: "unknown command", args: []string{"frobnicate"}, exit: 2, stderr: `unknown command "frobnicate" (see ocisign --help)`},
		{name: "sign without image", args: []string{"sign", "--key", "k.key"}, exit: 2, stderr: "sign needs exactly one IMAGE (registry/repo[:tag][@digest])"},
		{name: "sign with two images", args: []string{"sign", "--key", "k.key", "a", "b"}, exit: 2, stderr: "sign takes one IMAGE, got 2 arguments (flags must come before IMAGE)"},
		{name: "unknown flag", args: []string{"sign", "--bogus", img}, exit: 2, stderr: "flag provided but not defined: -bogus"},
		{name: "bad --output", args: []string{"sign", "--key", "k.key", "--output", "yaml", img}, exit: 2, stderr: `--output must be text or json, not "yaml"`},
		{name: "zero --timeout", args: []string{"sign", "--key", "k.key", "--timeout", "0s", img}, exit: 2, stderr: "--timeout must be positive"},
		{name: "annotation without =", args: []string{"sign", "--key", "k.key", "-a", "novalue", img}, exit: 2, stderr: `annotation "novalue" is not of the form key=value`},
		{name: "annotation with empty key", args: []string{"sign", "--key", "k.key", "-a", "=v", img}, exit: 2, stderr: `annotation "=v" is not of the form key=value`},
		{name: "no key anywhere", args: []string{"sign", img}, exit: 2, stderr: "no signing key: pass --key FILE, set OCIBUILD_SIGN_KEY, or put sign_key in the --config file (or sign keylessly: --keyless with an OIDC identity token)"},
		{name: "verify without key", args: []string{"verify", img}, exit: 2, stderr: "verify needs --key FILE (the public key, e.g. cosign.pub), or for keyless signatures --certificate-identity and --certificate-oidc-issuer"},
		{name: "version with argument", args: []string{"version", "extra"}, exit: 2, stderr: "version takes no arguments"},
		{name: "port with argument", args: []string{"port", "extra"}, exit: 2, stderr: "port takes no arguments"},
		{name: "port with zero frame limit", args: []string{"port", "--max-frame-bytes", "0"}, exit: 2, stderr: "--max-frame-bytes must be positive"},
		{name: "bad reference", args: []string{"sign", "--key", "k.key", "--output", "json", "::bad::"}, exit: 1, code: "invalid_reference",
			stderr: "parse reference ::bad::: not a valid image reference (want registry/repository[:tag][@sha256:<hex>]): could not parse reference: ::bad::"},
		{name: "short digest", args: []string{"sign", "--key", "k.key", "--output", "json", "{reg}/x@sha256:abc"}, exit: 1, code: "invalid_reference",
			stderr: "parse reference {reg}/x@sha256:abc: not a valid image reference (want registry/repository[:tag][@sha256:<hex>]): could not parse reference: {reg}/x@sha256:abc"},
		{name: "image not in registry", args: []string{"sign", "--key", "k.key", "--output", "json", "{reg}/bad/missing:1"}, exit: 1, code: "not_found",
			stderr: "resolve {reg}/bad/missing:1: 404 Not Found: no such manifest in {reg}/bad/missing"},
		{name: "key pair exists", args: []string{"generate-key-pair", "--output-key-prefix", "k"}, exit: 1,
			stderr: "generate key pair: k.key already exists (use --force to overwrite it)"},

		// Config files.
		{name: "config: unknown field", args: []string{"sign", "--config", "unknown-field.yml", img}, exit: 2, stderr: "config unknown-field.yml: unmarshal errors:\n  line 2: field bogus not found in type main.fileConfig"},
		{name: "config: bad timeout", args: []string{"sign", "--config", "bad-timeout.yml", img}, exit: 2, stderr: `config bad-timeout.yml: timeout "soon" is not a positive duration like "90s" or "5m"`},
		{name: "config: annotations not a map", args: []string{"sign", "--config", "bad-annot.yml", img}, exit: 2, stderr: "config bad-annot.yml: unmarshal errors:\n  line 1: cannot unmarshal !!seq into map[string]string"},
		{name: "config: empty annotation key", args: []string{"sign", "--config", "empty-annot.yml", img}, exit: 2, stderr: "config empty-annot.yml: annotations: empty key"},
		{name: "config: bad insecure registry", args: []string{"sign", "--config", "bad-insecure.yml", img}, exit: 2, stderr: `config bad-insecure.yml: insecure_registries: "a/b" is not a host[:port]`},
		{name: "config: broken YAML", args: []string{"sign", "--config", "broken.yml", img}, exit: 2, stderr: "config broken.yml: line 1: did not find expected node content"},
		{name: "config: recursive not a bool", args: []string{"sign", "--config", "bad-recursive.yml", img}, exit: 2, stderr: "config bad-recursive.yml: unmarshal errors:\n  line 1: cannot unmarshal !!str `maybe` into bool"},
		{name: "config: missing file", args: []string{"sign", "--config", "nofile.yml", img}, exit: 2, stderr: "config nofile.yml: no such file or directory"},
		{name: "config: OCISIGN_CONFIG", args: []string{"sign", img}, env: []string{"OCISIGN_CONFIG=bad-timeout.yml"}, exit: 2, stderr: `config bad-timeout.yml: timeout "soon" is not a positive duration like "90s" or "5m"`},

		// Key files.
		{name: "key: missing", args: sign("missing.key"), exit: 1, code: "key_not_found", stderr: "key missing.key: file does not exist"},
		{name: "key: a directory", args: sign("keydir"), exit: 1, code: "key_not_found", stderr: "key keydir: is a directory, not a key file"},
		{name: "key: empty", args: sign("empty.key"), exit: 1, code: "invalid_key", stderr: "key empty.key: file is empty, expected a private key in PEM format"},
		{name: "key: not PEM", args: sign("not-a-key.key"), exit: 1, code: "invalid_key", stderr: "key not-a-key.key: not a PEM file, expected a private key (-----BEGIN ... -----)"},
		{name: "key: truncated", args: sign("truncated.key"), exit: 1, code: "invalid_key", stderr: "key truncated.key: PEM block is corrupt or truncated (a BEGIN line without a valid base64 body and END line)"},
		{name: "key: public key given", args: sign("k.pub"), exit: 1, code: "invalid_key", stderr: "key k.pub: this is a public key (PUBLIC KEY); signing needs the private key"},
		{name: "key: certificate given", args: sign("cert.pem"), exit: 1, code: "invalid_key", stderr: "key cert.pem: this is a certificate; signing needs the private key"},
		{name: "key: RSA 1024", args: sign("rsa1024.pem"), exit: 1, code: "unsupported_key", stderr: "key rsa1024.pem: RSA key of 1024 bits is not supported: cosign verifiers accept 2048 to 4096 bits"},
		{name: "key: RSA 512 PKCS#1", args: sign("rsa512-pkcs1.pem"), exit: 1, code: "unsupported_key", stderr: "key rsa512-pkcs1.pem: RSA key of 512 bits is not supported: cosign verifiers accept 2048 to 4096 bits"},
		{name: "key: secp256k1", args: sign("secp256k1.pem"), exit: 1, code: "unsupported_key", stderr: "key secp256k1.pem: ECDSA curve secp256k1 is not supported; use ECDSA P-256 (recommended), RSA 2048 to 4096 bits or Ed25519"},
		{name: "key: DSA", args: sign("dsa.pem"), exit: 1, code: "unsupported_key", stderr: "key dsa.pem: DSA keys are not supported; use ECDSA P-256 (recommended), RSA 2048 to 4096 bits or Ed25519"},
		{name: "key: Ed448", args: sign("ed448.pem"), exit: 1, code: "unsupported_key", stderr: "key ed448.pem: Ed448 keys are not supported; use ECDSA P-256 (recommended), RSA 2048 to 4096 bits or Ed25519"},
		{name: "key: P-224", args: sign("p224.pem"), exit: 1, code: "unsupported_key", stderr: "key p224.pem: ECDSA curve P-224 is not supported; use ECDSA P-256 (recommended), RSA 2048 to 4096 bits or Ed25519"},
		{name: "key: openssl-encrypted PKCS#8", args: sign("openssl-encr.pem"), exit: 1, code: "unsupported_key",
			stderr: "key openssl-encr.pem: openssl-encrypted keys (ENCRYPTED PRIVATE KEY) are not supported; decrypt it with `openssl pkey -in openssl-encr.pem -out plain.key` and use that, or turn it into a cosign key with `cosign import-key-pair --key plain.key` (which reads COSIGN_PASSWORD)"},
		{name: "key: explicit EC parameters", args: sign("explicit-ec.pem"), exit: 1, code: "unsupported_key",
			stderr: "key explicit-ec.pem: the key spells out its curve parameters instead of naming the curve; re-encode it with `openssl ec -param_enc named_curve`"},
		{name: "key: wrong password", args: sign("k.key"), env: []string{"COSIGN_PASSWORD=wrong"}, exit: 1, code: "wrong_password",
			stderr: "key k.key: the password does not decrypt this key: wrong password (COSIGN_PASSWORD or the one typed at the prompt), or the file was altered"},
		{name: "key: no password", args: sign("k.key"), env: []string{"COSIGN_PASSWORD-unset"}, exit: 1, code: "password_required",
			stderr: "key k.key: the key is encrypted and COSIGN_PASSWORD is not set (an empty value counts as set)"},
		{name: "key: private key given to verify", args: []string{"verify", "--key", "k.key", img}, exit: 1,
			stderr: "key k.key: this is a private key (ENCRYPTED SIGSTORE PRIVATE KEY); verifying needs the public key (`ocisign public-key --key <private key>` prints it)"},
	}
}

func TestBadCommandLinesConfigsAndKeys(t *testing.T) {
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "keydir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if r := ocisign(t, dir, []string{"COSIGN_PASSWORD=" + keyPassword}, "generate-key-pair", "--output-key-prefix", "k"); r.Code != 0 {
		t.Fatalf("generate-key-pair:\n%s", r)
	}
	key, _ := os.ReadFile(filepath.Join(dir, "k.key"))
	if err := os.WriteFile(filepath.Join(dir, "truncated.key"), key[:100], 0o600); err != nil {
		t.Fatal(err)
	}
	cases := cliCases()
	if len(cases) < 30 {
		t.Fatalf("only %d CLI cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var extra []string
			unset := false
			for _, e := range tc.env {
				if e == "COSIGN_PASSWORD-unset" {
					unset = true
					continue
				}
				extra = append(extra, e)
			}
			if !unset && !hasPrefix(extra, "COSIGN_PASSWORD=") {
				extra = append(extra, "COSIGN_PASSWORD="+keyPassword)
			}
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "{reg}", env.Reg.Addr)
			}
			r := ocisign(t, dir, extra, args...)
			want := "ocisign: " + strings.ReplaceAll(tc.stderr, "{reg}", env.Reg.Addr) + "\n"
			if r.Code != tc.exit || r.Stderr != want {
				t.Fatalf("want exit %d and stderr\n%q\ngot:\n%s\nstderr %q", tc.exit, want, r, r.Stderr)
			}
			if strings.Contains(r.Stdout+r.Stderr, keyPassword) {
				t.Fatal("the password leaked")
			}
			if tc.code == "" {
				return
			}
			var doc struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(r.Stdout), &doc); err != nil {
				t.Fatalf("--output json printed no JSON error: %v\n%s", err, r)
			}
			if doc.Error.Code != tc.code || doc.Error.Message+"\n" != strings.TrimPrefix(want, "ocisign: ") {
				t.Fatalf("JSON error %+v, want code %q and the stderr message", doc.Error, tc.code)
			}
		})
	}
}

func hasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
