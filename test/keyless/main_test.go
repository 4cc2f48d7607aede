// Package keyless runs `ocisign sign --keyless` against a real Fulcio
// (test/tools/fulcio, ephemeral CA, no CT log), the real local Rekor
// (test/rekor), a test OIDC issuer on loopback (test/internal/oidctest) and a
// real registry process, and has real cosign v2 and v3 verify the result by
// identity and issuer. Skipped unless OCISIGN_E2E=1 (internal/testgate).
package keyless

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocisign/ocisign/test/internal/fulciotest"
	th "github.com/ocisign/ocisign/test/internal/harness"
	"github.com/ocisign/ocisign/test/internal/oidctest"
	"github.com/ocisign/ocisign/test/rekor"
)

var env struct {
	pkg    th.Package
	issuer *oidctest.Issuer
	fulcio *fulciotest.CA
	rekor  *rekor.Log
}

func TestMain(m *testing.M) {
	th.SetupPackage(m, &env.pkg, th.PackageOptions{Name: "keyless", Cosign: true, DockerConfigDir: true,
		Then: func(p *th.Package) (func(), error) {
			var stops []func()
			stop := func() {
				for i := len(stops) - 1; i >= 0; i-- {
					stops[i]()
				}
			}
			bin, err := fulciotest.FindBinary(rekor.DefaultToolsDir())
			if err != nil {
				return stop, err
			}
			if env.issuer, err = oidctest.Start(); err != nil {
				return stop, err
			}
			stops = append(stops, env.issuer.Close)
			if env.fulcio, err = fulciotest.Start(bin, filepath.Join(p.Tmp, "fulcio"), env.issuer.URL); err != nil {
				return stop, err
			}
			stops = append(stops, env.fulcio.Stop)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if env.rekor, err = rekor.Start(ctx, rekor.Options{Dir: filepath.Join(p.Tmp, "rekor")}); err != nil {
				return stop, fmt.Errorf("starting the local Rekor: %v", err)
			}
			stops = append(stops, func() { env.rekor.Stop() })
			return stop, nil
		}})
}
