// Where the Rekor, Trillian and MariaDB binaries are.

package rekor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Tools are the paths of the binaries and the schema.
type Tools struct {
	RekorServer, TrillianServer, TrillianSigner, TrillianSchema string
	MariaDBd, MariaDBInstall, MariaDBClient                     string
}

// DefaultToolsDir is where test/tools/build-rekor.sh puts the binaries.
func DefaultToolsDir() string {
	if d := os.Getenv("OCISIGN_TOOLS_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "ocisign-tools")
	}
	return filepath.Join(home, ".cache", "ocisign-tools")
}

// FindTools locates everything Start needs and names whatever is missing.
func FindTools(dir string) (*Tools, error) {
	if dir == "" {
		dir = DefaultToolsDir()
	}
	t := &Tools{
		RekorServer:    filepath.Join(dir, RekorServerBinary),
		TrillianServer: filepath.Join(dir, TrillianServerBinary),
		TrillianSigner: filepath.Join(dir, TrillianSignerBinary),
		TrillianSchema: filepath.Join(dir, TrillianSchemaFile),
	}
	var missing []string
	for _, p := range []string{t.RekorServer, t.TrillianServer, t.TrillianSigner, t.TrillianSchema} {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			missing = append(missing, p)
		}
	}
	find := func(names ...string) string {
		for _, n := range names {
			if p, err := exec.LookPath(n); err == nil {
				return p
			}
			for _, d := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin"} {
				if p := filepath.Join(d, n); isExecutable(p) {
					return p
				}
			}
		}
		missing = append(missing, strings.Join(names, " or "))
		return ""
	}
	t.MariaDBd = find("mariadbd", "mysqld")
	t.MariaDBInstall = find("mariadb-install-db", "mysql_install_db")
	t.MariaDBClient = find("mariadb", "mysql")
	if len(missing) > 0 {
		return nil, fmt.Errorf("local Rekor tools missing (run test/rekor/install.sh): %s", strings.Join(missing, ", "))
	}
	return t, nil
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}
