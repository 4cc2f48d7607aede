//go:build tools

// Package tools pins Fulcio for the keyless tests (test/tools/build.sh).
package tools

import _ "github.com/sigstore/fulcio"
