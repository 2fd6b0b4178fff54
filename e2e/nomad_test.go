package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/bay-sandbox/bay/allocator/nomad/devagent"
	"github.com/bay-sandbox/bay/internal/testutil"
)

// TestNomadEndToEnd is the gateway scenario on a real `nomad agent -dev`
// with examples/nomad-dev.hcl: raw_exec tasks in one bridge-network group,
// Nomad-native discovery, host-volume cargos.
func TestNomadEndToEnd(t *testing.T) {
	bin := testutil.Nomad(t)
	ship := testutil.Binary(t, "ship")
	gull := testutil.Binary(t, "gull")
	testutil.DebianPython(t)
	ab := testutil.AgentBrowser(t)
	testutil.Chromium(t)

	agent, err := devagent.Start(bin, 90*time.Second)
	if err != nil {
		t.Fatalf("start nomad dev agent: %v", err)
	}
	t.Cleanup(agent.Stop)

	example, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "examples", "nomad-dev.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(example), `"http://127.0.0.1:4646"`, strconv.Quote(agent.Addr), 1)
	if cfg == string(example) {
		t.Fatal("examples/nomad-dev.hcl no longer names http://127.0.0.1:4646")
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "bay.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg+profilesHCL), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	port := testutil.FreePort(t)
	env := []string{
		"BAY_DATA_DIR=" + dataDir, "BAY_PORT=" + strconv.Itoa(port), "BAY_API_KEY=" + testKey,
		"BAY_SHIP_BIN=" + ship, "BAY_GULL_BIN=" + gull, "BAY_AGENT_BROWSER=" + ab, "BAY_GC_ENABLED=false",
	}
	g := runBay(t, cfgPath, dataDir, port, env...)
	nc, err := agent.Client()
	if err != nil {
		t.Fatal(err)
	}

	sb := g.must(201, "POST", "/v1/sandboxes", map[string]any{"profile": "browser-python"})
	id := sb["id"].(string)
	// The cold start reports its phases in order while it runs.
	order := map[string]int{"placing": 1, "starting_containers": 2, "health_check": 3}
	var seen []string
	for deadline := time.Now().Add(120 * time.Second); ; {
		st := g.must(200, "GET", "/v1/sandboxes/"+id, nil)
		if st["status"] != "starting" && st["status"] != "idle" {
			break
		}
		if st["status"] == "starting" {
			ph, _ := st["phase"].(string)
			if order[ph] == 0 {
				t.Fatalf("starting sandbox with phase %v", st["phase"])
			}
			if len(seen) == 0 || seen[len(seen)-1] != ph {
				if len(seen) > 0 && order[ph] < order[seen[len(seen)-1]] {
					t.Fatalf("phase went back: %v then %s", seen, ph)
				}
				seen = append(seen, ph)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("still starting after 120s (phases %v)", seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(seen) == 0 {
		t.Fatal("no start phase observed on Nomad")
	}
	t.Logf("start phases on nomad: %v", seen)
	py := g.must(200, "POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "open('note.txt','w').write('from python')\nx = 41\nx"})
	if py["success"] != true || !strings.Contains(py["output"].(string), "41") {
		t.Fatalf("python: %v", py)
	}
	wd := g.must(200, "POST", "/v1/sandboxes/"+id+"/shell/exec", map[string]any{"command": "cat note.txt; echo; pwd"})
	lines := strings.Split(strings.TrimSpace(wd["output"].(string)), "\n")
	if len(lines) != 2 || lines[0] != "from python" {
		t.Fatalf("shell: %v", wd)
	}
	workspace := lines[1]

	// Gull reaches Ship over the group's shared network namespace, and
	// renders a page from the shared cargo.
	probe := g.must(200, "POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "open http://127.0.0.1:8123/health", "timeout": 90})
	if probe["success"] != true {
		t.Fatalf("gull → ship on 127.0.0.1: %v", probe)
	}
	text := g.must(200, "POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "get text body"})
	if !strings.Contains(text["output"].(string), "healthy") {
		t.Fatalf("ship health through gull: %v", text)
	}
	g.must(200, "PUT", "/v1/sandboxes/"+id+"/filesystem/files", map[string]any{"path": "page.html", "content": "<html><head><title>Cargo Page</title></head><body>hi</body></html>"})
	g.must(200, "POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "open file://" + workspace + "/page.html"})
	if title := g.must(200, "POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "get title"}); !strings.Contains(title["output"].(string), "Cargo Page") {
		t.Fatalf("title: %v", title)
	}
	g.must(200, "POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "screenshot shot.png"})
	size := g.must(200, "POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "import os; os.path.getsize('shot.png') > 1000"})
	if !strings.Contains(size["output"].(string), "True") {
		t.Fatalf("screenshot through the cargo: %v", size)
	}

	// Kill the Gull task's process: degraded, browser 503, python works,
	// then healed by Nomad's in-place restart; Ship never restarted.
	shipPIDs := runtimePIDs(t, id, "ship")
	gulls := runtimePIDs(t, id, "gull")
	if len(gulls) != 1 || len(shipPIDs) != 1 {
		t.Fatalf("pids: gull %v ship %v", gulls, shipPIDs)
	}
	if err := syscall.Kill(gulls[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	g.waitStatus(id, "degraded", 2*time.Second)
	if r := g.do("POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "get title"}); r.Status != 503 || r.errCode(t) != "session_not_ready" {
		t.Fatalf("browser while degraded: %d %s", r.Status, r.Body)
	}
	if r := g.must(200, "POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "x + 1"}); !strings.Contains(r["output"].(string), "42") {
		t.Fatalf("python while degraded lost state: %v", r)
	}
	g.waitStatus(id, "ready", 60*time.Second)
	if r := g.must(200, "POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "open file://" + workspace + "/page.html", "timeout": 90}); r["success"] != true {
		t.Fatalf("browser after heal: %v", r)
	}
	if after := runtimePIDs(t, id, "ship"); len(after) != 1 || after[0] != shipPIDs[0] {
		t.Fatalf("ship restarted: %v → %v", shipPIDs, after)
	}

	// Gateway restart: the session is re-adopted, nothing restarted.
	g.stop()
	g = runBay(t, cfgPath, dataDir, port, env...)
	if r := g.must(200, "POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "x + 1"}); !strings.Contains(r["output"].(string), "42") {
		t.Fatalf("after gateway restart the kernel was not kept: %v", r)
	}
	if after := runtimePIDs(t, id, "ship"); len(after) != 1 || after[0] != shipPIDs[0] {
		t.Fatalf("ship restarted by gateway restart: %v → %v", shipPIDs, after)
	}

	// Stop, then a new call: a fresh session on the same cargo.
	g.must(200, "POST", "/v1/sandboxes/"+id+"/stop", nil)
	if jobs := bayJobs(t, nc.Address()); len(jobs) != 0 {
		t.Fatalf("jobs after stop: %v", jobs)
	}
	if rf := g.must(200, "GET", "/v1/sandboxes/"+id+"/filesystem/files?path=note.txt", nil); rf["content"] != "from python" {
		t.Fatalf("file after stop: %v", rf)
	}

	// Delete: no job, no volume.
	if r := g.do("DELETE", "/v1/sandboxes/"+id, nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if jobs := bayJobs(t, nc.Address()); len(jobs) != 0 {
		t.Fatalf("jobs after delete: %v", jobs)
	}
	vols, _, err := nc.HostVolumes().List(&api.HostVolumeListRequest{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols {
		if strings.Contains(v.Name, sb["cargo_id"].(string)) {
			t.Fatalf("volume %s left after delete", v.Name)
		}
	}

}

// bayJobs lists live (not dead) jobs whose id starts with "bay-".
func bayJobs(t *testing.T, addr string) []string {
	t.Helper()
	resp, err := http.Get(addr + "/v1/jobs?prefix=bay-")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jobs []struct{ ID, Status string }
	if err := json.NewDecoder(resp.Body).Decode(&jobs); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, j := range jobs {
		if j.Status != "dead" {
			out = append(out, j.ID+":"+j.Status)
		}
	}
	return out
}
