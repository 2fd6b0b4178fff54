// Package pgtest runs a throwaway PostgreSQL cluster from the Debian server
// binaries for tests and benchmarks: its own data directory in a temporary
// directory, on a free loopback port, never the system cluster. PostgreSQL
// refuses to run as root, so under root the cluster runs as an unprivileged
// user (BAY_PG_USER, default "nobody") that owns the temporary directory.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// ErrNoPostgres means no PostgreSQL server binaries were found.
var ErrNoPostgres = errors.New("no PostgreSQL server binaries (initdb, postgres): install Debian's postgresql package or set BAY_PG_BINDIR")

// BinDir returns the directory holding initdb and postgres: $BAY_PG_BINDIR,
// else the newest /usr/lib/postgresql/<version>/bin, else initdb's
// directory on PATH.
func BinDir() (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
				return false
			}
		}
		return true
	}
	if d := os.Getenv("BAY_PG_BINDIR"); d != "" {
		if has(d) {
			return d, nil
		}
		return "", fmt.Errorf("BAY_PG_BINDIR=%s: %w", d, ErrNoPostgres)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", ErrNoPostgres
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Server is a running throwaway cluster. Its superuser is "bay", trusted
// on loopback without a password.
type Server struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the postgres process's exit, once done is closed
	mu   sync.Mutex
	n    int
}

// Start initialises and starts a cluster. ctx bounds the start only.
func Start(ctx context.Context) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bay-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, done: make(chan struct{})}
	cred, err := credential(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "bay", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Env = append(os.Environ(), "TZ=UTC")
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	for attempt := 0; ; attempt++ {
		err := s.start(ctx, bin, data, cred)
		if err == nil {
			return s, nil
		}
		// Another process may have taken the free port in between: pick
		// another, a few times.
		if attempt == 3 || ctx.Err() != nil || !strings.Contains(err.Error(), "could not") {
			os.RemoveAll(dir)
			return nil, err
		}
		s.done = make(chan struct{})
	}
}

// credential makes dir usable by the user postgres will run as and returns
// that user's credential (nil: the current user, when not root).
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	name := os.Getenv("BAY_PG_USER")
	if name == "" {
		name = "nobody"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("postgres refuses to run as root and user %q is missing: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (s *Server) start(ctx context.Context, bin, data string, cred *syscall.Credential) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.port = port
	logPath := filepath.Join(s.dir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if cred != nil {
		_ = logf.Chown(int(cred.Uid), int(cred.Gid))
	}
	// Durability is irrelevant for a throwaway cluster; speed is not.
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port),
		"-k", s.dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=64MB")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig: a test binary that dies takes its cluster with it. The
	// signal fires when the forking OS thread ends, and Go ends threads a
	// locked goroutine leaves (namespace code does that), so the fork and
	// the wait run on one locked thread that lives as long as postgres.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(s.done)
			return
		}
		started <- nil
		s.err = cmd.Wait()
		close(s.done)
	}()
	err = <-started
	logf.Close()
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.cmd = cmd

	db, err := sql.Open("pgx", s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = db.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited: %v\n%s", s.err, log)
		case <-ctx.Done():
			s.Stop()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			s.Stop()
			return fmt.Errorf("postgres not ready after 60s: %v\n%s", err, log)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// DSN is the URL of database db on this cluster.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://bay@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// CreateDB creates a new, empty database and returns its DSN. An empty name
// picks a fresh one.
func (s *Server) CreateDB(ctx context.Context, name string) (string, error) {
	if name == "" {
		s.mu.Lock()
		s.n++
		name = fmt.Sprintf("bay_%d", s.n)
		s.mu.Unlock()
	}
	db, err := sql.Open("pgx", s.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.DSN(name), nil
}

// Stop shuts the cluster down (fast shutdown, then a kill after 10s) and
// removes its directory.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	}
	os.RemoveAll(s.dir)
}

// Shared is one cluster for a test binary, started on first use. Declare
// one per test package and stop it from TestMain:
//
//	var pg pgtest.Shared
//	func TestMain(m *testing.M) { code := m.Run(); pg.Stop(); os.Exit(code) }
type Shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// DB returns the DSN of a new, empty database for t, starting the cluster
// if needed. Without PostgreSQL binaries the test is skipped with the reason
// (failed under CI=true, where the install step must have provided them).
func (p *Shared) DB(t testing.TB) string {
	t.Helper()
	srv := p.Server(t)
	dsn, err := srv.CreateDB(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// Server returns the running shared cluster, as DB does.
func (p *Shared) Server(t testing.TB) *Server {
	t.Helper()
	p.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		p.srv, p.err = Start(ctx)
	})
	if errors.Is(p.err, ErrNoPostgres) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("prerequisite missing in CI: %v", p.err)
		}
		t.Skip(p.err.Error())
	}
	if p.err != nil {
		t.Fatalf("start postgres: %v", p.err)
	}
	return p.srv
}

// Stop stops the cluster if it was started.
func (p *Shared) Stop() {
	if p.srv != nil {
		p.srv.Stop()
	}
}
