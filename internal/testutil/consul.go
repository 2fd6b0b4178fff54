package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ConsulBinary returns the consul agent binary: $BAY_BIN_DIR/consul, the
// repository's bin/consul (`make consul` builds it from tools/consul), or
// consul on PATH. Without one the test is skipped (failed under CI).
func ConsulBinary(t testing.TB) string {
	t.Helper()
	var candidates []string
	if dir := os.Getenv("BAY_BIN_DIR"); dir != "" {
		candidates = append(candidates, filepath.Join(dir, "consul"))
	}
	candidates = append(candidates, filepath.Join(RepoRoot(t), "bin", "consul"))
	for _, p := range candidates {
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath("consul"); err == nil {
		return p
	}
	need(t, "no consul binary in bin/ or on PATH (make consul)")
	return ""
}

// ConsulAgent is a `consul agent -dev` of the test's own, on free loopback
// ports, stopped when the test ends.
type ConsulAgent struct {
	t     testing.TB
	bin   string
	ports consulPorts

	mu  sync.Mutex
	cmd *exec.Cmd
	out *syncBuffer
}

// syncBuffer is a bytes.Buffer safe to write from exec's copying goroutines
// while a test reads it.
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

type consulPorts struct{ http, dns, serfLAN, serfWAN, server, grpc, grpcTLS int }

// StartConsul starts a dev agent and waits until it has a leader.
func StartConsul(t testing.TB) *ConsulAgent {
	t.Helper()
	a := &ConsulAgent{t: t, bin: ConsulBinary(t)}
	t.Cleanup(a.Stop)
	// A port found free may be taken before the agent binds it (other
	// tests, Docker publishing ports): try again on new ones.
	var err error
	for range 3 {
		a.ports = consulPorts{
			http: FreePort(t), dns: FreePort(t), serfLAN: FreePort(t), serfWAN: FreePort(t),
			server: FreePort(t), grpc: FreePort(t), grpcTLS: FreePort(t),
		}
		if err = a.start(); err == nil {
			return a
		}
		t.Logf("consul agent did not start, trying other ports: %v", err)
	}
	t.Fatal(err)
	return nil
}

// Addr is the agent's HTTP address, host:port.
func (a *ConsulAgent) Addr() string { return "127.0.0.1:" + strconv.Itoa(a.ports.http) }

// Start (re)starts the agent on its ports with an empty state (a dev agent
// keeps everything in memory, so its index starts over).
func (a *ConsulAgent) Start() {
	a.t.Helper()
	if err := a.start(); err != nil {
		a.t.Fatal(err)
	}
}

func (a *ConsulAgent) start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd != nil {
		return errors.New("consul agent already running")
	}
	p := a.ports
	cmd := exec.Command(a.bin, "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-log-level", "warn", "-node", "bay-test",
		"-http-port", strconv.Itoa(p.http), "-dns-port", strconv.Itoa(p.dns),
		"-serf-lan-port", strconv.Itoa(p.serfLAN), "-serf-wan-port", strconv.Itoa(p.serfWAN),
		"-server-port", strconv.Itoa(p.server), "-grpc-port", strconv.Itoa(p.grpc),
		"-grpc-tls-port", strconv.Itoa(p.grpcTLS))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start consul: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	if err := a.waitLeader(exited, out); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		return err
	}
	a.cmd, a.out = cmd, out
	return nil
}

func (a *ConsulAgent) waitLeader(exited <-chan struct{}, out *syncBuffer) error {
	deadline := time.Now().Add(60 * time.Second)
	url := "http://" + a.Addr() + "/v1/status/leader"
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("consul agent exited during start:\n%s", out.String())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			// The answer is a JSON string: "" until a leader is elected.
			if resp.StatusCode == http.StatusOK && len(bytes.Trim(bytes.TrimSpace(b.Bytes()), `"`)) > 0 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("consul agent at %s has no leader after 60s:\n%s", a.Addr(), out.String())
}

// Stop kills the agent (the whole process group) and waits for its HTTP
// port to close. Stopping a stopped agent does nothing.
func (a *ConsulAgent) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil {
		return
	}
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := http.Get("http://" + a.Addr() + "/v1/status/leader"); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.cmd = nil
}

// Output is what the agent has logged so far (for failure messages).
func (a *ConsulAgent) Output() string {
	a.mu.Lock()
	out := a.out
	a.mu.Unlock()
	if out == nil {
		return ""
	}
	return out.String()
}
