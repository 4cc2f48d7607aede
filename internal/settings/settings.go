// Package settings resolves what one sign or verify uses from its sources,
// in one order for the CLI and the port so they cannot drift: the explicit
// value (a flag, or a field of the port request) > the environment > the
// config file (--config / OCISIGN_CONFIG).
package settings

import "github.com/ocisign/ocisign/tlog"

// EnvSignKey is ocibuild's variable for the signing key's path.
const EnvSignKey = "OCIBUILD_SIGN_KEY"

// Values are one source's settings. From the config file, paths are
// already resolved against the file's directory.
type Values struct {
	SignKey        string
	RekorURL       string
	RekorPublicKey string
	// Annotations go into the payloads sign writes; the config's are laid
	// under the explicit ones (an explicit key wins).
	Annotations map[string]string
	// Recursive from any source makes a sign recursive.
	Recursive bool
	// Keyless from any source signs with an OIDC identity (Fulcio) instead
	// of a key; FulcioURL names the CA, FulcioRoot a PEM file of trusted roots.
	Keyless    bool
	FulcioURL  string
	FulcioRoot string
}

// Environment variables for keyless signing.
const (
	EnvFulcioURL  = "OCISIGN_FULCIO_URL"
	EnvFulcioRoot = "SIGSTORE_ROOT_FILE" // cosign's name for it
)

// Resolve applies explicit > environment (getenv) > config to every field.
// Annotations merge for sign only: verify requires just the explicit ones,
// so signatures made without the config's still count.
func Resolve(explicit Values, getenv func(string) string, config Values, op Op) Values {
	out := Values{
		SignKey:        first(explicit.SignKey, getenv(EnvSignKey), config.SignKey),
		RekorURL:       first(explicit.RekorURL, getenv(tlog.EnvURL), config.RekorURL),
		RekorPublicKey: first(explicit.RekorPublicKey, getenv(tlog.EnvPublicKey), config.RekorPublicKey),
		Recursive:      explicit.Recursive || config.Recursive,
		Annotations:    explicit.Annotations,
		Keyless:        explicit.Keyless || config.Keyless,
		FulcioURL:      first(explicit.FulcioURL, getenv(EnvFulcioURL), config.FulcioURL),
		FulcioRoot:     first(explicit.FulcioRoot, getenv(EnvFulcioRoot), config.FulcioRoot),
	}
	if op == Sign && len(config.Annotations) > 0 {
		out.Annotations = make(map[string]string, len(config.Annotations)+len(explicit.Annotations))
		for k, v := range config.Annotations {
			out.Annotations[k] = v
		}
		for k, v := range explicit.Annotations {
			out.Annotations[k] = v
		}
	}
	return out
}

// Op is what the settings are for.
type Op int

const (
	Sign Op = iota
	Verify
)

func first(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
