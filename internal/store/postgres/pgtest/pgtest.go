// Package pgtest gives tests a PostgreSQL server: the one named by the
// POSTBACK_TEST_POSTGRES environment variable (a DSN), or else a throwaway
// cluster started from the installed PostgreSQL binaries in a temporary
// directory, once per test binary, and stopped when its tests end. Each test
// gets databases of its own (Server.Database), and a Proxy can cut a store
// off from the server without stopping it.
//
// A package that uses it stops the server from its TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// When no server can be found or started, tests that ask for one fail under
// CI=true and are skipped, loudly, elsewhere.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// EnvDSN names the environment variable that points the tests at a running
// server: a DSN of a role that may create databases.
const EnvDSN = "POSTBACK_TEST_POSTGRES"

// howToRun tells a developer how to get the PostgreSQL suites to run.
const howToRun = "install PostgreSQL (Debian: apt-get install -y postgresql) so that initdb and pg_ctl " +
	"are in /usr/lib/postgresql/*/bin or on PATH, or set " + EnvDSN + " to the DSN of a server where the role may create databases"

// Server is a PostgreSQL server for tests.
type Server struct {
	// dsn reaches the server's administrative database.
	dsn string
	// dir holds a throwaway cluster ("" for a server given by EnvDSN);
	// stop runs its pg_ctl stop.
	dir     string
	stop    func() error
	restart func() error
}

var (
	once    sync.Once
	started *Server
	failed  error
	skipped sync.Once
)

// Main runs a package's tests, stops the throwaway server if one was
// started, and exits with the tests' status.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the throwaway server, if one was started; a TestMain that does
// more than Main calls it after the tests.
func Stop() {
	if started != nil && started.stop != nil {
		if err := started.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stopping the throwaway PostgreSQL server: %v\n", err)
		}
	}
}

// Restart stops the server and starts it again, as an operator's restart
// (or a failover) does to every connection. Only a throwaway server can be
// restarted; with one given by EnvDSN the test is skipped.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.restart == nil {
		t.Skipf("pgtest: the server given by %s is not the test's to restart", EnvDSN)
	}
	if err := s.restart(); err != nil {
		t.Fatalf("pgtest: restarting the server: %v", err)
	}
	if err := waitReady(s.dsn, 60*time.Second); err != nil {
		t.Fatalf("pgtest: the restarted server does not answer: %v", err)
	}
}

// Start returns the test server, starting a throwaway one on first use.
// Without a server it fails t under CI=true and skips it otherwise.
func Start(t testing.TB) *Server {
	t.Helper()
	once.Do(func() { started, failed = start() })
	if failed == nil {
		return started
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("pgtest: no PostgreSQL server for the tests: %v\nCI must run them: %s", failed, howToRun)
	}
	skipped.Do(func() {
		fmt.Fprintf(os.Stderr, "\n!!! pgtest: THE POSTGRESQL SUITES WERE SKIPPED: %v\n!!! To run them, %s.\n\n", failed, howToRun)
	})
	t.Skipf("PostgreSQL suites skipped: no server (%v); to run them, %s", failed, howToRun)
	return nil
}

// DSN returns the DSN of the server's administrative database.
func (s *Server) DSN() string { return s.dsn }

// Database creates an empty database and returns its DSN; it is dropped
// when t ends (after the cleanups registered later, such as closing the
// stores that use it).
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "pgtest_" + hex.EncodeToString(b[:])
	if err := s.admin(fmt.Sprintf("CREATE DATABASE %s", name)); err != nil {
		t.Fatalf("pgtest: creating a database: %v", err)
	}
	t.Cleanup(func() {
		if err := s.admin(fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(s.dsn, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// admin runs one statement on the administrative database.
func (s *Server) admin(statement string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, statement)
	return err
}

// start finds the server named by EnvDSN or starts a throwaway one.
func start() (*Server, error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		s := &Server{dsn: dsn}
		if err := waitReady(dsn, 10*time.Second); err != nil {
			return nil, fmt.Errorf("%s is set but the server does not answer: %w", EnvDSN, err)
		}
		return s, nil
	}
	return startThrowaway()
}

// binDir returns the directory of the newest installed initdb and pg_ctl.
func binDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("initdb not found in /usr/lib/postgresql/*/bin or on PATH")
}

// version reads the major version from /usr/lib/postgresql/<version>/bin/initdb.
func version(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// startThrowaway initialises a cluster in a temporary directory and starts
// it on a free loopback port, with its socket in that directory. As root,
// the binaries run as the postgres user, which owns the directory (initdb
// refuses to run as root).
func startThrowaway() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "postback-pgtest-")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Server, error) {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	var prefix []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fail(fmt.Errorf("running as root needs the postgres user to run initdb: %w", err))
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(err)
		}
		prefix = []string{"runuser", "-u", "postgres", "--"}
	}
	run := func(name string, args ...string) error {
		argv := append(append(append([]string(nil), prefix...), filepath.Join(bin, name)), args...)
		cmd := exec.Command(argv[0], argv[1:]...)
		// The postgres user may not read the test's directory.
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", name, err, out)
		}
		return nil
	}
	data := filepath.Join(dir, "data")
	if err := run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		return fail(err)
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=300", port, dir)
	if err := run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		return fail(err)
	}
	s := &Server{
		dsn: fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", port),
		dir: dir,
	}
	s.restart = func() error {
		return run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "server.log"), "-m", "fast", "-w", "-t", "60", "-o", opts, "restart")
	}
	s.stop = func() error {
		err := run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
		if rmErr := os.RemoveAll(dir); err == nil {
			err = rmErr
		}
		return err
	}
	if err := waitReady(s.dsn, 30*time.Second); err != nil {
		_ = s.stop()
		return nil, err
	}
	return s, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady waits until the server answers a query.
func waitReady(dsn string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// withDatabase returns dsn with another database.
func withDatabase(dsn, database string) (string, error) {
	return rewrite(dsn, func(u *url.URL) { u.Path = "/" + database }, "dbname="+database)
}

// withAddress returns dsn with another TCP host and port.
func withAddress(dsn, host string, port int) (string, error) {
	return rewrite(dsn, func(u *url.URL) {
		u.Host = net.JoinHostPort(host, strconv.Itoa(port))
		q := u.Query()
		q.Del("host")
		q.Del("port")
		u.RawQuery = q.Encode()
	}, fmt.Sprintf("host=%s port=%d", host, port))
}

// rewrite changes a URL DSN with edit, or appends settings to a
// keyword/value DSN (a later keyword wins).
func rewrite(dsn string, edit func(*url.URL), settings string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", errors.New("the DSN is not a valid URL")
		}
		edit(u)
		return u.String(), nil
	}
	return strings.TrimSpace(dsn) + " " + settings, nil
}

// target returns the network and address the DSN's server listens on.
func target(dsn string) (network, address string, err error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "", "", errors.New("the DSN cannot be parsed")
	}
	if strings.HasPrefix(cfg.Host, "/") {
		return "unix", filepath.Join(cfg.Host, fmt.Sprintf(".s.PGSQL.%d", cfg.Port)), nil
	}
	return "tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), nil
}
