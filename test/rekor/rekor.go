// Package rekor runs a real Rekor v1 transparency log on loopback for tests:
// MariaDB (Debian) + Trillian log server and signer + rekor-server, each on a
// free 127.0.0.1 port in a temporary directory, following
// ../shared/docs/rekor-local.md. The binaries come from
// test/tools/build-rekor.sh (test/rekor/install.sh installs everything).
package rekor

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

// proc is one child process; done closes when it has exited.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

func (l *Log) start(ctx context.Context, name, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(l.Dir, "logs", name+".log")
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child keeps its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Dir = l.Dir
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group (so a stop reaches any children), and die with the
	// test binary if it is killed before Stop runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	l.logf("started %s (pid %d)", name, cmd.Process.Pid)
	return p, nil
}

// PIDs lists the child process IDs, in start order.
func (l *Log) PIDs() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var pids []int
	for _, p := range l.procs {
		pids = append(pids, p.cmd.Process.Pid)
	}
	return pids
}

// exited reports a child that died during start-up, with its log's tail.
func (l *Log) exited() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.procs {
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.logPath)
			return fmt.Errorf("%s exited during start-up (%v); %s ends with:\n%s", p.name, p.err, p.logPath, tail(b))
		default:
		}
	}
	return nil
}

func (l *Log) waitPort(ctx context.Context, name string, port int) error {
	return l.poll(ctx, name, func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

func (l *Log) waitRekor(ctx context.Context) error {
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) ([]byte, bool) {
		resp, err := client.Get(l.URL + path)
		if err != nil {
			return nil, false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return b, resp.StatusCode == http.StatusOK
	}
	if err := l.poll(ctx, "rekor-server", func() bool { _, ok := get("/api/v1/log"); return ok }); err != nil {
		return err
	}
	served, ok := get("/api/v1/log/publicKey")
	if !ok {
		return errors.New("rekor-server answers but GET /api/v1/log/publicKey fails")
	}
	if !bytes.Equal(bytes.TrimSpace(served), bytes.TrimSpace(l.PublicKeyPEM)) {
		return fmt.Errorf("rekor-server serves a public key other than the signer key it was given:\n%s", served)
	}
	return nil
}

func (l *Log) poll(ctx context.Context, name string, ready func() bool) error {
	for {
		if ready() {
			return nil
		}
		if err := l.exited(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (logs in %s)", name, ctx.Err(), filepath.Join(l.Dir, "logs"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop ends rekor-server, then the Trillian servers, then MariaDB (stopping
// MariaDB first leaves Trillian hanging on SIGTERM), each with SIGTERM and,
// after a grace period, SIGKILL to its process group. It waits for every
// process and removes the temporary directory. Calling it again is a no-op.
func (l *Log) Stop() error {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return nil
	}
	l.stopped = true
	procs := append([]*proc(nil), l.procs...)
	l.mu.Unlock()

	// Reverse start order: rekor-server, the two Trillian servers together
	// (they shut down slowly and hold nothing worth a clean exit), MariaDB.
	var groups [][]*proc
	for i := len(procs) - 1; i >= 0; i-- {
		n := len(groups)
		if n > 0 && strings.HasPrefix(procs[i].name, "trillian") && strings.HasPrefix(groups[n-1][0].name, "trillian") {
			groups[n-1] = append(groups[n-1], procs[i])
			continue
		}
		groups = append(groups, []*proc{procs[i]})
	}
	var errs []error
	for _, g := range groups {
		var wg sync.WaitGroup
		gErrs := make([]error, len(g))
		for i, p := range g {
			wg.Add(1)
			go func() {
				defer wg.Done()
				gErrs[i] = stopProc(p, stopGrace(p.name))
				l.logf("stopped %s", p.name)
			}()
		}
		wg.Wait()
		errs = append(errs, gErrs...)
	}
	if l.removeDir && len(errs) == 0 {
		if err := os.RemoveAll(l.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stopGrace is how long a process gets after SIGTERM: MariaDB flushes its
// files, the others only need to close connections.
func stopGrace(name string) time.Duration {
	if name == "mariadbd" {
		return 20 * time.Second
	}
	return 3 * time.Second
}

func stopProc(p *proc, grace time.Duration) error {
	pgid := p.cmd.Process.Pid
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			select {
			case <-p.done:
			case <-time.After(grace):
				return fmt.Errorf("%s (pid %d) survived SIGKILL", p.name, pgid)
			}
		}
	}
	// Whatever else is left in its group (nothing, normally).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func tail(b []byte) string {
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
