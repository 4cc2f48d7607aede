// Command keylessenv is test plumbing for test/erlang/run.sh: it serves what
// a keyless signing needs on loopback — the test OIDC issuer with its GitHub
// Actions stand-in (test/internal/oidctest), the pinned real Fulcio
// (test/internal/fulciotest) and a stand-in transparency log with real
// signed entry timestamps (internal/rekortest; the real Rekor is tested in
// test/rekor and test/keyless) — writes their addresses as shell
// assignments to ENVFILE, and runs until standard input closes.
//
//	keylessenv DIR ENVFILE
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ocisign/ocisign/internal/rekortest"
	"github.com/ocisign/ocisign/test/internal/fulciotest"
	"github.com/ocisign/ocisign/test/internal/oidctest"
	"github.com/ocisign/ocisign/test/rekor"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: keylessenv DIR ENVFILE")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "keylessenv:", err)
		os.Exit(1)
	}
}

func run(dir, envFile string) error {
	bin, err := fulciotest.FindBinary(rekor.DefaultToolsDir())
	if err != nil {
		return err
	}
	issuer, err := oidctest.Start()
	if err != nil {
		return err
	}
	defer issuer.Close()
	ca, err := fulciotest.Start(bin, filepath.Join(dir, "fulcio"), issuer.URL)
	if err != nil {
		return err
	}
	defer ca.Stop()
	log, err := rekortest.Serve(dir, rekortest.Options{})
	if err != nil {
		return err
	}
	defer log.Srv.Close()
	const bearer = "keylessenv-actions-request-token"
	actions := issuer.ActionsEndpoint(bearer, oidctest.EmailClaims())
	env := fmt.Sprintf("KL_ISSUER=%s\nKL_EMAIL=%s\nKL_FULCIO_URL=%s\nKL_FULCIO_ROOT=%s\nKL_REKOR_URL=%s\nKL_REKOR_PUB=%s\n"+
		"KL_ACTIONS_URL='%s'\nKL_ACTIONS_TOKEN=%s\n",
		issuer.URL, oidctest.Email, ca.URL, ca.RootFile, log.Srv.URL, log.KeyFile, actions, bearer)
	if err := os.WriteFile(envFile+".tmp", []byte(env), 0o600); err != nil {
		return err
	}
	if err := os.Rename(envFile+".tmp", envFile); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}
