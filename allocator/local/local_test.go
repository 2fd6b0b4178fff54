package local

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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/profiles"
)

var sessionSeq atomic.Int64

func testConfig(t *testing.T) Config {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		DataDir:      t.TempDir(),
		Binaries:     map[string]string{profiles.RuntimeShip: exe, profiles.RuntimeGull: exe},
		ExtraEnv:     map[string][]string{profiles.RuntimeShip: {fakeRuntimeEnv + "=1"}, profiles.RuntimeGull: {fakeRuntimeEnv + "=1"}},
		GracePeriod:  2 * time.Second,
		DestroyGrace: 200 * time.Millisecond,
		StartTimeout: 10 * time.Second,
		// Tests of the namespace set their own mount point (mountns_test.go).
		NoWorkspaceMount: true,
	}
}

func newAlloc(t *testing.T, cfg Config) *Allocator {
	t.Helper()
	a, err := New(cfg, hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func twoContainers(shipEnv, gullEnv map[string]string) *profiles.Profile {
	return &profiles.Profile{
		ID:      "browser-python",
		Restart: profiles.RestartPolicy{Attempts: 3, Delay: 20 * time.Millisecond},
		Containers: []profiles.Container{
			{Name: "ship", RuntimeType: profiles.RuntimeShip, Capabilities: []string{"python", "shell", "filesystem"}, Env: shipEnv},
			{Name: "gull", RuntimeType: profiles.RuntimeGull, Capabilities: []string{"browser"}, Env: gullEnv},
		},
	}
}

func startReq(t *testing.T, a *Allocator, p *profiles.Profile) allocator.StartRequest {
	t.Helper()
	n := sessionSeq.Add(1)
	cargo, err := a.CreateCargo(context.Background(), allocator.CargoSpec{ID: fmt.Sprintf("ws-%012d", n)})
	if err != nil {
		t.Fatal(err)
	}
	return allocator.StartRequest{
		SandboxID: fmt.Sprintf("sandbox-%012d", n),
		SessionID: fmt.Sprintf("sess-%012d", n),
		Owner:     "default",
		Profile:   p,
		Cargo:     cargo,
		Secret:    testSecret,
	}
}

// testSecret is the runtime secret of every test session.
const testSecret = "local-test-session-secret"

func mustStart(t *testing.T, a *Allocator, req allocator.StartRequest) *allocator.Session {
	t.Helper()
	s, err := a.Start(context.Background(), req)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return s
}

func getInfo(t *testing.T, url string) fakeInfo {
	t.Helper()
	resp, err := http.Get(url + "/info")
	if err != nil {
		t.Fatalf("GET %s/info: %v", url, err)
	}
	defer resp.Body.Close()
	var info fakeInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatalf("decode info: %v", err)
	}
	return info
}

func waitEvent(t *testing.T, a *Allocator, timeout time.Duration) allocator.Event {
	t.Helper()
	select {
	case ev, ok := <-a.Events():
		if !ok {
			t.Fatal("events channel closed")
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no event within %s", timeout)
	}
	return allocator.Event{}
}

func assertGone(t *testing.T, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		if pid <= 0 {
			t.Fatalf("bad pid %d", pid)
		}
		if !processGone(pid) {
			t.Errorf("process %d is still running", pid)
		}
	}
}

func assertAlive(t *testing.T, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		if processGone(pid) {
			t.Errorf("process %d is not running", pid)
		}
		// kill(pid, 0) agrees: it exists and we may signal it.
		if err := syscall.Kill(pid, 0); err != nil {
			t.Errorf("kill(%d, 0): %v", pid, err)
		}
	}
}

