// Package e2e runs the real gateway binary, which starts real ship and gull
// processes (real Python, real Chromium), and talks to it over HTTP only.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/internal/testutil"
)

const testKey = "e2e-secret-key"

// gateway is a running bay serve.
type gateway struct {
	t       *testing.T
	url     string
	dataDir string
	cmd     *exec.Cmd
	logs    *syncBuffer
	cfgPath string // set by startGateway, for restarts on the same data
	port    int
}

// startGateway runs bay serve with config (HCL appended to the basics).
func startGateway(t *testing.T, extraHCL string) *gateway {
	t.Helper()
	ship := testutil.Binary(t, "ship")
	gull := testutil.Binary(t, "gull")
	py := testutil.DebianPython(t)
	dir := t.TempDir()
	port := testutil.FreePort(t)
	cfg := fmt.Sprintf(`
data_dir = %q
port = %d
auth { api_keys = [%q] }
gc { enabled = false }
runtimes {
  ship = %q
  gull = %q
  python = %q
  agent_browser = %q
}
local { grace_period = "3s" }
%s
`, filepath.Join(dir, "data"), port, testKey, ship, gull, py, testutil.AgentBrowser(t), extraHCL)
	cfgPath := filepath.Join(dir, "bay.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	g := runBay(t, cfgPath, filepath.Join(dir, "data"), port)
	g.cfgPath = cfgPath
	g.port = port
	return g
}

// runBay starts bay serve with a config file (plus env overrides) and waits
// for /health.
func runBay(t *testing.T, cfgPath, dataDir string, port int, env ...string) *gateway {
	t.Helper()
	bay := testutil.Binary(t, "bay")
	g := &gateway{t: t, url: fmt.Sprintf("http://127.0.0.1:%d", port), dataDir: dataDir, logs: &syncBuffer{}}
	g.cmd = exec.Command(bay, "serve", "--config", cfgPath)
	g.cmd.Env = testutil.Env(append(testutil.BrowserEnv(), env...)...)
	g.cmd.Stdout = g.logs
	g.cmd.Stderr = g.logs
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start bay: %v", err)
	}
	t.Cleanup(func() {
		g.stop()
		if t.Failed() {
			t.Logf("gateway logs:\n%s", g.logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(g.url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return g
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("gateway did not become healthy:\n%s", g.logs.String())
	return nil
}

func (g *gateway) stop() {
	if g.cmd.Process == nil || g.cmd.ProcessState != nil {
		return
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// response is a decoded reply.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
	return m
}

// errCode returns error.code of an error envelope, checking its shape.
func (r response) errCode(t *testing.T) string {
	t.Helper()
	m := r.json(t)
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("not an error envelope: %s", r.Body)
	}
	if e["request_id"] == "" || e["request_id"] == nil || e["message"] == "" {
		t.Fatalf("envelope lacks request_id/message: %s", r.Body)
	}
	return e["code"].(string)
}

type reqOpt func(*http.Request)

func withOwner(o string) reqOpt { return func(r *http.Request) { r.Header.Set("X-Owner", o) } }
func withoutAuth() reqOpt       { return func(r *http.Request) { r.Header.Del("Authorization") } }
func withHeader(k, v string) reqOpt {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

func (g *gateway) do(method, path string, body any, opts ...reqOpt) response {
	g.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, g.url+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// must asserts the status and returns the JSON body.
func (g *gateway) must(status int, method, path string, body any, opts ...reqOpt) map[string]any {
	g.t.Helper()
	r := g.do(method, path, body, opts...)
	if r.Status != status {
		g.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, status, r.Body)
	}
	if len(r.Body) == 0 {
		return nil
	}
	return r.json(g.t)
}

// waitStatus polls a sandbox until it has the wanted status.
func (g *gateway) waitStatus(id, want string, within time.Duration) map[string]any {
	g.t.Helper()
	deadline := time.Now().Add(within)
	var last map[string]any
	for time.Now().Before(deadline) {
		last = g.must(200, "GET", "/v1/sandboxes/"+id, nil)
		if last["status"] == want {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.t.Fatalf("sandbox %s: status %v after %s, want %s", id, last["status"], within, want)
	return nil
}

// sandboxPIDs finds every process (any binary: runtimes, Python kernels,
// shells, browsers) whose environment names the sandbox.
func sandboxPIDs(t *testing.T, sandboxID string) []int {
	return runtimePIDs(t, sandboxID, "")
}

// runtimePIDs finds the processes of a sandbox's runtime binary (ship or
// gull) through their BAY_SANDBOX_ID environment variable.
func runtimePIDs(t *testing.T, sandboxID, runtime string) []int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || (runtime != "" && filepath.Base(exe) != runtime) {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		if bytes.Contains(env, []byte("BAY_SANDBOX_ID="+sandboxID+"\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// syncBuffer collects a process's output: os/exec writes it from its own
// goroutines while tests read it, so every access holds the lock.
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
