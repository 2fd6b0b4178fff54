package nomad

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/jobspecs"
	"github.com/bay-sandbox/bay/profiles"
)

// fakeProfile is a ship + gull profile whose containers are the fake runtime.
func fakeProfile() *profiles.Profile {
	return &profiles.Profile{
		ID: "fake-browser",
		Containers: []profiles.Container{
			{Name: "ship", RuntimeType: profiles.RuntimeShip, RuntimePort: profiles.DefaultShipPort,
				Capabilities: []string{profiles.CapPython, profiles.CapShell, profiles.CapFilesystem}},
			{Name: "gull", RuntimeType: profiles.RuntimeGull, RuntimePort: profiles.DefaultGullPort,
				Capabilities: []string{profiles.CapBrowser}},
		},
	}
}

// fakeConfig runs the test binary as both runtimes with native discovery.
func fakeConfig(addr, instance string) Config {
	self, _ := os.Executable()
	env := map[string]string{fakeRuntimeEnv: "1"}
	return Config{
		Address:   addr,
		Discovery: DiscoveryNomad,
		Job: jobspecs.Options{
			InstanceID:  instance,
			Binaries:    map[string]string{"ship": self, "gull": self},
			RuntimeEnv:  map[string]map[string]string{"ship": env, "gull": env},
			KillTimeout: 2 * time.Second,
		},
		StartTimeout: 45 * time.Second,
		StopTimeout:  20 * time.Second,
	}
}

func newAllocator(t *testing.T, cfg Config) *Allocator {
	t.Helper()
	a, err := New(cfg, hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Info, Output: testWriter{t}}))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func getInfo(t *testing.T, url string) fakeInfo {
	t.Helper()
	resp, err := http.Get(url + "/info")
	if err != nil {
		t.Fatalf("GET %s/info: %v", url, err)
	}
	defer resp.Body.Close()
	var fi fakeInfo
	if err := json.NewDecoder(resp.Body).Decode(&fi); err != nil {
		t.Fatalf("decode info: %v", err)
	}
	return fi
}

func health(url string) error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url + "/health")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// nextEvent waits for an event of kind for the session, failing on others
// of the session that are not expected.
func nextEvent(t *testing.T, a *Allocator, kind allocator.EventKind, sessionID string, within time.Duration) allocator.Event {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-a.Events():
			if !ok {
				t.Fatal("events channel closed")
			}
			if ev.SessionID != sessionID {
				continue
			}
			if ev.Kind == kind {
				return ev
			}
			t.Logf("skipping event %s %s: %s", ev.Kind, ev.Container, ev.Reason)
		case <-timer.C:
			t.Fatalf("no %s event for %s within %s", kind, sessionID, within)
		}
	}
}

func jobExists(t *testing.T, c *api.Client, jobID string) bool {
	t.Helper()
	_, _, err := c.Jobs().Info(jobID, nil)
	if err == nil {
		return true
	}
	if isNotFound(err) {
		return false
	}
	t.Fatalf("read job %s: %v", jobID, err)
	return false
}

func taskRestarts(t *testing.T, c *api.Client, jobID, task string) uint64 {
	t.Helper()
	allocs, _, err := c.Jobs().Allocations(jobID, false, nil)
	if err != nil || len(allocs) == 0 {
		t.Fatalf("allocations of %s: %v (%d)", jobID, err, len(allocs))
	}
	ts := allocs[0].TaskStates[task]
	if ts == nil {
		t.Fatalf("no task state for %s", task)
	}
	return ts.Restarts
}

