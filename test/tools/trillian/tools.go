//go:build tools

// Package tools pins the Trillian commands for test/tools/build.sh; the
// harness also reads the MySQL schema from this module's copy of Trillian.
package tools

import (
	_ "github.com/google/trillian/cmd/trillian_log_server"
	_ "github.com/google/trillian/cmd/trillian_log_signer"
)
