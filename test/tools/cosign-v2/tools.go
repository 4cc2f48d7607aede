//go:build tools

// Package tools pins the cosign v2 command for test/tools/build.sh.
package tools

import _ "github.com/sigstore/cosign/v2/cmd/cosign"