func recordFiles(t *testing.T, a *Allocator) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(recordsDir(a.cfg.DataDir), "*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestStartTwoContainersAndStop(t *testing.T) {
	a := newAlloc(t, testConfig(t))
	req := startReq(t, a, twoContainers(nil, map[string]string{"FAKE_GRANDCHILD": "1", "FAKE_DAEMON": "1"}))
	sess := mustStart(t, a, req)

	if sess.ID != req.SessionID || sess.SandboxID != req.SandboxID || len(sess.Endpoints) != 2 {
		t.Fatalf("session = %+v", sess)
	}
	var pids []int
	for _, name := range []string{"ship", "gull"} {
		ep := sess.Endpoints[name]
		if ep.Container != name || ep.RuntimeType != name || !strings.HasPrefix(ep.URL, "http://127.0.0.1:") {
			t.Fatalf("endpoint %s = %+v", name, ep)
		}
		got, err := a.Resolve(context.Background(), req.SessionID, name)
		if err != nil || got != ep {
			t.Fatalf("resolve %s = %+v, %v; want %+v", name, got, err, ep)
		}
		info := getInfo(t, ep.URL)
		if info.Env["BAY_CONTAINER_NAME"] != name {
			t.Fatalf("%s answered as %q", name, info.Env["BAY_CONTAINER_NAME"])
		}
		st, err := readProcStat(info.PID)
		if err != nil || st.pgrp != info.PID {
			t.Fatalf("%s: pgrp = %d (%v), want its own group %d", name, st.pgrp, err, info.PID)
		}
		if st.session != info.PID {
			t.Fatalf("%s: session = %d, want its own %d", name, st.session, info.PID)
		}
		pids = append(pids, info.PID)
		for _, d := range []int{info.Grandchild, info.Daemon} {
			if d != 0 {
				pids = append(pids, d)
			}
		}
	}
	if len(pids) != 4 {
		t.Fatalf("pids = %v, want two runtimes, a grandchild and a daemon", pids)
	}
	assertAlive(t, pids...)
	if sess.Endpoints["ship"].URL == sess.Endpoints["gull"].URL {
		t.Fatal("two containers share a port")
	}
	if _, err := a.Resolve(context.Background(), req.SessionID, "nope"); err == nil {
		t.Fatal("resolve of an unknown container succeeded")
	}
	list, _ := a.List(context.Background())
	if len(list) != 1 || list[0].SessionID != req.SessionID || list[0].CargoID != req.Cargo.ID || list[0].Profile != "browser-python" || list[0].Owner != "default" || len(list[0].Down) != 0 {
		t.Fatalf("list = %+v", list)
	}
	if n := len(recordFiles(t, a)); n != 1 {
		t.Fatalf("%d record files while running, want 1", n)
	}
	logData, err := os.ReadFile(filepath.Join(a.cfg.DataDir, "logs", req.SessionID, "gull.log"))
	if err != nil || !strings.Contains(string(logData), "fake: serving on") {
		t.Fatalf("gull log = %q, %v", logData, err)
	}

	if err := a.Stop(context.Background(), req.SessionID); err != nil {
		t.Fatal(err)
	}
	assertGone(t, pids...)
	if _, err := a.Resolve(context.Background(), req.SessionID, "ship"); !errors.Is(err, allocator.ErrSessionGone) {
		t.Fatalf("resolve after stop: %v", err)
	}
	if list, _ := a.List(context.Background()); len(list) != 0 {
		t.Fatalf("list after stop = %+v", list)
	}
	if f := recordFiles(t, a); len(f) != 0 {
		t.Fatalf("records left after stop: %v", f)
	}
	if err := a.Stop(context.Background(), req.SessionID); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if err := a.Destroy(context.Background(), "sess-unknown"); err != nil {
		t.Fatalf("destroy unknown: %v", err)
	}
	select {
	case ev := <-a.Events():
		t.Fatalf("deliberate stop sent an event: %+v", ev)
	case <-time.After(50 * time.Millisecond):
	}
}

func readPidFile(t *testing.T, dir, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "pid-"+name))
	if err != nil {
		t.Fatalf("pid file of %s: %v", name, err)
	}
	pid, _ := strconv.Atoi(string(b))
	return pid
}

