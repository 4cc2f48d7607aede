package badinput

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	th "github.com/ocisign/ocisign/test/internal/harness"
)

// portCase is one bad frame; want is the exact reply ({dir} and {reg}
// replaced).
type portCase struct {
	name  string
	frame []byte // raw bytes after the length header; nil: see raw
	raw   []byte // bytes sent as they are (header included)
	want  string
}

const digest0 = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

func portCases() []portCase {
	f := func(s string) []byte { return []byte(s) }
	return []portCase{
		{name: "frame over the limit", raw: append(binary.BigEndian.AppendUint32(nil, 5000), make([]byte, 5000)...),
			want: `{"id":null,"ok":false,"error":{"code":"frame_too_large","message":"frame of 5000 bytes exceeds the limit of 4096 bytes (--max-frame-bytes)","retryable":false}}`},
		{name: "not UTF-8", frame: f("{\"id\":1,\"op\":\"\xff\"}"),
			want: `{"id":null,"ok":false,"error":{"code":"invalid_json","message":"request is not valid UTF-8 (first bad byte at offset 14)","retryable":false}}`},
		{name: "not JSON", frame: f(`{"id":1,`),
			want: `{"id":null,"ok":false,"error":{"code":"invalid_json","message":"request is not valid JSON: unexpected end of JSON input (offset 8)","retryable":false}}`},
		{name: "empty frame", frame: f(``),
			want: `{"id":null,"ok":false,"error":{"code":"invalid_json","message":"request is not valid JSON: unexpected end of JSON input (offset 0)","retryable":false}}`},
		{name: "an array", frame: f(`[1,2]`),
			want: `{"id":null,"ok":false,"error":{"code":"invalid_request","message":"request must be a JSON object, got array","retryable":false}}`},
		{name: "no id", frame: f(`{"op":"version"}`),
			want: `{"id":null,"ok":false,"error":{"code":"invalid_request","message":"missing field \"id\" (a number or a string)","retryable":false}}`},
		{name: "id twice", frame: f(`{"id":1,"id":2,"op":"version"}`),
			want: `{"id":null,"ok":false,"error":{"code":"invalid_request","message":"field \"id\" appears more than once","retryable":false}}`},
		{name: "id an object", frame: f(`{"id":{},"op":"version"}`),
			want: `{"id":null,"ok":false,"error":{"code":"invalid_request","message":"field \"id\" must be a number or a string, got object","retryable":false}}`},
		{name: "no op", frame: f(`{"id":7}`),
			want: `{"id":7,"ok":false,"error":{"code":"invalid_request","message":"missing field \"op\" (sign, verify, public_key, connect, identity, version or exit)","retryable":false}}`},
		{name: "unknown op", frame: f(`{"id":"x","op":"Sign"}`),
			want: `{"id":"x","ok":false,"error":{"code":"unknown_op","message":"unknown op \"Sign\" (expected sign, verify, public_key, connect, identity, version or exit)","retryable":false}}`},
		{name: "typo in a field", frame: f(`{"id":8,"op":"sign","reference":"{reg}/a:1","sign_kye":"k.key"}`),
			want: `{"id":8,"ok":false,"error":{"code":"invalid_request","message":"unknown field \"sign_kye\" for op \"sign\" (allowed: reference, digest, sign_key, annotations, recursive, allow_insecure_registry, timeout_ms, rekor_url, rekor_public_key, keyless, identity_token, fulcio_url, fulcio_root, insecure_ignore_sct, just_pushed)","retryable":false}}`},
		{name: "recursive a string", frame: f(`{"id":9,"op":"sign","reference":"{reg}/a:1","recursive":"yes"}`),
			want: `{"id":9,"ok":false,"error":{"code":"invalid_request","message":"field \"recursive\" must be true or false, got string","retryable":false}}`},
		{name: "empty reference", frame: f(`{"id":10,"op":"sign","reference":""}`),
			want: `{"id":10,"ok":false,"error":{"code":"invalid_request","message":"field \"reference\" must not be empty","retryable":false}}`},
		{name: "bad digest", frame: f(`{"id":11,"op":"sign","reference":"{reg}/a:1","digest":"sha256:ABC"}`),
			want: `{"id":11,"ok":false,"error":{"code":"invalid_request","message":"field \"digest\" must be \"sha256:\" followed by 64 lowercase hex digits, got \"sha256:ABC\"","retryable":false}}`},
		{name: "timeout_ms zero", frame: f(`{"id":12,"op":"sign","reference":"{reg}/a:1","timeout_ms":0}`),
			want: `{"id":12,"ok":false,"error":{"code":"invalid_request","message":"field \"timeout_ms\" must be a positive integer (milliseconds), got 0","retryable":false}}`},
		{name: "timeout_ms above the limit", frame: f(`{"id":13,"op":"sign","reference":"{reg}/a:1","timeout_ms":99999999}`),
			want: `{"id":13,"ok":false,"error":{"code":"invalid_request","message":"field \"timeout_ms\" is 99999999 ms, above the limit of 3600000 ms","retryable":false}}`},
		{name: "annotation value a number", frame: f(`{"id":14,"op":"sign","reference":"{reg}/a:1","annotations":{"a":1}}`),
			want: `{"id":14,"ok":false,"error":{"code":"invalid_request","message":"field \"annotations\": value of \"a\" must be a string, got number","retryable":false}}`},
		{name: "version with a field", frame: f(`{"id":15,"op":"version","x":1}`),
			want: `{"id":15,"ok":false,"error":{"code":"invalid_request","message":"unknown field \"x\": op \"version\" takes no fields besides id and op","retryable":false}}`},
		{name: "no sign key anywhere", frame: f(`{"id":16,"op":"sign","reference":"{reg}/a:1"}`),
			want: `{"id":16,"ok":false,"error":{"code":"invalid_request","message":"no sign_key in the request, OCIBUILD_SIGN_KEY is not set, and no config file gives a sign_key (ocisign --config FILE port, or OCISIGN_CONFIG)","retryable":false}}`},
		{name: "missing key file", frame: f(`{"id":17,"op":"sign","reference":"{reg}/a:1","sign_key":"{dir}/missing.key"}`),
			want: `{"id":17,"ok":false,"error":{"code":"key_not_found","message":"key {dir}/missing.key: file does not exist","retryable":false}}`},
		{name: "public key as sign key", frame: f(`{"id":18,"op":"public_key","sign_key":"{dir}/k.pub"}`),
			want: `{"id":18,"ok":false,"error":{"code":"invalid_key","message":"key {dir}/k.pub: this is a public key (PUBLIC KEY); signing needs the private key","retryable":false}}`},
		{name: "private key to verify", frame: f(`{"id":19,"op":"verify","reference":"{reg}/a:1","public_key":"{dir}/k.key"}`),
			want: `{"id":19,"ok":false,"error":{"code":"invalid_key","message":"key {dir}/k.key: this is a private key (ENCRYPTED SIGSTORE PRIVATE KEY); verifying needs the public key (` + "`ocisign public-key --key \\u003cprivate key\\u003e`" + ` prints it)","retryable":false}}`},
		{name: "bad reference", frame: f(`{"id":20,"op":"sign","reference":"::bad::","sign_key":"{dir}/k.key"}`),
			want: `{"id":20,"ok":false,"error":{"code":"invalid_reference","message":"parse reference ::bad::: not a valid image reference (want registry/repository[:tag][@sha256:\u003chex\u003e]): could not parse reference: ::bad::","retryable":false}}`},
		{name: "digest not in registry", frame: f(`{"id":21,"op":"sign","reference":"{reg}/bad/none:1","digest":"` + digest0 + `","sign_key":"{dir}/k.key"}`),
			want: `{"id":21,"ok":false,"error":{"code":"not_found","message":"resolve {reg}/bad/none@` + digest0 + `: 404 Not Found: no such manifest in {reg}/bad/none","retryable":false}}`},
	}
}

