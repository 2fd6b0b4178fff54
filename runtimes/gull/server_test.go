package gull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/hashicorp/go-hclog"
)

// fakeCLI stands in for agent-browser in unit tests. It strips the injected
// --session/--profile, then acts on the first word; FAKE_* variables tell it
// where to report.
const fakeCLI = `#!/bin/sh
if [ "$1" = "--version" ]; then echo "agent-browser 9.9.9"; exit 0; fi
if [ -n "$FAKE_ARGV" ]; then for a in "$@"; do printf '%s\n' "$a"; done > "$FAKE_ARGV"; fi
while [ $# -gt 0 ]; do case "$1" in --session|--profile) shift 2;; *) break;; esac; done
cmd="$1"; shift
case "$cmd" in
  echo) printf '%s\n' "$*";;
  pwd) pwd;;
  fail) echo "boom: $*" >&2; exit 3;;
  sleep) sleep "$1"; echo "slept $1";;
  tree) sleep 30 & echo $! > "$FAKE_CHILD"; wait;;
  excl) mkdir "$FAKE_LOCK" 2>/dev/null || { echo overlap >&2; exit 9; }; sleep "$1"; rmdir "$FAKE_LOCK";;
  env) env | grep '^AGENT_BROWSER_' | sort;;
  close) echo closed >> "$FAKE_CLOSED"; [ -f "$FAKE_PIDFILE" ] && kill "$(cat "$FAKE_PIDFILE")"; exit 0;;
  *) echo "unknown command: $cmd" >&2; exit 1;;
esac
`

// fixtureSecret is the session secret every fixture's Gull requires.
const fixtureSecret = "gull-unit-secret"

type fixture struct {
	t      *testing.T
	srv    *Server
	client *Client
	base   string
	ws     string
	sock   string // AGENT_BROWSER_SOCKET_DIR
	tmp    string
	stop   func() error
}

// newFixture starts a Gull on a loopback listener with the fake CLI (or cli,
// when given) and stops it at cleanup.
func newFixture(t *testing.T, cli string, extraEnv ...string) *fixture {
	t.Helper()
	tmp := t.TempDir()
	ws := filepath.Join(tmp, "ws")
	sock := filepath.Join(tmp, "sock")
	for _, d := range []string{ws, sock} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if cli == "" {
		cli = filepath.Join(tmp, "agent-browser")
		if err := os.WriteFile(cli, []byte(fakeCLI), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + tmp,
		"AGENT_BROWSER_SOCKET_DIR=" + sock,
		"FAKE_PIDFILE=" + filepath.Join(sock, "unit.pid"),
		"FAKE_CLOSED=" + filepath.Join(tmp, "closed"),
		"AGENT_BROWSER_EXECUTABLE_PATH=" + cli, // exists: no "degraded" from a missing browser
	}, extraEnv...)
	srv, err := NewServer(Config{Workspace: ws, AgentBrowser: cli, Session: "unit", Env: env, ShutdownTimeout: 10 * time.Second, Secret: fixtureSecret}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(20 * time.Second):
				stopErr = errors.New("Serve did not return")
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	base := "http://" + ln.Addr().String()
	return &fixture{t: t, srv: srv, client: NewClient(base, wire.WithSecret(nil, fixtureSecret)), base: base, ws: ws, sock: sock, tmp: tmp, stop: stop}
}

func (f *fixture) exec(cmd string, timeout int) ExecResponse {
	f.t.Helper()
	res, err := f.client.Exec(context.Background(), ExecRequest{Cmd: cmd, Timeout: timeout})
	if err != nil {
		f.t.Fatalf("exec %q: %v", cmd, err)
	}
	return res
}

func TestExecPassesWordsSessionProfileAndWorkspace(t *testing.T) {
	argv := filepath.Join(t.TempDir(), "argv")
	f := newFixture(t, "", "FAKE_ARGV="+argv)

	res := f.exec(`echo @e1 "hello world" 'it''s' #id`, 0)
	if res.ExitCode != 0 || res.Stdout != "@e1 hello world its #id\n" {
		t.Fatalf("echo = %+v", res)
	}
	b, err := os.ReadFile(argv)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	want := []string{"--session", "unit", "--profile", filepath.Join(f.ws, ".browser", "profile"), "echo", "@e1", "hello world", "its", "#id"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("argv = %q, want %q", got, want)
	}
	if st, err := os.Stat(filepath.Join(f.ws, ".browser", "profile")); err != nil || !st.IsDir() {
		t.Fatalf("profile dir not created: %v", err)
	}

	if res := f.exec("pwd", 0); strings.TrimSpace(res.Stdout) != f.ws {
		t.Fatalf("cwd = %q, want workspace %q", res.Stdout, f.ws)
	}
	res = f.exec("env", 0)
	for _, want := range []string{"AGENT_BROWSER_SCREENSHOT_DIR=" + f.ws, "AGENT_BROWSER_DOWNLOAD_PATH=" + f.ws, "AGENT_BROWSER_SOCKET_DIR=" + f.sock, "AGENT_BROWSER_ARGS=--no-sandbox,"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("CLI env lacks %q:\n%s", want, res.Stdout)
		}
	}

	res = f.exec("fail one two", 0)
	if res.ExitCode != 3 || res.Stderr != "boom: one two\n" {
		t.Fatalf("fail = %+v, want exit 3 with stderr", res)
	}
}