func TestStartFailureRollsBack(t *testing.T) {
	cases := []struct {
		name    string
		gullEnv map[string]string
		want    []string
	}{
		{"exits at start", map[string]string{"FAKE_EXIT_AT_START": "3", "FAKE_WAIT_FOR": "${CARGO_PATH}/pid-ship"}, []string{`"gull"`, "exit status 3", "fake: failing on purpose at start"}},
		{"never healthy", map[string]string{"FAKE_NEVER_HEALTHY": "1", "FAKE_WAIT_FOR": "${CARGO_PATH}/pid-ship"}, []string{`"gull"`, "not healthy after"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.StartTimeout = 400 * time.Millisecond
			a := newAlloc(t, cfg)
			req := startReq(t, a, twoContainers(map[string]string{"FAKE_GRANDCHILD": "1"}, tc.gullEnv))
			_, err := a.Start(context.Background(), req)
			if !errors.Is(err, allocator.ErrStartFailed) {
				t.Fatalf("start error = %v, want ErrStartFailed", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			assertGone(t, readPidFile(t, req.Cargo.Locator, "ship"), readPidFile(t, req.Cargo.Locator, "gull"))
			if _, err := a.Resolve(context.Background(), req.SessionID, "ship"); !errors.Is(err, allocator.ErrSessionGone) {
				t.Fatalf("resolve after failed start: %v", err)
			}
			if f := recordFiles(t, a); len(f) != 0 {
				t.Fatalf("records left after failed start: %v", f)
			}
			// The session id is free again: the next call may try again.
			req.Profile = twoContainers(nil, nil)
			s := mustStart(t, a, req)
			getInfo(t, s.Endpoints["gull"].URL)
		})
	}
}

func TestStopWhileStarting(t *testing.T) {
	a := newAlloc(t, testConfig(t))
	req := startReq(t, a, twoContainers(nil, map[string]string{"FAKE_NEVER_HEALTHY": "1"}))
	done := make(chan error, 1)
	go func() {
		_, err := a.Start(context.Background(), req)
		done <- err
	}()
	pidFile := filepath.Join(req.Cargo.Locator, "pid-gull")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(pidFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("gull never started")
		}
	}
	if err := a.Stop(context.Background(), req.SessionID); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, allocator.ErrStartFailed) {
			t.Fatalf("start = %v, want ErrStartFailed", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("start did not return after stop")
	}
	assertGone(t, readPidFile(t, req.Cargo.Locator, "gull"))
}

func TestContainerCrashIsRestarted(t *testing.T) {
	a := newAlloc(t, testConfig(t))
	p := twoContainers(nil, map[string]string{"FAKE_DAEMON": "1"})
	// A delay long enough to observe the DEGRADED window deterministically.
	p.Restart = profiles.RestartPolicy{Attempts: 3, Delay: 300 * time.Millisecond}
	req := startReq(t, a, p)
	sess := mustStart(t, a, req)
	old := getInfo(t, sess.Endpoints["gull"].URL)

	killed := time.Now()
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, a, 2*time.Second)
	if ev.Kind != allocator.ContainerDown || ev.Container != "gull" || ev.SessionID != req.SessionID || ev.SandboxID != req.SandboxID {
		t.Fatalf("event = %+v, want container_down of gull", ev)
	}
	if !strings.Contains(ev.Reason, "killed") {
		t.Errorf("reason %q does not say how it died", ev.Reason)
	}
	t.Logf("container_down after %s", time.Since(killed))
	if _, err := a.Resolve(context.Background(), req.SessionID, "gull"); !errors.Is(err, allocator.ErrContainerDown) {
		t.Fatalf("resolve gull while down: %v", err)
	}
	list, _ := a.List(context.Background())
	if len(list) != 1 || len(list[0].Down) != 1 || list[0].Down[0] != "gull" {
		t.Fatalf("list while down = %+v", list)
	}
	// The other container keeps working.
	ship, err := a.Resolve(context.Background(), req.SessionID, "ship")
	if err != nil {
		t.Fatal(err)
	}
	getInfo(t, ship.URL)

	ev = waitEvent(t, a, 5*time.Second)
	if ev.Kind != allocator.ContainerUp || ev.Container != "gull" || ev.Endpoint == nil {
		t.Fatalf("event = %+v, want container_up of gull", ev)
	}
	if d := time.Since(killed); d < 300*time.Millisecond {
		t.Errorf("restarted after %s, before the 300ms delay", d)
	}
	assertGone(t, old.Daemon) // nothing of the crashed run survives it
	got, err := a.Resolve(context.Background(), req.SessionID, "gull")
	if err != nil || got != *ev.Endpoint {
		t.Fatalf("resolve after restart = %+v, %v; want %+v", got, err, *ev.Endpoint)
	}
	now := getInfo(t, got.URL)
	if now.PID == old.PID {
		t.Fatal("same process answered after restart")
	}
	if now.Env["BAY_SESSION_ID"] != req.SessionID {
		t.Fatalf("restarted process has session %q", now.Env["BAY_SESSION_ID"])
	}
	if list, _ := a.List(context.Background()); len(list) != 1 || len(list[0].Down) != 0 {
		t.Fatalf("list after restart = %+v", list)
	}
	logData, _ := os.ReadFile(filepath.Join(a.cfg.DataDir, "logs", req.SessionID, "gull.log"))
	if n := strings.Count(string(logData), "--- bay:"); n != 2 {
		t.Errorf("gull log has %d start markers, want 2 (restart appends)", n)
	}
}

