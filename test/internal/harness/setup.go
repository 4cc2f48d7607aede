package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ocisign/ocisign/internal/testgate"
)

// Package is what SetupPackage prepares for an e2e test package: a temp dir
// with an isolated HOME and TUF root, a freshly built ocisign and a running
// registry.
type Package struct {
	Tmp, Home, TUF string
	Ocisign        string
	Tools          Tools // only filled when PackageOptions.Cosign is set
	Reg            *Registry
}

// PackageOptions tell SetupPackage what a test package needs.
type PackageOptions struct {
	Name            string // in messages and the temp dir name
	Cosign          bool   // also find the cosign binaries (FindTools); otherwise only the registry
	DockerConfigDir bool   // also create $HOME/.docker
	// Then finishes the package's own set-up once the registry runs; a
	// returned stop func runs after the tests.
	Then func(p *Package) (stop func(), err error)
}

// SetupPackage is a TestMain body: it skips unless testgate.On(), sets up p,
// runs the tests and exits. A set-up error fails the package.
// OCISIGN_E2E_KEEP=1 keeps the temp dir (registry log, keys) for debugging.
func SetupPackage(m *testing.M, p *Package, opts PackageOptions) {
	if !testgate.On() {
		fmt.Printf("%s: skipped (set OCISIGN_E2E=1, or run `make test`)\n", opts.Name)
		os.Exit(0)
	}
	code, err := setUpPackage(m, p, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: FAIL: set-up: %v\n", opts.Name, err)
		code = 1
	}
	os.Exit(code)
}

func setUpPackage(m *testing.M, p *Package, opts PackageOptions) (int, error) {
	tmp, err := os.MkdirTemp("", "ocisign-"+opts.Name+"-")
	if err != nil {
		return 1, err
	}
	defer func() {
		if os.Getenv("OCISIGN_E2E_KEEP") == "" {
			os.RemoveAll(tmp)
		} else {
			fmt.Fprintf(os.Stderr, "%s: kept %s\n", opts.Name, tmp)
		}
	}()
	p.Tmp, p.Home, p.TUF = tmp, filepath.Join(tmp, "home"), filepath.Join(tmp, "tuf")
	dirs := []string{p.Home, p.TUF}
	if opts.DockerConfigDir {
		dirs = append(dirs, filepath.Join(p.Home, ".docker"))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return 1, err
		}
	}
	var regBin string
	if opts.Cosign {
		if p.Tools, err = FindTools(); err != nil {
			return 1, err
		}
		regBin = p.Tools.Registry
	} else if regBin, err = ToolPath("OCISIGN_REGISTRY_BIN", "/usr/bin/docker-registry"); err != nil {
		return 1, err
	}
	root, err := RepoRoot(".")
	if err != nil {
		return 1, err
	}
	p.Ocisign = filepath.Join(tmp, "ocisign")
	if err := BuildOcisign(root, p.Ocisign); err != nil {
		return 1, err
	}
	if p.Reg, err = StartRegistry(regBin, filepath.Join(tmp, "registry")); err != nil {
		return 1, err
	}
	defer p.Reg.Stop()
	if opts.Then != nil {
		stop, err := opts.Then(p)
		if stop != nil {
			defer stop()
		}
		if err != nil {
			return 1, err
		}
	}
	return m.Run(), nil
}