func TestExecValidation(t *testing.T) {
	f := newFixture(t, "")
	cases := []struct{ name, body, field string }{
		{"empty cmd", `{"cmd":""}`, "cmd"},
		{"blank cmd", `{"cmd":"  \t "}`, "cmd"},
		{"missing cmd", `{}`, "cmd"},
		{"unbalanced double quote", `{"cmd":"fill @e1 \"hello"}`, "cmd"},
		{"unbalanced single quote", `{"cmd":"fill @e1 'hello"}`, "cmd"},
		{"trailing backslash", `{"cmd":"get title \\"}`, "cmd"},
		{"only the program name", `{"cmd":"agent-browser"}`, "cmd"},
		{"timeout zero", `{"cmd":"get title","timeout":0}`, "timeout"},
		{"timeout too big", `{"cmd":"get title","timeout":301}`, "timeout"},
		{"timeout fraction", `{"cmd":"get title","timeout":1.5}`, "timeout"},
		{"bad json", `{"cmd":`, ""},
		{"wrong type", `{"cmd":42}`, ""},
		{"no body", ``, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, eb := postRaw(t, f.base+"/exec", tc.body)
			if status != http.StatusBadRequest || eb.Error.Code != wire.CodeValidation {
				t.Fatalf("status %d body %+v, want 400 validation_error", status, eb)
			}
			if tc.field != "" && eb.Error.Details["field"] != tc.field {
				t.Fatalf("details = %v, want field %q", eb.Error.Details, tc.field)
			}
		})
	}
	batch := []struct{ name, body string }{
		{"no commands", `{"commands":[]}`},
		{"missing commands", `{}`},
		{"empty step", `{"commands":["get title",""]}`},
		{"unbalanced step", `{"commands":["get title","fill @e1 \"x"]}`},
		{"timeout too big", `{"commands":["get title"],"timeout":601}`},
		{"timeout negative", `{"commands":["get title"],"timeout":-1}`},
	}
	for _, tc := range batch {
		t.Run("batch "+tc.name, func(t *testing.T) {
			status, eb := postRaw(t, f.base+"/exec_batch", tc.body)
			if status != http.StatusBadRequest || eb.Error.Code != wire.CodeValidation {
				t.Fatalf("status %d body %+v, want 400 validation_error", status, eb)
			}
		})
	}
	// A batch timeout above the exec maximum is fine.
	if status, eb := postRaw(t, f.base+"/exec_batch", `{"commands":["echo ok"],"timeout":600}`); status != 200 {
		t.Fatalf("batch timeout 600: %d %+v", status, eb)
	}
	// Unknown routes answer in the envelope too.
	if status, eb := postRaw(t, f.base+"/nope", `{}`); status != 404 || eb.Error.Code != "not_found" {
		t.Fatalf("unknown route: %d %+v", status, eb)
	}
	// The client surfaces a 400 as *wire.Error.
	_, err := f.client.Exec(context.Background(), ExecRequest{Cmd: `fill "x`})
	if we, ok := wire.AsError(err); !ok || we.Status != 400 || we.Code != wire.CodeValidation {
		t.Fatalf("client error = %v, want *wire.Error 400", err)
	}
}

