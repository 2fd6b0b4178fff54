package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func newLauncher(t *testing.T, cfg Config) *Launcher {
	t.Helper()
	l, err := New(cfg)
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("no sandbox on this host: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func startSession(t *testing.T, l *Launcher, network string) *Session {
	t.Helper()
	dir, err := os.MkdirTemp("", "bay-sbx-test-")
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	s, err := l.StartSession(context.Background(), SessionSpec{ID: filepath.Base(dir), Dir: dir, Network: network, Log: &log})
	if err != nil {
		t.Fatalf("start session: %v\n%s", err, log.String())
	}
	t.Cleanup(s.Close)
	return s
}

func workspace(t *testing.T, l *Launcher) string {
	ws := t.TempDir()
	uid, gid := l.HostIDs()
	if err := os.Chown(ws, uid, gid); err != nil {
		t.Fatal(err)
	}
	// t.TempDir's parents are 0700 root: let the host uid through.
	for d := filepath.Dir(ws); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
	return ws
}

// run runs script with sh in a container of s and returns its output.
func run(t *testing.T, s *Session, name, ws, script string, lim Limits) (string, error) {
	t.Helper()
	c, err := s.Container(ContainerSpec{Name: name, Workspace: ws, Path: "/bin/sh", Args: []string{"-c", script}, Env: []string{"PATH=/usr/bin:/bin"}, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	var out bytes.Buffer
	c.Cmd.Stdout, c.Cmd.Stderr = &out, &out
	err = c.Cmd.Run()
	return out.String(), err
}

func TestSandboxIdentityAndFilesystem(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := newLauncher(t, Config{})
	s := startSession(t, l, NetworkNone)
	ws := workspace(t, l)
	out, err := run(t, s, "ship", ws, `
echo "user=$(whoami) uid=$(id -u) home=$HOME pwd=$(pwd)"
touch /etc/bay-test 2>/dev/null && echo "etc=writable" || echo "etc=readonly"
echo hi > /workspace/f && echo "ws=writable"
touch /tmp/t && echo "tmp=writable"
test -e `+secret+` && echo "secret=visible" || echo "secret=hidden"
echo "procs=$(ls /proc | grep -c '^[0-9]')"
grep -E '^(CapEff|NoNewPrivs)' /proc/self/status | tr -s '\t' ' '
`, Limits{})
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, want := range []string{"user=shipyard uid=1000 home=/workspace pwd=/workspace", "etc=readonly", "ws=writable", "tmp=writable", "secret=hidden", "CapEff: 0000000000000000", "NoNewPrivs: 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	var procs int
	if _, err := fmt.Sscanf(out[strings.Index(out, "procs="):], "procs=%d", &procs); err != nil || procs > 10 {
		t.Errorf("sandbox sees host processes (%d):\n%s", procs, out)
	}
	fi, err := os.Stat(filepath.Join(ws, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if uid, _ := l.HostIDs(); int(fi.Sys().(*syscall.Stat_t).Uid) != uid {
		t.Errorf("file written in the sandbox is owned by host uid %d, want %d", fi.Sys().(*syscall.Stat_t).Uid, uid)
	}
	if _, err := os.Stat("/etc/bay-test"); err == nil {
		t.Fatal("sandbox created /etc/bay-test on the host")
	}
}

func TestSandboxSharedLoopback(t *testing.T) {
	l := newLauncher(t, Config{})
	s := startSession(t, l, NetworkNone)
	ws := workspace(t, l)
	srv, err := s.Container(ContainerSpec{Name: "srv", Workspace: ws, Path: "/usr/bin/python3",
		Args: []string{"-m", "http.server", "--bind", "127.0.0.1", "8123"}, Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Release()
	if err := os.WriteFile(filepath.Join(ws, "hello.txt"), []byte("hello from ship"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := srv.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Cmd.Process.Kill(); _ = srv.Cmd.Wait() }()
	script := `for i in $(seq 50); do python3 -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8123/hello.txt').read().decode())" 2>/dev/null && exit 0; sleep 0.1; done; exit 1`
	out, err := run(t, s, "cli", ws, script, Limits{})
	if err != nil || !strings.Contains(out, "hello from ship") {
		t.Fatalf("second container cannot reach the first on loopback: %v: %s", err, out)
	}
	// The host's loopback does not have it.
	other := startSession(t, l, NetworkNone)
	out, err = run(t, other, "cli", ws, `python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8123/hello.txt', timeout=2)"`, Limits{})
	if err == nil {
		t.Fatalf("another session reached this session's loopback: %s", out)
	}
}

func TestSandboxMemoryLimit(t *testing.T) {
	l := newLauncher(t, Config{})
	if !l.Cgroups() {
		t.Skip("cgroup v1 controllers not writable here (not root?): memory is bounded by rlimits only")
	}
	s := startSession(t, l, NetworkNone)
	ws := workspace(t, l)
	c, err := s.Container(ContainerSpec{Name: "mem", Workspace: ws, Path: "/usr/bin/python3",
		Args: []string{"-c", "b = bytearray(3 << 30); print('allocated')"}, Env: []string{"PATH=/usr/bin:/bin"}, Limits: Limits{MemoryBytes: 256 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	var out bytes.Buffer
	c.Cmd.Stdout, c.Cmd.Stderr = &out, &out
	start := time.Now()
	err = c.Cmd.Run()
	if err == nil || strings.Contains(out.String(), "allocated") {
		t.Fatalf("3 GiB allocation succeeded under a 256 MB limit: %s", out.String())
	}
	if c.OOMKilled() == 0 {
		t.Errorf("no OOM kill counted (%v after %s): %s", err, time.Since(start), out.String())
	}
}

func TestSandboxPidsLimit(t *testing.T) {
	l := newLauncher(t, Config{})
	s := startSession(t, l, NetworkNone)
	ws := workspace(t, l)
	out, _ := run(t, s, "fork", ws, `python3 -c '
import os, time
n = 0
for i in range(200):
    try:
        if os.fork() == 0:
            time.sleep(3); os._exit(0)
        n += 1
    except OSError:
        break
print("started=%d" % n)
'`, Limits{Pids: 50})
	if !strings.Contains(out, "started=") || strings.Contains(out, "started=200") {
		t.Fatalf("200 processes started under a 50-process limit: %s", out)
	}
}

// syncBuffer is a bytes.Buffer safe for the several copiers (holder,
// slirp4netns) writing a session log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
