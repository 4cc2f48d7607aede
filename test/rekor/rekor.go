// Package rekor runs a real Rekor v1 transparency log on loopback for tests:
// MariaDB (Debian) + Trillian log server and signer + rekor-server, each on a
// free 127.0.0.1 port in a temporary directory, following
// ../shared/docs/rekor-local.md. The binaries come from
// test/tools/build-rekor.sh (test/rekor/install.sh installs everything).
package rekor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ocisign/ocisign/test/internal/harness"
)

// Pinned versions; test/tools/{rekor,trillian}/go.mod pin the same.
const (
	RekorServerBinary    = "rekor-server-v1.5.4"
	TrillianServerBinary = "trillian_log_server-v1.7.3"
	TrillianSignerBinary = "trillian_log_signer-v1.7.3"
	TrillianSchemaFile   = "trillian-storage-v1.7.3.sql"
)

// Options configure Start. The zero value is usable.
type Options struct {
	// ToolsDir holds the binaries; "" means $OCISIGN_TOOLS_DIR, else
	// $HOME/.cache/ocisign-tools.
	ToolsDir string
	// Dir is the working directory (database, logs, keys); "" means a new
	// temporary directory that Stop removes.
	Dir string
	// StartTimeout bounds start-up; 0 means 3 minutes.
	StartTimeout time.Duration
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

// Log is a running local Rekor.
type Log struct {
	// URL is the rekor-server base URL, http://127.0.0.1:PORT.
	URL string
	// PublicKey is the log's signing key (stable: the harness made it).
	PublicKey *ecdsa.PublicKey
	// PublicKeyPEM is PublicKey as a PEM "PUBLIC KEY" block.
	PublicKeyPEM []byte
	// PublicKeyFile holds PublicKeyPEM, for SIGSTORE_REKOR_PUBLIC_KEY.
	PublicKeyFile string
	// Dir is the working directory; process logs are in Dir/logs.
	Dir string

	removeDir bool
	logf      func(string, ...any)
	mu        sync.Mutex
	procs     []*proc // in start order; stopped in reverse
	stopped   bool
}

// Start brings the whole log up and returns once rekor-server answers. On
// failure everything already started is stopped again.
func Start(ctx context.Context, opts Options) (l *Log, err error) {
	tools, err := FindTools(opts.ToolsDir)
	if err != nil {
		return nil, err
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	l = &Log{Dir: opts.Dir, logf: opts.Logf}
	if l.logf == nil {
		l.logf = func(string, ...any) {}
	}
	if l.Dir == "" {
		if l.Dir, err = os.MkdirTemp("", "ocisign-rekor-"); err != nil {
			return nil, err
		}
		l.removeDir = true
	}
	defer func() {
		if err != nil {
			if stopErr := l.Stop(); stopErr != nil {
				err = fmt.Errorf("%w (and stopping: %v)", err, stopErr)
			}
			l = nil
		}
	}()
	if err := os.MkdirAll(filepath.Join(l.Dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	signerKey, err := l.writeSignerKey()
	if err != nil {
		return nil, err
	}
	// The Go binaries take their ports now; MariaDB and rekor-server later.
	ports, err := harness.FreePorts(4)
	if err != nil {
		return nil, err
	}
	dbPort, trillianRPC, signerRPC, rekorPort := ports[0], ports[1], ports[2], ports[3]

	dsn, err := l.startMariaDB(ctx, tools, dbPort)
	if err != nil {
		return nil, err
	}
	if _, err := l.start(ctx, "trillian_log_server", tools.TrillianServer,
		"--storage_system=mysql", "--mysql_uri="+dsn, "--quota_system=mysql",
		"--rpc_endpoint=127.0.0.1:"+strconv.Itoa(trillianRPC), "--http_endpoint=",
		"--logtostderr"); err != nil {
		return nil, err
	}
	if _, err := l.start(ctx, "trillian_log_signer", tools.TrillianSigner,
		"--storage_system=mysql", "--mysql_uri="+dsn, "--quota_system=mysql",
		"--rpc_endpoint=127.0.0.1:"+strconv.Itoa(signerRPC), "--http_endpoint=",
		"--force_master", "--sequencer_interval=200ms", "--logtostderr"); err != nil {
		return nil, err
	}
	if err := l.waitPort(ctx, "trillian_log_server", trillianRPC); err != nil {
		return nil, err
	}
	if err := l.waitPort(ctx, "trillian_log_signer", signerRPC); err != nil {
		return nil, err
	}
	if _, err := l.start(ctx, "rekor-server", tools.RekorServer, "serve",
		"--port", strconv.Itoa(rekorPort), "--rekor_server.address", "127.0.0.1",
		"--rekor_server.hostname", "127.0.0.1",
		"--trillian_log_server.address", "127.0.0.1", "--trillian_log_server.port", strconv.Itoa(trillianRPC),
		"--search_index.storage_provider=mysql", "--search_index.mysql.dsn="+dsn,
		"--rekor_server.signer", signerKey, "--log_type=prod"); err != nil {
		return nil, err
	}
	l.URL = "http://127.0.0.1:" + strconv.Itoa(rekorPort)
	if err := l.waitRekor(ctx); err != nil {
		return nil, err
	}
	l.logf("local Rekor ready at %s (dir %s)", l.URL, l.Dir)
	return l, nil
}

// writeSignerKey makes the log's ECDSA P-256 signing key, so the public key
// is known before start-up and does not change while the log runs.
func (l *Log) writeSignerKey() (string, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", err
	}
	keyPath := filepath.Join(l.Dir, "rekor-signer.pem")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return "", err
	}
	l.PublicKey = &k.PublicKey
	l.PublicKeyPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	l.PublicKeyFile = filepath.Join(l.Dir, "rekor.pub")
	return keyPath, os.WriteFile(l.PublicKeyFile, l.PublicKeyPEM, 0o644)
}

func (l *Log) startMariaDB(ctx context.Context, tools *Tools, port int) (dsn string, err error) {
	dataDir := filepath.Join(l.Dir, "db")
	socket := filepath.Join(l.Dir, "mysql.sock")
	install := exec.CommandContext(ctx, tools.MariaDBInstall, "--no-defaults", "--datadir="+dataDir, "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := install.CombinedOutput(); err != nil {
		return "", fmt.Errorf("mariadb-install-db: %v\n%s", err, tail(out))
	}
	if _, err := l.start(ctx, "mariadbd", tools.MariaDBd, "--no-defaults", "--datadir="+dataDir, "--user=root",
		"--port="+strconv.Itoa(port), "--bind-address=127.0.0.1", "--socket="+socket,
		"--pid-file="+filepath.Join(l.Dir, "mariadbd.pid"), "--skip-log-bin",
		"--innodb-flush-log-at-trx-commit=2", "--innodb-buffer-pool-size=64M", "--innodb-use-native-aio=0"); err != nil {
		return "", err
	}
	if err := l.waitPort(ctx, "mariadbd", port); err != nil {
		return "", err
	}
	password := randomHex(12)
	setup := fmt.Sprintf("CREATE DATABASE trillian; CREATE USER 'trillian'@'127.0.0.1' IDENTIFIED BY '%s'; "+
		"GRANT ALL ON trillian.* TO 'trillian'@'127.0.0.1'; FLUSH PRIVILEGES;", password)
	if err := l.sql(ctx, tools, socket, "", strings.NewReader(setup)); err != nil {
		return "", err
	}
	schema, err := os.Open(tools.TrillianSchema)
	if err != nil {
		return "", err
	}
	defer schema.Close()
	if err := l.sql(ctx, tools, socket, "trillian", schema); err != nil {
		return "", fmt.Errorf("loading the Trillian schema: %w", err)
	}
	return fmt.Sprintf("trillian:%s@tcp(127.0.0.1:%d)/trillian", password, port), nil
}

func (l *Log) sql(ctx context.Context, tools *Tools, socket, db string, script io.Reader) error {
	args := []string{"--no-defaults", "--socket=" + socket, "-uroot"}
	if db != "" {
		args = append(args, db)
	}
	cmd := exec.CommandContext(ctx, tools.MariaDBClient, args...)
	cmd.Stdin = script
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mariadb client: %v\n%s", err, tail(out))
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
