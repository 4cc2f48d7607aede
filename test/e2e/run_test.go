package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// result is what one subprocess did.
type result struct {
	cmd    string
	code   int
	stdout string
	stderr string
}

func (r result) String() string {
	return fmt.Sprintf("$ %s\nexit %d\n--- stdout ---\n%s\n--- stderr ---\n%s", r.cmd, r.code, tailString(r.stdout), tailString(r.stderr))
}

func tailString(s string) string { return tail([]byte(s), 4000) }

// cleanEnv is the whole environment of every subprocess: a private HOME and
// TUF root, no registry credentials, and a dead proxy so nothing can reach
// the internet (loopback is never proxied).
func cleanEnv(extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + harness.home,
		"DOCKER_CONFIG=" + filepath.Join(harness.home, ".docker"),
		"TUF_ROOT=" + filepath.Join(harness.tmp, "tuf"),
		"SIGSTORE_NO_CACHE=1",
		"COSIGN_PASSWORD=" + testPassword,
		"HTTPS_PROXY=http://127.0.0.1:9",
		"HTTP_PROXY=http://127.0.0.1:9",
		"NO_PROXY=127.0.0.1,localhost",
		"TMPDIR=" + os.TempDir(),
	}
	return append(env, extra...)
}

// run executes bin with args in dir (a fresh temp dir when empty), no stdin,
// the clean environment plus extraEnv, and a hang guard.
func run(t *testing.T, dir string, extraEnv []string, bin string, args ...string) result {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv(extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{cmd: filepath.Base(bin) + " " + strings.Join(args, " "), stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.Exited():
		r.code = exitErr.ExitCode()
	case ctx.Err() != nil:
		t.Fatalf("%s: did not finish (hang guard): %v\n%s", r.cmd, err, r)
	default:
		t.Fatalf("%s: %v", r.cmd, err)
	}
	if os.Getenv("OCISIGN_E2E_LOG") != "" {
		t.Logf("%s", r)
	}
	return r
}

// ocisign runs the CLI and checks the universal rule that the password never
// appears in its output.
func ocisign(t *testing.T, args ...string) result {
	t.Helper()
	return ocisignEnv(t, nil, args...)
}

func ocisignEnv(t *testing.T, extraEnv []string, args ...string) result {
	t.Helper()
	r := run(t, "", extraEnv, harness.ocisign, args...)
	noSecrets(t, r, testPassword)
	for _, e := range extraEnv {
		if v, ok := strings.CutPrefix(e, "COSIGN_PASSWORD="); ok && v != "" {
			noSecrets(t, r, v)
		}
	}
	return r
}

func noSecrets(t *testing.T, r result, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
			t.Errorf("secret %q leaked into the output of %s", s, r.cmd)
		}
	}
}

func mustSucceed(t *testing.T, r result) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("command failed:\n%s", r)
	}
	return r
}

func wantExit(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d, got:\n%s", code, r)
	}
}

// signOutput is `ocisign sign --output json` (field names of the contract).
type signOutput struct {
	SignatureDigest string `json:"signature_digest"`
	Signed          []struct {
		Digest          string `json:"digest"`
		SignatureRef    string `json:"signature_ref"`
		SignatureDigest string `json:"signature_digest"`
		Deduplicated    bool   `json:"deduplicated"`
	} `json:"signed"`
}

// ocisignSign signs ref with key and returns the parsed JSON result.
func ocisignSign(t *testing.T, key, ref string, extra ...string) signOutput {
	t.Helper()
	args := append([]string{"sign", "--key", key, "--output", "json"}, extra...)
	r := mustSucceed(t, ocisign(t, append(args, ref)...))
	var out signOutput
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("sign --output json is not one JSON object: %v\n%s", err, r)
	}
	if len(out.Signed) == 0 || out.SignatureDigest == "" {
		t.Fatalf("sign --output json has no signed entries or no signature_digest:\n%s", r)
	}
	if out.SignatureDigest != out.Signed[0].SignatureDigest {
		t.Errorf("signature_digest %s differs from signed[0].signature_digest %s", out.SignatureDigest, out.Signed[0].SignatureDigest)
	}
	return out
}

// annotationFlags turns "k=v" pairs into repeated -a flags.
func annotationFlags(annotations []string) []string {
	var args []string
	for _, a := range annotations {
		args = append(args, "-a", a)
	}
	return args
}