func postRaw(t *testing.T, url, body string) (int, wire.ErrorBody) {
	t.Helper()
	resp, err := wire.WithSecret(http.DefaultClient, fixtureSecret).Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb wire.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	return resp.StatusCode, eb
}

func TestExecTimeoutKillsProcessTree(t *testing.T) {
	child := filepath.Join(t.TempDir(), "child")
	f := newFixture(t, "", "FAKE_CHILD="+child)
	start := time.Now()
	res := f.exec("tree", 1)
	if res.ExitCode != -1 || !strings.Contains(res.Stderr, "timed out after 1s") {
		t.Fatalf("tree = %+v, want exit -1 and a timeout message", res)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	b, err := os.ReadFile(child)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 {
		t.Fatalf("bad child pid %q", b)
	}
	if !waitGone(context.Background(), pid, 3*time.Second) {
		t.Fatalf("grandchild %d survived the timeout", pid)
	}
	// The session is usable again right away.
	if res := f.exec("echo again", 5); res.ExitCode != 0 || res.Stdout != "again\n" {
		t.Fatalf("after timeout: %+v", res)
	}
}

func TestCommandsAreSerialisedAndHealthStaysResponsive(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "lock")
	f := newFixture(t, "", "FAKE_LOCK="+lock)
	var wg sync.WaitGroup
	results := make([]ExecResponse, 3)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = f.exec("excl 0.4", 30)
		}()
	}
	time.Sleep(100 * time.Millisecond) // let a command start
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		h, err := f.client.Health(ctx)
		cancel()
		if err != nil || h.Status != StatusHealthy {
			t.Fatalf("health while a command runs: %+v, %v", h, err)
		}
	}
	wg.Wait()
	for i, r := range results {
		if r.ExitCode != 0 {
			t.Errorf("command %d overlapped another: %+v", i, r)
		}
	}
}

func TestQueuedCommandTimesOutWhileWaiting(t *testing.T) {
	f := newFixture(t, "")
	done := make(chan ExecResponse)
	go func() { done <- f.exec("sleep 2", 10) }()
	time.Sleep(200 * time.Millisecond)
	res := f.exec("echo queued", 1)
	if res.ExitCode != -1 || !strings.Contains(res.Stderr, "waiting for the previous command") {
		t.Fatalf("queued = %+v", res)
	}
	if r := <-done; r.ExitCode != 0 || r.Stdout != "slept 2\n" {
		t.Fatalf("first = %+v", r)
	}
}

