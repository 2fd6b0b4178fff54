package nomad

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/internal/testutil"
	"github.com/bay-sandbox/bay/jobspecs"
	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/runtimes/wire"
)

// browserPython is the default browser-python profile's shape.
func browserPython() *profiles.Profile {
	return &profiles.Profile{
		ID: "browser-python",
		Containers: []profiles.Container{
			{Name: "ship", RuntimeType: profiles.RuntimeShip, RuntimePort: profiles.DefaultShipPort,
				Capabilities: []string{profiles.CapPython, profiles.CapShell, profiles.CapFilesystem}},
			{Name: "gull", RuntimeType: profiles.RuntimeGull, RuntimePort: profiles.DefaultGullPort,
				Capabilities: []string{profiles.CapBrowser}, PrimaryFor: []string{profiles.CapBrowser}},
		},
	}
}

// realConfig runs the real ship and gull binaries under raw_exec.
func realConfig(t *testing.T, addr string) Config {
	py := testutil.DebianPython(t)
	ab := testutil.AgentBrowser(t)
	testutil.Chromium(t)
	gullEnv := map[string]string{"BAY_AGENT_BROWSER": ab, "HOME": t.TempDir()}
	for _, kv := range testutil.BrowserEnv() {
		k, v, _ := strings.Cut(kv, "=")
		gullEnv[k] = v
	}
	return Config{
		Address:   addr,
		Discovery: DiscoveryNomad,
		Job: jobspecs.Options{
			InstanceID: "gw-real",
			Binaries:   map[string]string{"ship": testutil.Binary(t, "ship"), "gull": testutil.Binary(t, "gull")},
			RuntimeEnv: map[string]map[string]string{
				"ship": {"BAY_PYTHON": py},
				"gull": gullEnv,
			},
		},
		StartTimeout: 90 * time.Second,
	}
}

// realSecret is the runtime secret of the real-runtime sessions; postJSON
// sends it.
const realSecret = "nomad-real-runtimes-secret"

