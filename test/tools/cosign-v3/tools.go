//go:build tools

// Package tools pins the cosign v3 command for test/tools/build.sh.
package tools

import _ "github.com/sigstore/cosign/v3/cmd/cosign"