func TestBadPortFramesAndTheBinaryKeepsServing(t *testing.T) {
	dir := t.TempDir()
	if r := ocisign(t, dir, []string{"COSIGN_PASSWORD=" + keyPassword}, "generate-key-pair", "--output-key-prefix", "k"); r.Code != 0 {
		t.Fatalf("generate-key-pair:\n%s", r)
	}
	p, err := th.StartPort(env.Ocisign, th.IsolatedEnv(env.Home, env.TUF, "COSIGN_PASSWORD="+keyPassword), "--max-frame-bytes", "4096")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Close(); err != nil {
			t.Errorf("port exit after stdin closed: %v\n%s", err, p.Stderr)
		}
	}()
	subst := strings.NewReplacer("{dir}", dir, "{reg}", env.Reg.Addr)
	for i, tc := range portCases() {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.raw != nil {
				err = p.SendRaw(tc.raw)
			} else {
				err = p.Send([]byte(subst.Replace(string(tc.frame))))
			}
			if err != nil {
				t.Fatalf("port stdin: %v\n%s", err, p.Stderr)
			}
			got, err := p.Recv()
			if err != nil {
				t.Fatalf("no reply: %v\n%s", err, p.Stderr)
			}
			if want := subst.Replace(tc.want); string(got) != want {
				t.Fatalf("reply\n%s\nwant\n%s", got, want)
			}
			// The port still serves.
			r, err := p.Call(map[string]any{"id": 1000 + i, "op": "version"})
			if err != nil || !r.OK || r.Version == "" {
				t.Fatalf("version after the bad frame: %v %s\n%s", err, r.Raw, p.Stderr)
			}
		})
	}
	if strings.Contains(p.Stderr.String(), keyPassword) {
		t.Fatal("the password leaked into the port log")
	}
	_ = os.Remove(filepath.Join(dir, "k.key"))
}
