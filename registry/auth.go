package registry

import (
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
)

// DefaultKeychain resolves credentials the way ocibuild does:
// OCIBUILD_PUSH_TOKEN (a bearer token), else OCIBUILD_PUSH_USERNAME and
// OCIBUILD_PUSH_PASSWORD (Basic), else docker's config.json and credential
// helpers. An empty variable counts as unset.
func DefaultKeychain() authn.Keychain {
	return authn.NewMultiKeychain(envKeychain{}, authn.DefaultKeychain)
}

type envKeychain struct{}

func (envKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	if tok := os.Getenv("OCIBUILD_PUSH_TOKEN"); tok != "" {
		return authn.FromConfig(authn.AuthConfig{RegistryToken: tok}), nil
	}
	user, pass := os.Getenv("OCIBUILD_PUSH_USERNAME"), os.Getenv("OCIBUILD_PUSH_PASSWORD")
	if user != "" && pass != "" {
		return &authn.Basic{Username: user, Password: pass}, nil
	}
	return authn.Anonymous, nil
}
