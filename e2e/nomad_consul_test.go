package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/bay-sandbox/bay/allocator/nomad/devagent"
	"github.com/bay-sandbox/bay/internal/testutil"
	"github.com/bay-sandbox/bay/jobspecs"
)

// TestNomadConsulEndToEnd is the gateway scenario on a dev Nomad agent that
// registers the sessions' services in a real Consul agent
// (examples/nomad-consul.hcl, discovery = "consul"): endpoints resolve from
// Consul's health API, a killed Gull makes the session degraded until Nomad
// restarts it, and a deleted session leaves no service in Consul.
func TestNomadConsulEndToEnd(t *testing.T) {
	bin := testutil.Nomad(t)
	ship := testutil.Binary(t, "ship")
	gull := testutil.Binary(t, "gull")
	testutil.DebianPython(t)
	ab := testutil.AgentBrowser(t)
	testutil.Chromium(t)
	consul := testutil.StartConsul(t)
	consulURL := "http://" + consul.Addr()

	agent, err := devagent.StartWith(bin, devagent.Options{Dev: true, Within: 90 * time.Second,
		ExtraConfig: fmt.Sprintf("consul {\n  address = %q\n}\n", consul.Addr())})
	if err != nil {
		t.Fatalf("start nomad dev agent: %v", err)
	}
	t.Cleanup(agent.Stop)

	example, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "examples", "nomad-consul.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(example), `"http://127.0.0.1:4646"`, strconv.Quote(agent.Addr), 1)
	cfg = strings.Replace(cfg, `"http://127.0.0.1:8500"`, strconv.Quote(consulURL), 1)
	if !strings.Contains(cfg, agent.Addr) || !strings.Contains(cfg, consulURL) {
		t.Fatal("examples/nomad-consul.hcl no longer names http://127.0.0.1:4646 and http://127.0.0.1:8500")
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "bay.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg+profilesHCL), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	port := testutil.FreePort(t)
	g := runBay(t, cfgPath, dataDir, port,
		"BAY_DATA_DIR="+dataDir, "BAY_PORT="+strconv.Itoa(port), "BAY_API_KEY="+testKey,
		"BAY_SHIP_BIN="+ship, "BAY_GULL_BIN="+gull, "BAY_AGENT_BROWSER="+ab, "BAY_GC_ENABLED=false")
	cc, err := consulapi.NewClient(&consulapi.Config{Address: consulURL})
	if err != nil {
		t.Fatal(err)
	}

	sb := g.must(201, "POST", "/v1/sandboxes", map[string]any{"profile": "browser-python"})
	id := sb["id"].(string)
	py := g.must(200, "POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "x = 41\nx"})
	if py["success"] != true || !strings.Contains(py["output"].(string), "41") {
		t.Fatalf("python: %v", py)
	}
	// The endpoints came from Consul: Nomad registered both containers there,
	// tagged with the session, with passing checks.
	for _, name := range []string{"ship", "gull"} {
		entries, _, err := cc.Health().Service(jobspecs.ServiceName(name), jobspecs.SandboxTag(id), true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 {
			t.Fatalf("consul has %d passing %s instances of %s, want 1", len(entries), name, id)
		}
	}
	probe := g.must(200, "POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "open http://127.0.0.1:8123/health", "timeout": 90})
	if probe["success"] != true {
		t.Fatalf("gull → ship on 127.0.0.1: %v", probe)
	}

	// Kill Gull: degraded, browser 503, Python keeps its state; healed by
	// Nomad's restart, the new endpoint found in Consul.
	gulls := runtimePIDs(t, id, "gull")
	if len(gulls) != 1 {
		t.Fatalf("gull pids: %v", gulls)
	}
	if err := syscall.Kill(gulls[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	g.waitStatus(id, "degraded", 5*time.Second)
	if r := g.do("POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "get title"}); r.Status != 503 || r.errCode(t) != "session_not_ready" {
		t.Fatalf("browser while degraded: %d %s", r.Status, r.Body)
	}
	if r := g.must(200, "POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "x + 1"}); !strings.Contains(r["output"].(string), "42") {
		t.Fatalf("python while degraded lost state: %v", r)
	}
	g.waitStatus(id, "ready", 60*time.Second)
	if r := g.must(200, "POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "open http://127.0.0.1:8123/health", "timeout": 90}); r["success"] != true {
		t.Fatalf("browser after heal: %v", r)
	}

	// Delete: the services are gone from Consul.
	if r := g.do("DELETE", "/v1/sandboxes/"+id, nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := 0
		for _, name := range []string{"ship", "gull"} {
			entries, _, err := cc.Health().Service(jobspecs.ServiceName(name), jobspecs.SandboxTag(id), false, nil)
			if err != nil {
				t.Fatal(err)
			}
			left += len(entries)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d consul services of the deleted session left", left)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