func TestRestartsExhaustedEndsSession(t *testing.T) {
	a := newAlloc(t, testConfig(t))
	p := twoContainers(map[string]string{"FAKE_GRANDCHILD": "1"}, map[string]string{"FAKE_FAIL_IF_EXISTS": "${CARGO_PATH}/.fail"})
	p.Restart = profiles.RestartPolicy{Attempts: 2, Delay: 10 * time.Millisecond}
	req := startReq(t, a, p)
	req.Secret = "this-session-s-secret"
	sess := mustStart(t, a, req)
	ship := getInfo(t, sess.Endpoints["ship"].URL)
	gull := getInfo(t, sess.Endpoints["gull"].URL)

	if err := os.WriteFile(filepath.Join(req.Cargo.Locator, ".fail"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(gull.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, a, 2*time.Second)
	if ev.Kind != allocator.ContainerDown || ev.Container != "gull" {
		t.Fatalf("event = %+v, want container_down", ev)
	}
	ev = waitEvent(t, a, 5*time.Second)
	if ev.Kind != allocator.SessionGone || ev.SessionID != req.SessionID || ev.Container != "" {
		t.Fatalf("event = %+v, want session_gone", ev)
	}
	if !strings.Contains(ev.Reason, "restarts exhausted") || !strings.Contains(ev.Reason, "exit status 7") {
		t.Errorf("reason %q", ev.Reason)
	}
	assertGone(t, ship.PID, ship.Grandchild, readPidFile(t, req.Cargo.Locator, "gull"))
	if _, err := a.Resolve(context.Background(), req.SessionID, "ship"); !errors.Is(err, allocator.ErrSessionGone) {
		t.Fatalf("resolve after gone: %v", err)
	}
	if list, _ := a.List(context.Background()); len(list) != 0 {
		t.Fatalf("list after gone = %+v", list)
	}
	if f := recordFiles(t, a); len(f) != 0 {
		t.Fatalf("records left: %v", f)
	}
	// Next call cold-starts a fresh session on the same cargo.
	_ = os.Remove(filepath.Join(req.Cargo.Locator, ".fail"))
	req.SessionID += "-2"
	getInfo(t, mustStart(t, a, req).Endpoints["gull"].URL)
}

func TestStopKillsAfterGrace(t *testing.T) {
	cfg := testConfig(t)
	cfg.GracePeriod = 300 * time.Millisecond
	a := newAlloc(t, cfg)
	p := twoContainers(map[string]string{"FAKE_IGNORE_TERM": "1", "FAKE_GRANDCHILD": "1"}, nil)
	req := startReq(t, a, p)
	sess := mustStart(t, a, req)
	ship := getInfo(t, sess.Endpoints["ship"].URL)
	gull := getInfo(t, sess.Endpoints["gull"].URL)
	began := time.Now()
	if err := a.Stop(context.Background(), req.SessionID); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d < 300*time.Millisecond {
		t.Errorf("stop returned after %s, before the grace period", d)
	}
	assertGone(t, ship.PID, ship.Grandchild, gull.PID)
}

func TestCloseStopsEverything(t *testing.T) {
	a := newAlloc(t, testConfig(t))
	var pids []int
	for range 2 {
		sess := mustStart(t, a, startReq(t, a, twoContainers(nil, nil)))
		for _, ep := range sess.Endpoints {
			pids = append(pids, getInfo(t, ep.URL).PID)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, pids...)
	if _, ok := <-a.Events(); ok {
		t.Fatal("events channel still open after close")
	}
	if _, err := a.Start(context.Background(), startReq(t, a, twoContainers(nil, nil))); !errors.Is(err, allocator.ErrStartFailed) {
		t.Fatalf("start after close: %v", err)
	}
	if f := recordFiles(t, a); len(f) != 0 {
		t.Fatalf("records left: %v", f)
	}
}

// startOrphan runs a fake runtime the way a crashed gateway would have left
// it: its own process group, a grandchild, no allocator watching.
func startOrphan(t *testing.T, exe string, dir string, tag string) (*exec.Cmd, fakeInfo) {
	t.Helper()
	port := 0
	{
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	cmd := exec.Command(exe, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--workspace", dir)
	cmd.Env = append(os.Environ(), fakeRuntimeEnv+"=1", "FAKE_GRANDCHILD=1", "FAKE_DAEMON=1", "BAY_CONTAINER_NAME=orphan", tagEnv+"="+tag)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { _ = cmd.Wait(); close(reaped) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-reaped
		sweep(cmd.Process.Pid, tag)
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if resp, err := http.Get(url + "/health"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("orphan never became healthy")
		}
	}
	return cmd, getInfo(t, url)
}

func writeTestRecord(t *testing.T, dataDir string, rec record) {
	t.Helper()
	if err := os.MkdirAll(recordsDir(dataDir), 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(filepath.Join(recordsDir(dataDir), rec.SessionID+".json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestNewKillsLeftoversOfACrashedGateway(t *testing.T) {
	cfg := testConfig(t)
	exe := cfg.Binaries["ship"]
	work := t.TempDir()

	orphan, orphanInfo := startOrphan(t, exe, work, "test/crashed/ship/1")
	orphanTicks := mustStat(t, orphan.Process.Pid).startTicks

	// A process whose pid is recorded but which is not the recorded binary
	// (the pid was reused): it must survive.
	stranger := exec.Command("sleep", "600")
	stranger.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := stranger.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stranger.Process.Kill(); _ = stranger.Wait() })
	strangerTicks := mustStat(t, stranger.Process.Pid).startTicks

	// A runtime of a gateway that is still alive (this test process): untouched.
	live, liveInfo := startOrphan(t, exe, t.TempDir(), "test/live/ship/1")
	self, err := currentOwner()
	if err != nil {
		t.Fatal(err)
	}

	writeTestRecord(t, cfg.DataDir, record{SessionID: "sess-crashed", Owner: owner{PID: 0}, Procs: []recordProc{
		{Container: "ship", PID: orphan.Process.Pid, Binary: exe, StartTicks: orphanTicks, Tag: "test/crashed/ship/1"},
		{Container: "gull", PID: stranger.Process.Pid, Binary: exe, StartTicks: strangerTicks},
	}})
	writeTestRecord(t, cfg.DataDir, record{SessionID: "sess-live-owner", Owner: self, Procs: []recordProc{
		{Container: "ship", PID: live.Process.Pid, Binary: exe, StartTicks: mustStat(t, live.Process.Pid).startTicks, Tag: "test/live/ship/1"},
	}})

	a := newAlloc(t, cfg)
	assertGone(t, orphanInfo.PID, orphanInfo.Grandchild, orphanInfo.Daemon)
	assertAlive(t, stranger.Process.Pid, liveInfo.PID, liveInfo.Grandchild, liveInfo.Daemon)
	files := recordFiles(t, a)
	if len(files) != 1 || filepath.Base(files[0]) != "sess-live-owner.json" {
		t.Fatalf("records after cleanup = %v", files)
	}
}

func mustStat(t *testing.T, pid int) procStat {
	t.Helper()
	st, err := readProcStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestLeftoverSessionWithoutLeader(t *testing.T) {
	cfg := testConfig(t)
	exe := cfg.Binaries["ship"]
	orphan, info := startOrphan(t, exe, t.TempDir(), "test/leaderless/ship/1")
	ticks := mustStat(t, orphan.Process.Pid).startTicks
	// The runtime died (parent-death signal) but its descendants live on:
	// one in its session, one daemonised out of it.
	if err := syscall.Kill(orphan.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for !processGone(orphan.Process.Pid) {
		time.Sleep(5 * time.Millisecond)
	}
	assertAlive(t, info.Grandchild, info.Daemon)
	writeTestRecord(t, cfg.DataDir, record{SessionID: "sess-x", Procs: []recordProc{{Container: "ship", PID: orphan.Process.Pid, Binary: exe, StartTicks: ticks, Tag: "test/leaderless/ship/1"}}})
	newAlloc(t, cfg)
	assertGone(t, info.Grandchild, info.Daemon)
}

func TestCargo(t *testing.T) {
	a := newAlloc(t, testConfig(t))
	ctx := context.Background()
	c, err := a.CreateCargo(ctx, allocator.CargoSpec{ID: "ws-0123456789ab"})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(a.cfg.DataDir, "cargos", "ws-0123456789ab")
	if c.ID != "ws-0123456789ab" || c.Backend != "local_dir" || c.Locator != want {
		t.Fatalf("cargo = %+v", c)
	}
	if err := os.WriteFile(filepath.Join(want, "keep.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := a.CreateCargo(ctx, allocator.CargoSpec{ID: "ws-0123456789ab"})
	if err != nil || again != c {
		t.Fatalf("second create = %+v, %v", again, err)
	}
	if _, err := os.Stat(filepath.Join(want, "keep.txt")); err != nil {
		t.Fatal("second create lost data")
	}
	for _, bad := range []string{"", ".", "..", "a/b", "../x"} {
		if _, err := a.CreateCargo(ctx, allocator.CargoSpec{ID: bad}); err == nil {
			t.Errorf("create %q succeeded", bad)
		}
	}

	req := startReq(t, a, twoContainers(nil, nil))
	req.Cargo = c
	mustStart(t, a, req)
	if err := a.DeleteCargo(ctx, c); !errors.Is(err, allocator.ErrCargoInUse) {
		t.Fatalf("delete in use = %v", err)
	}
	if err := a.DeleteCargo(ctx, allocator.Cargo{ID: c.ID}); !errors.Is(err, allocator.ErrCargoInUse) {
		t.Fatalf("delete in use by id = %v", err)
	}
	if _, err := os.Stat(want); err != nil {
		t.Fatal("refused delete removed the cargo")
	}
	if err := a.Stop(ctx, req.SessionID); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteCargo(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(want); !os.IsNotExist(err) {
		t.Fatalf("cargo dir still there: %v", err)
	}
	if err := a.DeleteCargo(ctx, c); err != nil {
		t.Fatalf("delete missing: %v", err)
	}
	outside := t.TempDir()
	if err := a.DeleteCargo(ctx, allocator.Cargo{ID: "x", Locator: outside}); err == nil {
		t.Fatal("deleted a directory outside the cargos dir")
	}
	if err := a.DeleteCargo(ctx, allocator.Cargo{ID: "x", Locator: filepath.Join(a.cfg.DataDir, "cargos")}); err == nil {
		t.Fatal("deleted the cargos dir itself")
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatal("outside dir removed")
	}
}

func TestContainerEnvironment(t *testing.T) {
	t.Setenv("BAY_API_KEY", "gateway-secret")
	t.Setenv("NOMAD_TOKEN", "gateway-secret")
	t.Setenv("BAY_TEST_INHERITED", "yes")
	t.Setenv("PORT", "1")
	t.Setenv(allocator.SecretEnv, "the-gateway-s-own")
	cfg := testConfig(t)
	cfg.ExtraEnv["ship"] = append(cfg.ExtraEnv["ship"], "BAY_PYTHON=/usr/bin/python3", "SHARED=extra")
	a := newAlloc(t, cfg)
	p := twoContainers(map[string]string{"SHARED": "container", "WHERE": "${CARGO_PATH}/x", "BAY_SESSION_ID": "spoofed", allocator.SecretEnv: "spoofed"}, nil)
	p.Env = map[string]string{"SHARED": "profile", "WHO": "${SANDBOX_ID}/${SESSION_ID}/${CONTAINER_NAME}/${UNKNOWN}"}
	req := startReq(t, a, p)
	sess := mustStart(t, a, req)
	ship := getInfo(t, sess.Endpoints["ship"].URL)
	gull := getInfo(t, sess.Endpoints["gull"].URL)
	port := strings.TrimPrefix(sess.Endpoints["ship"].URL, "http://127.0.0.1:")
	want := map[string]string{
		"BAY_SANDBOX_ID":     req.SandboxID,
		"BAY_SESSION_ID":     req.SessionID,
		"BAY_CONTAINER_NAME": "ship",
		"BAY_WORKSPACE_PATH": req.Cargo.Locator,
		"PORT":               port,
		"BAY_PYTHON":         "/usr/bin/python3",
		"SHARED":             "container",
		"WHERE":              req.Cargo.Locator + "/x",
		"WHO":                req.SandboxID + "/" + req.SessionID + "/ship/${UNKNOWN}",
		"BAY_TEST_INHERITED": "yes",
		allocator.SecretEnv:  req.Secret,
	}
	for k, v := range want {
		if ship.Env[k] != v {
			t.Errorf("ship %s = %q, want %q", k, ship.Env[k], v)
		}
	}
	for _, k := range []string{"BAY_API_KEY", "NOMAD_TOKEN"} {
		if _, ok := ship.Env[k]; ok {
			t.Errorf("gateway secret %s leaked into the container", k)
		}
	}
	if gull.Env["BAY_CONTAINER_NAME"] != "gull" || gull.Env["SHARED"] != "profile" || gull.Env["WHO"] != req.SandboxID+"/"+req.SessionID+"/gull/${UNKNOWN}" {
		t.Errorf("gull env: name=%q shared=%q who=%q", gull.Env["BAY_CONTAINER_NAME"], gull.Env["SHARED"], gull.Env["WHO"])
	}
	if gull.Env[allocator.SecretEnv] != req.Secret {
		t.Errorf("gull's secret = %q, want the session's", gull.Env[allocator.SecretEnv])
	}
	if _, ok := gull.Env["BAY_PYTHON"]; ok {
		t.Error("ship's extra env reached gull")
	}
	wantArgs := []string{"--host", "127.0.0.1", "--port", port, "--workspace", req.Cargo.Locator}
	if strings.Join(ship.Args[1:], " ") != strings.Join(wantArgs, " ") {
		t.Errorf("args = %q, want %q", ship.Args[1:], wantArgs)
	}
	if ship.Cwd != req.Cargo.Locator {
		t.Errorf("cwd = %q", ship.Cwd)
	}
}

func TestPortTakenIsRetried(t *testing.T) {
	a := newAlloc(t, testConfig(t))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	req := startReq(t, a, twoContainers(nil, nil))
	s, err := a.newSession(req)
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.launch(context.Background(), s, s.conts[0], taken, true)
	if err != nil {
		t.Fatalf("launch with a taken port: %v", err)
	}
	if p.port == taken {
		t.Fatal("child claims the taken port")
	}
	if info := getInfo(t, fmt.Sprintf("http://127.0.0.1:%d", p.port)); info.PID != p.pid {
		t.Fatalf("pid %d answered, want %d", info.PID, p.pid)
	}
	a.terminate(context.Background(), p, time.Second)
	assertGone(t, p.pid)
}

func TestMissingBinaryFailsStart(t *testing.T) {
	cfg := testConfig(t)
	cfg.Binaries["gull"] = filepath.Join(t.TempDir(), "no-such-gull")
	a := newAlloc(t, cfg)
	req := startReq(t, a, twoContainers(nil, nil))
	_, err := a.Start(context.Background(), req)
	if !errors.Is(err, allocator.ErrStartFailed) || !strings.Contains(err.Error(), "no-such-gull") {
		t.Fatalf("start = %v", err)
	}
	delete(cfg.Binaries, "gull")
	b := newAlloc(t, cfg)
	if _, err := b.Start(context.Background(), startReq(t, b, twoContainers(nil, nil))); !errors.Is(err, allocator.ErrStartFailed) || !strings.Contains(err.Error(), `runtime type "gull"`) {
		t.Fatalf("start without a gull binary = %v", err)
	}
}
