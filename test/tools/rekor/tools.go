//go:build tools

// Package tools pins the rekor-server command for test/tools/build.sh.
package tools

import _ "github.com/sigstore/rekor/cmd/rekor-server"
