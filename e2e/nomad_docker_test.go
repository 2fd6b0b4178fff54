package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/bay-sandbox/bay/allocator/nomad/devagent"
	"github.com/bay-sandbox/bay/internal/testutil"
)

// dockerAgentConfig lets a dev agent's docker driver hold a bridge group's
// namespace with the local pause image (no registry is reachable here).
const dockerAgentConfig = `
plugin "docker" {
  config {
    infra_image = "bay-pause:dev"
  }
}
`

// startDockerAgent starts a dev agent whose docker driver is healthy.
func startDockerAgent(t *testing.T) *devagent.Agent {
	t.Helper()
	bin := testutil.Nomad(t)
	testutil.Docker(t)
	for _, img := range []string{"bay-ship:dev", "bay-gull:dev", "bay-pause:dev"} {
		testutil.DockerImage(t, img)
	}
	agent, err := devagent.StartWith(bin, devagent.Options{Dev: true, Within: 90 * time.Second, ExtraConfig: dockerAgentConfig})
	if err != nil {
		t.Fatalf("start nomad dev agent: %v", err)
	}
	t.Cleanup(agent.Stop)
	nc, err := agent.Client()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		nodes, _, err := nc.Nodes().List(&api.QueryOptions{Params: map[string]string{"resources": "false"}})
		if err == nil {
			for _, n := range nodes {
				if d := n.Drivers["docker"]; d != nil && d.Healthy {
					return agent
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nomad's docker driver not healthy after 60s:\n%s", agent.LogTail(3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestNomadDockerEndToEnd is the gateway scenario with sessions as docker
// tasks (examples/nomad-docker.hcl, the bay-ship and bay-gull images): one
// bridge-network group per session, the cargo host volume at /workspace in
// both containers, Gull reaching Ship on 127.0.0.1:8123; a killed container
// makes the session degraded until Nomad restarts it; delete leaves nothing.
func TestNomadDockerEndToEnd(t *testing.T) {
	agent := startDockerAgent(t)
	nc, err := agent.Client()
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "examples", "nomad-docker.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(example), `"http://127.0.0.1:4646"`, strconv.Quote(agent.Addr), 1)
	if cfg == string(example) {
		t.Fatal("examples/nomad-docker.hcl no longer names http://127.0.0.1:4646")
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "bay.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	port := testutil.FreePort(t)
	g := runBay(t, cfgPath, dataDir, port, "BAY_DATA_DIR="+dataDir, "BAY_PORT="+strconv.Itoa(port), "BAY_API_KEY="+testKey, "BAY_GC_ENABLED=false")

	start := time.Now()
	sb := g.must(201, "POST", "/v1/sandboxes", map[string]any{"profile": "browser-python"})
	id := sb["id"].(string)
	py := g.must(200, "POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "import os, pwd\nopen('note.txt','w').write('from python')\nx = 41\nprint(pwd.getpwuid(os.getuid()).pw_name, os.getcwd())\nx"})
	t.Logf("create → first python answer on docker: %v", time.Since(start))
	if py["success"] != true || !strings.Contains(py["output"].(string), "41") || !strings.Contains(py["output"].(string), "shipyard /workspace") {
		t.Fatalf("python: %v", py)
	}

	// The two containers are docker tasks of one allocation.
	allocID := sessionAlloc(t, nc)
	shipCtr, gullCtr := container(t, "ship", allocID), container(t, "gull", allocID)
	if img := dockerOut(t, "inspect", "-f", "{{.Config.Image}}", shipCtr); img != "bay-ship:dev" {
		t.Errorf("ship container runs %q", img)
	}
	if img := dockerOut(t, "inspect", "-f", "{{.Config.Image}}", gullCtr); img != "bay-gull:dev" {
		t.Errorf("gull container runs %q", img)
	}
	// Both mount the cargo at /workspace.
	for _, ctr := range []string{shipCtr, gullCtr} {
		if m := dockerOut(t, "inspect", "-f", `{{range .Mounts}}{{if eq .Destination "/workspace"}}{{.Type}}{{end}}{{end}}`, ctr); m != "bind" {
			t.Errorf("container %s: /workspace mount %q, want the cargo host volume (bind)", ctr, m)
		}
	}

	// Gull reaches Ship over the group's network namespace, and renders a
	// page from the shared cargo.
	probe := g.must(200, "POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "open http://127.0.0.1:8123/health", "timeout": 90})
	if probe["success"] != true {
		t.Fatalf("gull → ship on 127.0.0.1:8123: %v", probe)
	}
	g.must(200, "PUT", "/v1/sandboxes/"+id+"/filesystem/files", map[string]any{"path": "page.html", "content": "<html><head><title>Cargo Page</title></head><body>hi</body></html>"})
	g.must(200, "POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "open file:///workspace/page.html"})
	if title := g.must(200, "POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "get title"}); !strings.Contains(title["output"].(string), "Cargo Page") {
		t.Fatalf("title: %v", title)
	}

	// Kill Gull's container: degraded, browser 503, Python keeps its state;
	// Nomad restarts the task and the session heals. Ship never restarted.
	shipStarted := dockerOut(t, "inspect", "-f", "{{.State.StartedAt}}", shipCtr)
	dockerOut(t, "kill", gullCtr)
	g.waitStatus(id, "degraded", 10*time.Second)
	if r := g.do("POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "get title"}); r.Status != 503 || r.errCode(t) != "session_not_ready" {
		t.Fatalf("browser while degraded: %d %s", r.Status, r.Body)
	}
	if r := g.must(200, "POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "x + 1"}); !strings.Contains(r["output"].(string), "42") {
		t.Fatalf("python while degraded lost state: %v", r)
	}
	g.waitStatus(id, "ready", 90*time.Second)
	if r := g.must(200, "POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "open file:///workspace/page.html", "timeout": 90}); r["success"] != true {
		t.Fatalf("browser after heal: %v", r)
	}
	if after := dockerOut(t, "inspect", "-f", "{{.State.StartedAt}}", shipCtr); after != shipStarted {
		t.Errorf("ship container restarted: started %s, then %s", shipStarted, after)
	}

	// Delete: no job, no volume, no container of the allocation.
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
	deadline := time.Now().Add(60 * time.Second)
	for {
		left := dockerOut(t, "ps", "-a", "-q", "--filter", "name="+allocID)
		if left == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containers of the deleted session left: %s", left)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// sessionAlloc is the running allocation of the only session job.
func sessionAlloc(t *testing.T, nc *api.Client) string {
	t.Helper()
	jobs, _, err := nc.Jobs().PrefixList("bay-")
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		allocs, _, err := nc.Jobs().Allocations(j.ID, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range allocs {
			if a.ClientStatus == api.AllocClientStatusRunning {
				return a.ID
			}
		}
	}
	t.Fatalf("no running session allocation (jobs %v)", jobs)
	return ""
}

// container is the docker container of a task of an allocation (Nomad
// names it <task>-<alloc id>).
func container(t *testing.T, task, allocID string) string {
	t.Helper()
	id := dockerOut(t, "ps", "-q", "--filter", "name=^/"+task+"-"+allocID+"$")
	if id == "" || strings.Contains(id, "\n") {
		t.Fatalf("container of task %s in %s: %q", task, allocID, id)
	}
	return id
}

func dockerOut(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}
