package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/ocisign/ocisign/internal/bounded"
	"github.com/ocisign/ocisign/internal/settings"
	"github.com/ocisign/ocisign/keyless"
	"github.com/ocisign/ocisign/tlog"
)

// fileConfig is the YAML file given by --config or OCISIGN_CONFIG.
type fileConfig struct {
	SignKey            string            `yaml:"sign_key"`
	Annotations        map[string]string `yaml:"annotations"`
	Recursive          bool              `yaml:"recursive"`
	InsecureRegistries []string          `yaml:"insecure_registries"`
	Timeout            string            `yaml:"timeout"`
	// RekorURL turns on transparency log upload for sign (and names the log
	// whose key verify fetches); RekorPublicKey pins that log's key.
	RekorURL       string `yaml:"rekor_url"`
	RekorPublicKey string `yaml:"rekor_public_key"`
	// Keyless signs with an OIDC identity through Fulcio (fulcio_url;
	// fulcio_root pins its root certificates).
	Keyless    bool   `yaml:"keyless"`
	FulcioURL  string `yaml:"fulcio_url"`
	FulcioRoot string `yaml:"fulcio_root"`

	timeout time.Duration
	dir     string // the file's directory; relative sign_key paths start there
}

// maxConfigBytes keeps a wrong --config (a binary, a device) from being read whole.
const maxConfigBytes = 1 << 20

func configFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    "config",
		Usage:   "YAML `FILE` with sign_key, annotations, recursive, insecure_registries, timeout, rekor_url, rekor_public_key, keyless, fulcio_url, fulcio_root",
		EnvVars: []string{"OCISIGN_CONFIG"},
	}
}

// loadConfig reads the config named by --config / OCISIGN_CONFIG; no file
// means the zero config. Unknown keys and bad values are errors.
func loadConfig(c *cli.Context) (*fileConfig, error) {
	path := configPath(c)
	if path == "" {
		return &fileConfig{}, nil
	}
	data, err := bounded.ReadFile(path, maxConfigBytes)
	var notRegular *bounded.NotRegularError
	var large *bounded.TooLargeError
	switch {
	case errors.As(err, &notRegular):
		return nil, fmt.Errorf("config %s: not a regular file (a %s)", path, notRegular.Kind)
	case errors.As(err, &large):
		return nil, fmt.Errorf("config %s: larger than %d bytes; is this the right file?", path, maxConfigBytes)
	case err != nil:
		return nil, fmt.Errorf("config %s: %w", path, unwrapPathError(err))
	}
	return parseConfig(path, data)
}

// configPath finds --config wherever it was given: sign and verify accept it
// after the command name too, and their own (unset) flag must not hide
// `ocisign --config FILE sign …`.
func configPath(c *cli.Context) string {
	for _, ctx := range c.Lineage() {
		if ctx.IsSet("config") {
			return ctx.String("config")
		}
	}
	return c.String("config")
}

func parseConfig(path string, data []byte) (*fileConfig, error) {
	cfg := &fileConfig{dir: filepath.Dir(path)}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if cfg.Timeout != "" {
		d, err := time.ParseDuration(cfg.Timeout)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("config %s: timeout %q is not a positive duration like \"90s\" or \"5m\"", path, cfg.Timeout)
		}
		cfg.timeout = d
	}
	for k := range cfg.Annotations {
		if k == "" {
			return nil, fmt.Errorf("config %s: annotations: empty key", path)
		}
	}
	for _, h := range cfg.InsecureRegistries {
		if h == "" || strings.ContainsAny(h, "/ ") {
			return nil, fmt.Errorf("config %s: insecure_registries: %q is not a host[:port]", path, h)
		}
	}
	if cfg.RekorURL != "" {
		if err := tlog.CheckURL(cfg.RekorURL); err != nil {
			return nil, fmt.Errorf("config %s: rekor_url %q %v", path, tlog.RedactURL(cfg.RekorURL), err)
		}
	}
	if cfg.FulcioURL != "" {
		if _, err := keyless.CheckFulcioURL(cfg.FulcioURL); err != nil {
			return nil, fmt.Errorf("config %s: fulcio_url %q %v", path, tlog.RedactURL(cfg.FulcioURL), err)
		}
	}
	return cfg, nil
}

// values are the file's settings for internal/settings, paths resolved
// against the file's directory.
func (cfg *fileConfig) values() settings.Values {
	return settings.Values{SignKey: cfg.relativeToFile(cfg.SignKey), RekorURL: cfg.RekorURL,
		RekorPublicKey: cfg.relativeToFile(cfg.RekorPublicKey), Annotations: cfg.Annotations, Recursive: cfg.Recursive,
		Keyless: cfg.Keyless, FulcioURL: cfg.FulcioURL, FulcioRoot: cfg.relativeToFile(cfg.FulcioRoot)}
}

// parseAnnotations splits -a k=v on the first '=' as cosign does.
func parseAnnotations(flags []string) (map[string]string, error) {
	out := make(map[string]string, len(flags))
	for _, a := range flags {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, usagef("annotation %q is not of the form key=value", a)
		}
		out[k] = v
	}
	return out, nil
}

// relativeToFile resolves a path written in the config file against the
// file's directory, so a config works from any working directory.
func (cfg *fileConfig) relativeToFile(p string) string {
	if p == "" || filepath.IsAbs(p) || cfg.dir == "" {
		return p
	}
	return filepath.Join(cfg.dir, p)
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