func TestBatch(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	noStop := false

	res, err := f.client.ExecBatch(ctx, BatchRequest{Commands: []string{"echo one", "fail two", "echo three"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.TotalSteps != 3 || res.CompletedSteps != 2 || res.Success || len(res.Results) != 2 {
		t.Fatalf("stop on error: %+v", res)
	}
	if r := res.Results[1]; r.StepIndex != 1 || r.Cmd != "fail two" || r.ExitCode != 3 || r.Stderr != "boom: two\n" {
		t.Fatalf("failing step: %+v", r)
	}

	res, err = f.client.ExecBatch(ctx, BatchRequest{Commands: []string{"echo one", "fail two", "echo three"}, StopOnError: &noStop})
	if err != nil {
		t.Fatal(err)
	}
	if res.CompletedSteps != 3 || res.Success || res.Results[2].Stdout != "three\n" || res.Results[2].StepIndex != 2 {
		t.Fatalf("continue on error: %+v", res)
	}

	res, err = f.client.ExecBatch(ctx, BatchRequest{Commands: []string{"echo a", "echo b"}})
	if err != nil || !res.Success || res.CompletedSteps != 2 || res.Results[1].Stdout != "b\n" {
		t.Fatalf("all ok: %+v %v", res, err)
	}

	// One budget for all steps: the second step eats it, the third never runs,
	// even with stop_on_error=false.
	start := time.Now()
	res, err = f.client.ExecBatch(ctx, BatchRequest{Commands: []string{"sleep 0.3", "sleep 10", "echo never"}, Timeout: 1, StopOnError: &noStop})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("budget not enforced: batch took %v", d)
	}
	if res.Success || res.CompletedSteps != 2 || len(res.Results) != 2 || res.Results[1].ExitCode != -1 {
		t.Fatalf("budget: %+v", res)
	}
	if res.Results[0].DurationMS < 250 || res.DurationMS < res.Results[0].DurationMS+res.Results[1].DurationMS-5 {
		t.Fatalf("durations do not add up: %+v", res)
	}
}

func TestMissingCLI(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "no-such-agent-browser"))
	h, err := f.client.Health(context.Background())
	we, ok := wire.AsError(err)
	if !ok || we.Status != http.StatusServiceUnavailable || h.Status != StatusUnhealthy || !strings.Contains(we.Message, "agent-browser") {
		t.Fatalf("health = %+v, %v; want unhealthy 503 naming the CLI", h, err)
	}
	_, err = f.client.Exec(context.Background(), ExecRequest{Cmd: "get title"})
	if we, ok := wire.AsError(err); !ok || we.Status != http.StatusServiceUnavailable || we.Code != wire.CodeUnavailable || !strings.Contains(we.Message, "not available") {
		t.Fatalf("exec without CLI = %v, want 503 unavailable", err)
	}
	_, err = f.client.ExecBatch(context.Background(), BatchRequest{Commands: []string{"get title"}})
	if we, ok := wire.AsError(err); !ok || we.Status != http.StatusServiceUnavailable {
		t.Fatalf("batch without CLI = %v, want 503", err)
	}
	m, err := f.client.Meta(context.Background())
	if err != nil || m.Runtime.Name != "gull" {
		t.Fatalf("meta without CLI = %+v, %v", m, err)
	}
}

