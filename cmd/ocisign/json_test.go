package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gcrname "github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/ocisign/ocisign/internal/memregistry"
)

// jsonReply decodes the one object --output json prints.
func jsonReply(t *testing.T, stdout string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout)), &m); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
	}
	return m
}

func errorCode(t *testing.T, m map[string]any) string {
	t.Helper()
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %v", m)
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Fatalf("error object without a message: %v", e)
	}
	code, _ := e["code"].(string)
	return code
}

func TestJSONUsageErrorsPrintAnErrorObject(t *testing.T) {
	t.Setenv("OCIBUILD_SIGN_KEY", "")
	for _, args := range [][]string{
		{"sign", "-o", "json", "img"},                          // no key anywhere
		{"sign", "-o", "json", "--key", "k", "-a", "x", "img"}, // bad annotation
		{"sign", "-o", "json", "--key", "k"},                   // no IMAGE
		{"verify", "-o", "json", "img"},                        // no --key
	} {
		code, stdout, stderr := runCLI(t, args...)
		if code != exitUsage {
			t.Fatalf("%v: exit %d, want 2 (stderr %s)", args, code, stderr)
		}
		if got := errorCode(t, jsonReply(t, stdout)); got != "invalid_request" {
			t.Errorf("%v: code %q, want invalid_request", args, got)
		}
		if stderr == "" {
			t.Errorf("%v: the message must also go to stderr", args)
		}
	}
}

// TestConfigAnnotationsAreAddedBySignNotRequiredByVerify signs with the
// config's annotations and checks that verify (same config) does not turn
// them into requirements, while -a still is one; a failed verify prints one
// object with the verdicts and the error.
func TestConfigAnnotationsAreAddedBySignNotRequiredByVerify(t *testing.T) {
	addr, stop, err := memregistry.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	idx, _, err := memregistry.RandomIndex(memregistry.Platforms(2))
	if err != nil {
		t.Fatal(err)
	}
	ref := addr + "/cfg/app:1"
	tag, _ := gcrname.NewTag(ref)
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "")
	prefix := filepath.Join(dir, "k")
	if code, _, stderr := runCLI(t, "generate-key-pair", "--output-key-prefix", prefix); code != 0 {
		t.Fatal(stderr)
	}
	cfg := filepath.Join(dir, "ocisign.yaml")
	if err := os.WriteFile(cfg, []byte("sign_key: k.key\nannotations: {team: core}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OCISIGN_CONFIG", cfg)
	t.Setenv("OCIBUILD_SIGN_KEY", "")
	if code, _, stderr := runCLI(t, "sign", ref); code != 0 {
		t.Fatalf("sign: %s", stderr)
	}
	if code, stdout, stderr := runCLI(t, "verify", "--key", prefix+".pub", "-a", "team=core", ref); code != 0 {
		t.Fatalf("the config's annotation must be in the payload: exit %d\n%s%s", code, stdout, stderr)
	}

	// A signature without the annotation (made with an empty config).
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "o")
	if code, _, stderr := runCLI(t, "generate-key-pair", "--output-key-prefix", other); code != 0 {
		t.Fatal(stderr)
	}
	if code, _, stderr := runCLI(t, "--config", empty, "sign", "--key", other+".key", ref); code != 0 {
		t.Fatalf("sign without annotations: %s", stderr)
	}
	if code, stdout, stderr := runCLI(t, "verify", "--key", other+".pub", ref); code != 0 {
		t.Fatalf("verify with OCISIGN_CONFIG set must not require the config's annotations: exit %d\n%s%s", code, stdout, stderr)
	}

	code, stdout, _ := runCLI(t, "verify", "-o", "json", "--key", other+".pub", "-a", "team=core", ref)
	if code != exitFailed {
		t.Fatalf("verify -a team=core of an unannotated signature: exit %d, want 1", code)
	}
	m := jsonReply(t, stdout)
	if got := errorCode(t, m); got != "verification_failed" {
		t.Errorf("code %q, want verification_failed", got)
	}
	if valid, _ := m["valid"].(float64); valid != 0 || m["signatures"] == nil {
		t.Errorf("the object must still carry the verdicts: %v", m)
	}
}