func TestNomadSessionLifecycle(t *testing.T) {
	addr := nomadAgent(t)
	ctx := ctxT(t, 4*time.Minute)
	a := newAllocator(t, fakeConfig(addr, "gw-test"))

	cargo, err := a.CreateCargo(ctx, allocator.CargoSpec{ID: "c1", Ready: true})
	if err != nil {
		t.Fatalf("CreateCargo: %v", err)
	}
	if cargo.Backend != BackendHostVolume {
		t.Fatalf("backend = %q", cargo.Backend)
	}
	ref, err := parseLocator(cargo.Locator)
	if err != nil || ref.HostPath == "" || ref.Name != "bay-cargo-c1" {
		t.Fatalf("locator %q: %+v %v", cargo.Locator, ref, err)
	}
	// Creating it again returns the same volume.
	again, err := a.CreateCargo(ctx, allocator.CargoSpec{ID: "c1", Ready: true})
	if err != nil || again.Locator != cargo.Locator {
		t.Fatalf("second CreateCargo = %+v, %v; want the same locator", again, err)
	}

	started := time.Now()
	sess, err := a.Start(ctx, allocator.StartRequest{SandboxID: "sb1", SessionID: "se1", Owner: "alice", Profile: fakeProfile(), Cargo: cargo})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("cold start took %s", time.Since(started))
	jobID := jobspecs.JobID("sb1", "se1")
	ship, gull := sess.Endpoints["ship"], sess.Endpoints["gull"]
	if ship.RuntimeType != "ship" || gull.RuntimeType != "gull" {
		t.Fatalf("endpoints = %+v", sess.Endpoints)
	}
	for _, ep := range []allocator.Endpoint{ship, gull} {
		if err := health(ep.URL); err != nil {
			t.Fatalf("%s /health at %s: %v", ep.Container, ep.URL, err)
		}
	}
	// Gull reaches Ship over the group's shared network namespace.
	resp, err := http.Get(gull.URL + "/fetch?url=" + fmt.Sprintf("http://127.0.0.1:%d/health", profiles.DefaultShipPort))
	if err != nil {
		t.Fatalf("gull fetch: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "healthy") {
		t.Fatalf("gull -> ship on 127.0.0.1: %d %s", resp.StatusCode, body)
	}
	// Both see the cargo: a file Gull writes is on the volume's host path.
	if fi := getInfo(t, gull.URL); fi.Workspace != ref.HostPath {
		t.Fatalf("gull workspace = %q, want the volume's host path %q", fi.Workspace, ref.HostPath)
	}
	if r, err := http.Get(gull.URL + "/write?name=shot.png"); err != nil || r.StatusCode != 200 {
		t.Fatalf("gull write: %v %v", r, err)
	}
	if b, err := os.ReadFile(filepath.Join(ref.HostPath, "shot.png")); err != nil || string(b) != "gull" {
		t.Fatalf("file in cargo: %q %v", b, err)
	}
	// The cargo cannot be deleted while the session claims it.
	if err := a.DeleteCargo(ctx, cargo); !errors.Is(err, allocator.ErrCargoInUse) {
		t.Fatalf("DeleteCargo while claimed = %v, want ErrCargoInUse", err)
	}

	shipPID := getInfo(t, ship.URL).PID
	gullPID := getInfo(t, gull.URL).PID

	// Kill Gull's process: ContainerDown within 2 s, Ship keeps serving.
	killed := time.Now()
	if err := syscall.Kill(gullPID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill gull: %v", err)
	}
	down := nextEvent(t, a, allocator.ContainerDown, "se1", 5*time.Second)
	took := time.Since(killed)
	t.Logf("container down noticed after %s: %s", took, down.Reason)
	if down.Container != "gull" || down.SandboxID != "sb1" {
		t.Fatalf("down event = %+v", down)
	}
	if took > 2*time.Second {
		t.Errorf("ContainerDown after %s, want <= 2s", took)
	}
	if _, err := a.Resolve(ctx, "se1", "gull"); !errors.Is(err, allocator.ErrContainerDown) {
		t.Fatalf("Resolve(gull) while down = %v, want ErrContainerDown", err)
	}
	if ep, err := a.Resolve(ctx, "se1", "ship"); err != nil || health(ep.URL) != nil {
		t.Fatalf("Resolve(ship) while gull down = %+v, %v", ep, err)
	}
	infos, err := a.List(ctx)
	if err != nil || len(infos) != 1 || len(infos[0].Down) != 1 || infos[0].Down[0] != "gull" {
		t.Fatalf("List while degraded = %+v, %v", infos, err)
	}

	up := nextEvent(t, a, allocator.ContainerUp, "se1", 30*time.Second)
	if up.Container != "gull" || up.Endpoint == nil || health(up.Endpoint.URL) != nil {
		t.Fatalf("up event = %+v", up)
	}
	t.Logf("container up after %s", time.Since(killed))
	if ep, err := a.Resolve(ctx, "se1", "gull"); err != nil || health(ep.URL) != nil {
		t.Fatalf("Resolve(gull) after heal = %+v, %v", ep, err)
	}
	if getInfo(t, ship.URL).PID != shipPID || taskRestarts(t, a.Client(), jobID, "ship") != 0 {
		t.Fatal("ship was restarted while gull recovered")
	}
	if taskRestarts(t, a.Client(), jobID, "gull") != 1 {
		t.Fatal("gull was not restarted exactly once")
	}

	// A new allocator (gateway restart) adopts the session without
	// restarting anything.
	b := newAllocator(t, fakeConfig(addr, "gw-test"))
	infos, err = b.List(ctx)
	if err != nil || len(infos) != 1 {
		t.Fatalf("List after restart = %+v, %v", infos, err)
	}
	got := infos[0]
	if got.SessionID != "se1" || got.SandboxID != "sb1" || got.Owner != "alice" || got.Profile != "fake-browser" || got.CargoID != "c1" || len(got.Down) != 0 {
		t.Fatalf("adopted info = %+v", got)
	}
	for _, c := range []string{"ship", "gull"} {
		ep, err := b.Resolve(ctx, "se1", c)
		if err != nil || health(ep.URL) != nil || ep.RuntimeType != c {
			t.Fatalf("adopted Resolve(%s) = %+v, %v", c, ep, err)
		}
	}
	if getInfo(t, ship.URL).PID != shipPID {
		t.Fatal("adoption restarted ship")
	}
	// Another instance sees none of it.
	other := newAllocator(t, fakeConfig(addr, "gw-other"))
	if infos, err := other.List(ctx); err != nil || len(infos) != 0 {
		t.Fatalf("other instance List = %+v, %v", infos, err)
	}
	_ = b.Close()

	// Stop: graceful, no job left, cargo free again.
	if err := a.Stop(ctx, "se1"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if jobExists(t, a.Client(), jobID) {
		t.Fatal("job left after Stop")
	}
	if _, err := a.Resolve(ctx, "se1", "ship"); !errors.Is(err, allocator.ErrSessionGone) {
		t.Fatalf("Resolve after Stop = %v, want ErrSessionGone", err)
	}
	if err := a.Stop(ctx, "se1"); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	// The cargo outlives the session: a new one starts on the same data.
	sess2, err := a.Start(ctx, allocator.StartRequest{SandboxID: "sb1", SessionID: "se2", Owner: "alice", Profile: fakeProfile(), Cargo: cargo})
	if err != nil {
		t.Fatalf("second Start: %v", err)
	}
	if fi := getInfo(t, sess2.Endpoints["ship"].URL); fi.Workspace != ref.HostPath {
		t.Fatalf("second session workspace = %q", fi.Workspace)
	}
	if err := a.Destroy(ctx, "se2"); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if jobExists(t, a.Client(), jobspecs.JobID("sb1", "se2")) {
		t.Fatal("job left after Destroy")
	}
	if err := a.DeleteCargo(ctx, cargo); err != nil {
		t.Fatalf("DeleteCargo: %v", err)
	}
	if _, _, err := a.Client().HostVolumes().Get(ref.ID, nil); !isNotFound(err) {
		t.Fatalf("volume after DeleteCargo: %v", err)
	}
	if err := a.DeleteCargo(ctx, cargo); err != nil {
		t.Fatalf("DeleteCargo of a missing volume: %v", err)
	}
}

func TestNomadStartFailureRollsBack(t *testing.T) {
	addr := nomadAgent(t)
	ctx := ctxT(t, 2*time.Minute)
	for name, mutate := range map[string]func(*Config){
		"missing binary": func(c *Config) { c.Job.Binaries["gull"] = "/nonexistent/gull" },
		"exits at start": func(c *Config) {
			c.Job.RuntimeEnv["gull"] = map[string]string{fakeRuntimeEnv: "1", "FAKE_EXIT_AT_START": "3"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := fakeConfig(addr, "gw-fail")
			mutate(&cfg)
			a := newAllocator(t, cfg)
			started := time.Now()
			_, err := a.Start(ctx, allocator.StartRequest{SandboxID: "sbf", SessionID: "sef", Profile: fakeProfile()})
			if !errors.Is(err, allocator.ErrStartFailed) {
				t.Fatalf("Start = %v, want ErrStartFailed", err)
			}
			t.Logf("failed after %s: %v", time.Since(started), err)
			if !strings.Contains(err.Error(), "gull") {
				t.Fatalf("error %q does not name the failing container", err)
			}
			if jobExists(t, a.Client(), jobspecs.JobID("sbf", "sef")) {
				t.Fatal("job left after a failed start")
			}
			if infos, err := a.List(ctx); err != nil || len(infos) != 0 {
				t.Fatalf("List after failed start = %+v, %v", infos, err)
			}
		})
	}
}

func TestNomadPlacementFailureIsClear(t *testing.T) {
	addr := nomadAgent(t)
	ctx := ctxT(t, time.Minute)
	cfg := fakeConfig(addr, "gw-place")
	cfg.Job.Constraints = []jobspecs.Constraint{{Attribute: "${node.class}", Value: "no-such-class"}}
	a := newAllocator(t, cfg)
	started := time.Now()
	_, err := a.Start(ctx, allocator.StartRequest{SandboxID: "sbp", SessionID: "sep", Profile: fakeProfile()})
	if !errors.Is(err, allocator.ErrStartFailed) || !strings.Contains(err.Error(), "no node") {
		t.Fatalf("Start = %v, want ErrStartFailed naming the placement", err)
	}
	if took := time.Since(started); took > 10*time.Second {
		t.Fatalf("placement failure took %s to report", took)
	}
	if jobExists(t, a.Client(), jobspecs.JobID("sbp", "sep")) {
		t.Fatal("job left after placement failure")
	}

	// A cargo whose volume is gone: no node has it.
	b := newAllocator(t, fakeConfig(addr, "gw-place"))
	gone := allocator.Cargo{ID: "gone", Backend: BackendHostVolume,
		Locator: volumeRef{ID: "6b1c0a52-0000-0000-0000-000000000000", Name: "bay-cargo-gone", HostPath: "/nonexistent"}.locator()}
	_, err = b.Start(ctx, allocator.StartRequest{SandboxID: "sbp", SessionID: "sev", Profile: fakeProfile(), Cargo: gone})
	if !errors.Is(err, allocator.ErrStartFailed) || !strings.Contains(err.Error(), "host volume") {
		t.Fatalf("Start on a missing volume = %v, want ErrStartFailed naming the volume", err)
	}
	t.Logf("missing volume: %v", err)
	bare := allocator.Cargo{ID: "gone", Backend: BackendHostVolume, Locator: "6b1c0a52-0000-0000-0000-000000000000"}
	if _, err := b.Start(ctx, allocator.StartRequest{SandboxID: "sbp", SessionID: "sew", Profile: fakeProfile(), Cargo: bare}); !errors.Is(err, allocator.ErrStartFailed) {
		t.Fatalf("Start on an unknown volume id = %v", err)
	}
}

func TestNomadSessionGoneWhenStoppedOutside(t *testing.T) {
	addr := nomadAgent(t)
	ctx := ctxT(t, 2*time.Minute)
	a := newAllocator(t, fakeConfig(addr, "gw-gone"))
	if _, err := a.Start(ctx, allocator.StartRequest{SandboxID: "sbg", SessionID: "seg", Profile: fakeProfile()}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	jobID := jobspecs.JobID("sbg", "seg")
	if _, _, err := a.Client().Jobs().Deregister(jobID, true, nil); err != nil {
		t.Fatalf("deregister outside Bay: %v", err)
	}
	ev := nextEvent(t, a, allocator.SessionGone, "seg", 10*time.Second)
	t.Logf("gone: %s", ev.Reason)
	if _, err := a.Resolve(ctx, "seg", "ship"); !errors.Is(err, allocator.ErrSessionGone) {
		t.Fatalf("Resolve after gone = %v", err)
	}
}

func TestNomadUnreachable(t *testing.T) {
	// No agent needed: nothing listens on this port.
	ctx := ctxT(t, 30*time.Second)
	cfg := fakeConfig("http://127.0.0.1:1", "gw-x")
	a := newAllocator(t, cfg)
	_, err := a.Start(ctx, allocator.StartRequest{SandboxID: "sbu", SessionID: "seu", Profile: fakeProfile()})
	if !errors.Is(err, ErrUnreachable) || errors.Is(err, allocator.ErrStartFailed) {
		t.Fatalf("Start against nothing = %v, want ErrUnreachable (not ErrStartFailed)", err)
	}
	if _, err := a.List(ctx); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("List against nothing = %v", err)
	}
	if _, err := a.CreateCargo(ctx, allocator.CargoSpec{ID: "x"}); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("CreateCargo against nothing = %v", err)
	}
}

// TestNomadStartWaitsForNewVolume: CreateCargo returns before the volume
// reads ready (the create request places nothing on it), and the first
// start on it waits for the volume instead of failing placement.
func TestNomadStartWaitsForNewVolume(t *testing.T) {
	addr := nomadAgent(t)
	ctx := ctxT(t, 2*time.Minute)
	a := newAllocator(t, fakeConfig(addr, "gw-fresh"))
	cargo, err := a.CreateCargo(ctx, allocator.CargoSpec{ID: "fresh"})
	if err != nil {
		t.Fatalf("CreateCargo: %v", err)
	}
	t.Cleanup(func() { _ = a.DeleteCargo(context.Background(), cargo) })
	if _, err := a.Start(ctx, allocator.StartRequest{SandboxID: "sbn", SessionID: "sen", Profile: fakeProfile(), Cargo: cargo}); err != nil {
		t.Fatalf("Start on a just-created cargo: %v", err)
	}
	if err := a.Stop(ctx, "sen"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := a.DeleteCargo(ctx, cargo); err != nil {
		t.Fatalf("DeleteCargo right after Stop: %v", err)
	}
	if v, _ := a.findVolume(ctx, volumePrefix+"fresh"); v != nil {
		t.Fatalf("volume %s left after DeleteCargo", v.ID)
	}
}