func TestHealthAndMeta(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	h, err := f.client.Health(ctx)
	if err != nil || h.Status != StatusHealthy || h.Version == "" || h.Session != "unit" {
		t.Fatalf("health = %+v, %v", h, err)
	}
	if h.BrowserActive == nil || *h.BrowserActive || h.BrowserReady == nil || *h.BrowserReady {
		t.Fatalf("no daemon yet, but health = active %v ready %v", h.BrowserActive, h.BrowserReady)
	}

	// A live daemon: a pid file naming a running process and a socket.
	daemon := startDaemonStandIn(t, f.sock)
	h, _ = f.client.Health(ctx)
	if !*h.BrowserActive || *h.BrowserReady {
		t.Fatalf("pid alive without socket: active %v ready %v", *h.BrowserActive, *h.BrowserReady)
	}
	ln, err := net.Listen("unix", filepath.Join(f.sock, "unit.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	h, _ = f.client.Health(ctx)
	if !*h.BrowserActive || !*h.BrowserReady {
		t.Fatalf("pid alive with socket: active %v ready %v", *h.BrowserActive, *h.BrowserReady)
	}
	_ = daemon.Process.Kill()
	_ = daemon.Wait()
	h, _ = f.client.Health(ctx)
	if *h.BrowserActive {
		t.Fatal("dead daemon reported active")
	}

	m, err := f.client.Meta(ctx)
	if err != nil {
		t.Fatal(err)
	}
	browser, _ := m.Capabilities["browser"].(map[string]any)
	if m.Runtime.Name != "gull" || m.Runtime.APIVersion != "v1" || m.Runtime.Version == "" || m.Workspace.MountPath != f.ws || browser["cli_version"] != "9.9.9" {
		t.Fatalf("meta = %+v", m)
	}
}

func TestDegradedWhenBrowserMissing(t *testing.T) {
	f := newFixture(t, "", "AGENT_BROWSER_EXECUTABLE_PATH=/nonexistent/chromium")
	h, err := f.client.Health(context.Background())
	if err != nil || h.Status != StatusDegraded {
		t.Fatalf("health = %+v, %v; want degraded with 200", h, err)
	}
}

// startDaemonStandIn runs a sleeping process and writes its pid where the
// session's daemon pid file would be.
func startDaemonStandIn(t *testing.T, sockDir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := os.WriteFile(filepath.Join(sockDir, "unit.pid"), []byte(fmt.Sprint(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func TestShutdownClosesBrowser(t *testing.T) {
	f := newFixture(t, "")
	closed := filepath.Join(f.tmp, "closed") // the fake's close writes here and kills the stand-in
	daemon := startDaemonStandIn(t, f.sock)
	exited := make(chan struct{})
	go func() { _ = daemon.Wait(); close(exited) }()

	// A long command is running when the signal comes: it is killed, then
	// the browser is closed, and Serve returns nil.
	execDone := make(chan ExecResponse, 1)
	go func() {
		res, _ := f.client.Exec(context.Background(), ExecRequest{Cmd: "sleep 30", Timeout: 60})
		execDone <- res
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := f.stop(); err != nil {
		t.Fatalf("Serve returned %v, want nil", err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	if b, err := os.ReadFile(closed); err != nil || strings.Count(string(b), "closed") != 1 {
		t.Fatalf("close ran %q times (%v), want once", b, err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("daemon stand-in still running after shutdown")
	}
	select {
	case res := <-execDone:
		if res.ExitCode != -1 || !strings.Contains(res.Stderr, "shutting down") {
			t.Fatalf("running command at shutdown = %+v", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("running command not answered at shutdown")
	}
}

func TestStaleProfileLocksRemoved(t *testing.T) {
	ws := t.TempDir()
	profile := filepath.Join(ws, ".browser", "profile")
	if err := os.MkdirAll(profile, 0o700); err != nil {
		t.Fatal(err)
	}
	// What a SIGKILLed Chromium leaves: dangling symlinks naming host-pid.
	for _, n := range []string{"SingletonLock", "SingletonSocket", "SingletonCookie"} {
		if err := os.Symlink("otherhost-12345", filepath.Join(profile, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(profile, "Cookies"), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := NewServer(Config{Workspace: ws, AgentBrowser: "/bin/true", Env: []string{"AGENT_BROWSER_SOCKET_DIR=" + t.TempDir()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(profile)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "Cookies" {
		t.Fatalf("profile holds %v, want only Cookies", names)
	}
}

func TestNewServerRejectsBadConfig(t *testing.T) {
	if _, err := NewServer(Config{Workspace: filepath.Join(t.TempDir(), "missing")}, nil); err == nil {
		t.Error("missing workspace accepted")
	}
	if _, err := NewServer(Config{Workspace: t.TempDir(), Session: "my session"}, nil); err == nil {
		t.Error("session with a space accepted")
	}
	if _, err := NewServer(Config{}, nil); err == nil {
		t.Error("empty workspace accepted")
	}
}

// TestSessionSecret: without the session's secret (or with another one)
// every route but /health answers 401 and runs nothing.
func TestSessionSecret(t *testing.T) {
	argv := filepath.Join(t.TempDir(), "argv")
	f := newFixture(t, "", "FAKE_ARGV="+argv)
	ctx := context.Background()
	for name, hc := range map[string]*http.Client{
		"no secret":    nil,
		"wrong secret": wire.WithSecret(nil, fixtureSecret+"-other"),
	} {
		c := NewClient(f.base, hc)
		if h, err := c.Health(ctx); err != nil || h.Status == "" {
			t.Fatalf("%s: /health = %+v, %v; want an answer without the secret", name, h, err)
		}
		_, err := c.Exec(ctx, ExecRequest{Cmd: "echo pwned"})
		if we, ok := wire.AsError(err); !ok || we.Status != http.StatusUnauthorized || we.Code != wire.CodeUnauthorized {
			t.Fatalf("%s: exec = %v, want 401", name, err)
		}
		_, err = c.ExecBatch(ctx, BatchRequest{Commands: []string{"echo pwned"}})
		if we, ok := wire.AsError(err); !ok || we.Status != http.StatusUnauthorized {
			t.Fatalf("%s: batch = %v, want 401", name, err)
		}
		if _, err := c.Meta(ctx); err == nil {
			t.Fatalf("%s: /meta answered without the secret", name)
		}
	}
	if _, err := os.Stat(argv); err == nil {
		t.Fatal("a refused call ran the CLI")
	}
	if res := f.exec("echo ok", 0); res.ExitCode != 0 {
		t.Fatalf("with the secret: %+v", res)
	}
}