func postJSON(t *testing.T, url string, in, out any) int {
	t.Helper()
	b, _ := json.Marshal(in)
	c := http.Client{Timeout: 90 * time.Second}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(wire.SecretHeader, realSecret)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

type gullExec struct {
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	ExitCode int    `json:"exit_code"`
}

func TestNomadRealShipAndGull(t *testing.T) {
	addr := nomadAgent(t)
	cfg := realConfig(t, addr)
	ctx := ctxT(t, 4*time.Minute)
	a := newAllocator(t, cfg)

	cargo, err := a.CreateCargo(ctx, allocator.CargoSpec{ID: "real", Ready: true}) // the test reads the host path up front
	if err != nil {
		t.Fatalf("CreateCargo: %v", err)
	}
	ref, _ := parseLocator(cargo.Locator)
	t.Cleanup(func() {
		_ = a.Destroy(ctxT(t, 30*time.Second), "ser")
	})
	started := time.Now()
	sess, err := a.Start(ctx, allocator.StartRequest{SandboxID: "sbr", SessionID: "ser", Owner: "o", Profile: browserPython(), Cargo: cargo, Secret: realSecret})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("cold start (ship + gull) took %s", time.Since(started))
	ship, gull := sess.Endpoints["ship"].URL, sess.Endpoints["gull"].URL
	for _, u := range []string{ship, gull} {
		if err := health(u); err != nil {
			t.Fatalf("%s/health: %v", u, err)
		}
	}

	// The runtimes answer /health to anyone (Nomad's checks) and nothing
	// else without the session's secret: a workload on the cluster network
	// cannot drive them around the gateway.
	for _, call := range []struct{ url, body string }{
		{ship + "/fs/list_dir", `{"path":"."}`},
		{ship + "/shell/exec", `{"command":"touch pwned"}`},
		{gull + "/exec", `{"cmd":"get url"}`},
	} {
		for _, secret := range []string{"", "another-session-s-secret"} {
			req, _ := http.NewRequest(http.MethodPost, call.url, strings.NewReader(call.body))
			req.Header.Set("Content-Type", "application/json")
			if secret != "" {
				req.Header.Set(wire.SecretHeader, secret)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("POST %s: %v", call.url, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("POST %s with secret %q: %d, want 401", call.url, secret, resp.StatusCode)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(ref.HostPath, "pwned")); err == nil {
		t.Fatal("a refused call ran a command")
	}

	// Ship writes into the cargo, Gull opens Ship over 127.0.0.1 and
	// screenshots into the same cargo.
	var w struct {
		Success bool `json:"success"`
	}
	if code := postJSON(t, ship+"/fs/write_file", map[string]any{"path": "hello.txt", "content": "from ship"}, &w); code != 200 || !w.Success {
		t.Fatalf("ship write_file: %d %+v", code, w)
	}
	if b, err := os.ReadFile(filepath.Join(ref.HostPath, "hello.txt")); err != nil || string(b) != "from ship" {
		t.Fatalf("hello.txt in the cargo: %q %v", b, err)
	}
	var ex gullExec
	if code := postJSON(t, gull+"/exec", map[string]any{"cmd": fmt.Sprintf("open http://127.0.0.1:%d/health", profiles.DefaultShipPort), "timeout": 60}, &ex); code != 200 || ex.ExitCode != 0 {
		t.Fatalf("gull open ship: %d %+v", code, ex)
	}
	if code := postJSON(t, gull+"/exec", map[string]any{"cmd": "get text body"}, &ex); code != 200 || !strings.Contains(ex.Stdout, "healthy") {
		t.Fatalf("gull read ship's page: %d %+v", code, ex)
	}
	shot := filepath.Join(ref.HostPath, "shot.png")
	if code := postJSON(t, gull+"/exec", map[string]any{"cmd": "screenshot " + shot}, &ex); code != 200 || ex.ExitCode != 0 {
		t.Fatalf("gull screenshot: %d %+v", code, ex)
	}
	var ls struct {
		Files []struct {
			Name string `json:"name"`
		} `json:"files"`
	}
	postJSON(t, ship+"/fs/list_dir", map[string]any{"path": "."}, &ls)
	found := false
	for _, f := range ls.Files {
		found = found || f.Name == "shot.png"
	}
	if !found {
		t.Fatalf("ship does not see gull's screenshot in the cargo: %+v", ls)
	}

	// Kill Gull's task: down at once, Ship keeps serving, Gull comes back.
	jobID := jobspecs.JobID("sbr", "ser")
	allocs, _, err := a.Client().Jobs().Allocations(jobID, false, nil)
	if err != nil || len(allocs) != 1 {
		t.Fatalf("allocations: %v %d", err, len(allocs))
	}
	killed := time.Now()
	if err := a.Client().Allocations().Signal(allocFromStub(allocs[0]), nil, "gull", "SIGKILL"); err != nil {
		t.Fatalf("signal gull: %v", err)
	}
	down := nextEvent(t, a, allocator.ContainerDown, "ser", 5*time.Second)
	t.Logf("gull down noticed after %s (%s)", time.Since(killed), down.Reason)
	if time.Since(killed) > 2*time.Second {
		t.Errorf("ContainerDown took %s, want <= 2s", time.Since(killed))
	}
	if _, err := a.Resolve(ctx, "ser", "gull"); !errors.Is(err, allocator.ErrContainerDown) {
		t.Fatalf("Resolve(gull) while down = %v", err)
	}
	if ep, err := a.Resolve(ctx, "ser", "ship"); err != nil || health(ep.URL) != nil {
		t.Fatalf("Resolve(ship) while gull down = %+v %v", ep, err)
	}
	up := nextEvent(t, a, allocator.ContainerUp, "ser", 60*time.Second)
	t.Logf("gull up after %s at %s", time.Since(killed), up.Endpoint.URL)
	if health(up.Endpoint.URL) != nil {
		t.Fatal("gull endpoint after ContainerUp does not answer")
	}
	if n := taskRestarts(t, a.Client(), jobID, "ship"); n != 0 {
		t.Fatalf("ship restarted %d times", n)
	}

	if err := a.Stop(ctx, "ser"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if jobExists(t, a.Client(), jobID) {
		t.Fatal("job left after Stop")
	}
	if err := a.DeleteCargo(ctx, cargo); err != nil {
		t.Fatalf("DeleteCargo: %v", err)
	}
}
