// Command jsonfixture writes the JSON documents Go's encoding/json produces
// for the Erlang codec tests, and checks that JSON re-encoded by Erlang
// decodes in Go to the same value.
//
//	go run ./test/erlang/jsonfixture write erlang_shim/ocisign/test/fixtures
//	go run ./test/erlang/jsonfixture check FILE
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
)

// document covers what the port protocol can carry: every escape Go emits,
// HTML-escaped characters, U+2028/2029, astral characters (surrogate pairs
// on the Erlang side), invalid UTF-8 (Go writes \ufffd), numbers in every
// form Go prints, and nesting.
func document() map[string]any {
	return map[string]any{
		"ascii":        "hello",
		"escapes":      "quote\" backslash\\ slash/ nl\n cr\r tab\t bs\b ff\f nul\x00 unit\x1f del\x7f",
		"html":         "<a href=\"x\">&amp;</a>",
		"unicode":      "héllo wörld ✓ 日本語",
		"astral":       "emoji 😀 clef 𝄞",
		"separators":   "line\u2028para\u2029end",
		"invalid_utf8": string([]byte{0xff, 'a', 0xc3}),
		"empty":        "",
		"ints":         []any{0, -1, 1, 42, 9007199254740991, -9007199254740991},
		"floats":       []any{0.5, -2.25, 1e21, 1.5e-7, 3.141592653589793, 1e-300, 123456789.125},
		"bools":        []any{true, false},
		"null":         nil,
		"nested": map[string]any{
			"a":    []any{map[string]any{"b": []any{[]any{}, map[string]any{}}}},
			"ünï":  "ключ",
			"deep": []any{[]any{[]any{[]any{"x"}}}},
		},
		"key \"quoted\"\n": 1,
		"reply": map[string]any{
			"id": 7, "ok": true,
			"signature_digest": "sha256:" + string(bytes.Repeat([]byte("ab"), 32)),
			"signed": []any{map[string]any{
				"digest":           "sha256:" + string(bytes.Repeat([]byte("cd"), 32)),
				"signature_ref":    "127.0.0.1:5000/ns/app:sha256-" + string(bytes.Repeat([]byte("cd"), 32)) + ".sig",
				"signature_digest": "sha256:" + string(bytes.Repeat([]byte("ef"), 32)),
				"deduplicated":     false,
			}},
		},
	}
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: jsonfixture write DIR | check FILE")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "write":
		err = write(os.Args[2])
	case "check":
		err = check(os.Args[2])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "jsonfixture:", err)
		os.Exit(1)
	}
}

func write(dir string) error {
	compact, err := json.Marshal(document())
	if err != nil {
		return err
	}
	indented, err := json.MarshalIndent(document(), "", "\t")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "go_compact.json"), append(compact, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "go_indented.json"), append(indented, '\n'), 0o644)
}

func check(path string) error {
	got, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var fromErlang any
	if err := json.Unmarshal(got, &fromErlang); err != nil {
		return fmt.Errorf("Go cannot decode the Erlang encoding: %w", err)
	}
	// The reference is Go's own document after one trip through JSON, so
	// numbers are float64 and invalid UTF-8 is U+FFFD on both sides.
	raw, err := json.Marshal(document())
	if err != nil {
		return err
	}
	var want any
	if err := json.Unmarshal(raw, &want); err != nil {
		return err
	}
	if !reflect.DeepEqual(fromErlang, want) {
		return fmt.Errorf("Erlang's encoding decodes to a different value:\n got %#v\nwant %#v", fromErlang, want)
	}
	fmt.Println("jsonfixture: Erlang encoding matches Go's document")
	return nil
}