// cosignSign signs ref@digest with real cosign in the legacy .sig layout and
// without a transparency log.
func cosignSign(t *testing.T, version, key, ref string, annotations ...string) {
	t.Helper()
	args := []string{"sign", "--key", key}
	switch version {
	case "v2":
		args = append(args, "--tlog-upload=false", "-y")
	case "v3":
		args = append(args, "--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false", "-y")
	default:
		t.Fatalf("unknown cosign version %q", version)
	}
	args = append(args, annotationFlags(annotations)...)
	mustSucceed(t, run(t, "", nil, harness.cosign[version], append(args, ref)...))
}

// cosignVerify runs `cosign verify --insecure-ignore-tlog`.
func cosignVerify(t *testing.T, version, pub, ref string, annotations ...string) result {
	t.Helper()
	args := append([]string{"verify", "--key", pub, "--insecure-ignore-tlog"}, annotationFlags(annotations)...)
	return run(t, "", nil, harness.cosign[version], append(args, ref)...)
}

// assertCosignVerifies checks that cosign accepts ref (repo@digest) and that
// every payload it lists claims digest.
func assertCosignVerifies(t *testing.T, version, pub, ref, digest string, annotations ...string) {
	t.Helper()
	checkCosignAccepted(t, version, cosignVerify(t, version, pub, ref, annotations...), ref, digest)
}

// checkCosignAccepted checks a cosign verify run: exit 0 and every payload
// it lists claims digest.
func checkCosignAccepted(t *testing.T, version string, r result, ref, digest string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("cosign %s rejected %s:\n%s", version, ref, r)
	}
	var payloads []struct {
		Critical struct {
			Image struct {
				DockerManifestDigest string `json:"docker-manifest-digest"`
			} `json:"image"`
		} `json:"critical"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &payloads); err != nil {
		t.Fatalf("cosign %s verify output is not a JSON list: %v\n%s", version, err, r)
	}
	if len(payloads) == 0 {
		t.Fatalf("cosign %s verify listed no signatures:\n%s", version, r)
	}
	for _, p := range payloads {
		if p.Critical.Image.DockerManifestDigest != digest {
			t.Fatalf("cosign %s verify listed digest %q, want %s:\n%s", version, p.Critical.Image.DockerManifestDigest, digest, r)
		}
	}
}

// assertCosignRejects checks that cosign refuses ref.
func assertCosignRejects(t *testing.T, version, pub, ref string, annotations ...string) {
	t.Helper()
	if r := cosignVerify(t, version, pub, ref, annotations...); r.code == 0 {
		t.Fatalf("cosign %s accepted %s, want a rejection:\n%s", version, ref, r)
	}
}

// verifyOutput is the part of `ocisign verify --output json` the tests read.
type verifyOutput struct {
	Digest     string `json:"digest"`
	Valid      int    `json:"valid"`
	Signatures []struct {
		Valid bool   `json:"valid"`
		Error string `json:"error"`
	} `json:"signatures"`
}

// ocisignVerify runs `ocisign verify --output json` and parses stdout when
// there is any.
func ocisignVerify(t *testing.T, pub, ref string, annotations ...string) (result, *verifyOutput) {
	t.Helper()
	args := append([]string{"verify", "--key", pub, "--output", "json"}, annotationFlags(annotations)...)
	r := ocisign(t, append(args, ref)...)
	if strings.TrimSpace(r.stdout) == "" {
		return r, nil
	}
	var out verifyOutput
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("verify --output json is not one JSON object: %v\n%s", err, r)
	}
	return r, &out
}

// assertOcisignVerifies checks exit 0 and at least one valid layer.
func assertOcisignVerifies(t *testing.T, pub, ref, digest string, annotations ...string) {
	t.Helper()
	r, out := ocisignVerify(t, pub, ref, annotations...)
	if r.code != 0 {
		t.Fatalf("ocisign verify rejected %s:\n%s", ref, r)
	}
	if out == nil || out.Valid < 1 || out.Digest != digest {
		t.Fatalf("ocisign verify exit 0 but JSON does not show a valid signature for %s:\n%s", digest, r)
	}
}

// assertOcisignRejects checks exit 1 and no valid layer in the JSON.
func assertOcisignRejects(t *testing.T, pub, ref string) result {
	t.Helper()
	r, out := ocisignVerify(t, pub, ref)
	if r.code != 1 {
		t.Fatalf("ocisign verify: want exit 1 (rejected), got:\n%s", r)
	}
	if out != nil && out.Valid != 0 {
		t.Fatalf("ocisign verify exit 1 but JSON reports %d valid signatures:\n%s", out.Valid, r)
	}
	if out != nil {
		for i, s := range out.Signatures {
			if s.Valid || s.Error == "" {
				t.Fatalf("rejected layer %d must be invalid with a reason:\n%s", i, r)
			}
		}
	}
	return r
}
