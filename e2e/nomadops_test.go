package e2e

import (
	"context"
	"fmt"
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

// nomadBay runs bay serve on examples/nomad-dev.hcl against agent, with
// extra lines inside its nomad block (token, token_check, pool size).
func nomadBay(t *testing.T, agent *devagent.Agent, nomadExtra string) (*gateway, string) {
	t.Helper()
	cfgPath, dataDir, port, env := nomadBayConfig(t, agent, nomadExtra)
	return runBay(t, cfgPath, dataDir, port, env...), cfgPath
}

func nomadBayConfig(t *testing.T, agent *devagent.Agent, nomadExtra string) (cfgPath, dataDir string, port int, env []string) {
	t.Helper()
	example, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "examples", "nomad-dev.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(example), `"http://127.0.0.1:4646"`, strconv.Quote(agent.Addr)+"\n"+nomadExtra, 1)
	if cfg == string(example) {
		t.Fatal("examples/nomad-dev.hcl no longer names http://127.0.0.1:4646")
	}
	dir := t.TempDir()
	cfgPath = filepath.Join(dir, "bay.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg+profilesHCL), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir = filepath.Join(dir, "data")
	port = testutil.FreePort(t)
	env = []string{
		"BAY_DATA_DIR=" + dataDir, "BAY_PORT=" + strconv.Itoa(port), "BAY_API_KEY=" + testKey,
		"BAY_SHIP_BIN=" + testutil.Binary(t, "ship"), "BAY_GULL_BIN=" + testutil.Binary(t, "gull"),
		"BAY_AGENT_BROWSER=" + testutil.AgentBrowser(t), "BAY_GC_ENABLED=false",
	}
	return cfgPath, dataDir, port, env
}

func startAgent(t *testing.T, opts devagent.Options) *devagent.Agent {
	t.Helper()
	bin := testutil.Nomad(t)
	testutil.DebianPython(t)
	testutil.Binary(t, "ship")
	opts.Within = 90 * time.Second
	agent, err := devagent.StartWith(bin, opts)
	if err != nil {
		t.Fatalf("start nomad agent: %v", err)
	}
	t.Cleanup(agent.Stop)
	return agent
}

// jobsOf lists the live jobs of a sandbox.
func jobsOf(t *testing.T, nc *api.Client, sandboxID string) []string {
	t.Helper()
	stubs, _, err := nc.Jobs().List(&api.QueryOptions{Prefix: "bay-" + sandboxID})
	if err != nil {
		t.Fatalf("list jobs: %v", err)
	}
	var out []string
	for _, j := range stubs {
		if j.Status != "dead" {
			out = append(out, j.ID)
		}
	}
	return out
}

func volumeExists(t *testing.T, nc *api.Client, cargoID string) bool {
	t.Helper()
	vols, _, err := nc.HostVolumes().List(nil, nil)
	if err != nil {
		t.Fatalf("list volumes: %v", err)
	}
	for _, v := range vols {
		if v.Name == "bay-cargo-"+cargoID {
			return true
		}
	}
	return false
}

// call is must for a capability call, retrying its retryable 503s (a
// failed start: the next call starts again) as a client would. On this
// shared test machine a start now and then fails in the client's CNI setup
// ("unknown FS magic on /var/run/netns/...") while other suites create and
// remove network namespaces.
func (g *gateway) call(t *testing.T, path string, body map[string]any) map[string]any {
	t.Helper()
	var r response
	for range 5 {
		if r = g.do("POST", path, body); r.Status != 503 {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if r.Status != 200 {
		t.Fatalf("POST %s: %d %s", path, r.Status, r.Body)
	}
	return r.json(t)
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestNomadIntentSurvivesOutage: on a normal agent (server + client,
// persistent data dir), stop one sandbox and delete another while the
// agent is down. Both are recorded and answered 202 with the pending state
// (the sandboxes read stopping and deleting; a repeated DELETE stays 202),
// and once the agent is back the reconcile loop finishes them: the stopped
// sandbox's job is gone and it reads idle with its cargo kept; the deleted
// one's job and volume are gone and it reads 404, a DELETE then 204.
func TestNomadIntentSurvivesOutage(t *testing.T) {
	agent := startAgent(t, devagent.Options{})
	g, _ := nomadBay(t, agent, "  cargo_pool_size = 0\n")
	nc, err := agent.Client()
	if err != nil {
		t.Fatal(err)
	}
	var ids, cargos []string
	for range 2 {
		sb := g.must(201, "POST", "/v1/sandboxes", map[string]any{"profile": "python-default"})
		ids = append(ids, sb["id"].(string))
		cargos = append(cargos, sb["cargo_id"].(string))
	}
	for _, id := range ids {
		if py := g.call(t, "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "6*7", "timeout": 60}); py["success"] != true {
			t.Fatalf("python: %v", py)
		}
		if len(jobsOf(t, nc, id)) != 1 {
			t.Fatalf("sandbox %s has no job", id)
		}
	}
	stopID, delID := ids[0], ids[1]

	agent.Halt()
	if r := g.do("POST", "/v1/sandboxes/"+stopID+"/stop", nil); r.Status != 202 || r.json(t)["status"] != "stopping" {
		t.Fatalf("stop with nomad down = %d %s, want 202 stopping", r.Status, r.Body)
	}
	if got := g.must(200, "GET", "/v1/sandboxes/"+stopID, nil)["status"]; got != "stopping" {
		t.Fatalf("stopped sandbox reads %v while nomad is down, want stopping", got)
	}
	for range 2 {
		if r := g.do("DELETE", "/v1/sandboxes/"+delID, nil); r.Status != 202 || r.json(t)["status"] != "deleting" {
			t.Fatalf("delete with nomad down = %d %s, want 202 deleting", r.Status, r.Body)
		}
	}
	if got := g.must(200, "GET", "/v1/sandboxes/"+delID, nil)["status"]; got != "deleting" {
		t.Fatalf("deleted sandbox reads %v while nomad is down, want deleting", got)
	}
	if r := g.do("POST", "/v1/sandboxes/"+delID+"/python/exec", map[string]any{"code": "1"}); r.Status != 409 {
		t.Fatalf("exec on a deleting sandbox = %d %s, want 409", r.Status, r.Body)
	}

	if err := agent.Resume(); err != nil {
		t.Fatalf("resume agent: %v", err)
	}
	eventually(t, 90*time.Second, "the pending stop and delete carried out", func() bool {
		st := g.do("GET", "/v1/sandboxes/"+stopID, nil)
		del := g.do("GET", "/v1/sandboxes/"+delID, nil)
		return st.Status == 200 && st.json(t)["status"] == "idle" && del.Status == 404
	})
	if j := jobsOf(t, nc, stopID); len(j) != 0 {
		t.Fatalf("stopped sandbox still has jobs %v", j)
	}
	if j := jobsOf(t, nc, delID); len(j) != 0 {
		t.Fatalf("deleted sandbox still has jobs %v", j)
	}
	if volumeExists(t, nc, cargos[1]) {
		t.Fatal("deleted sandbox's cargo volume is left")
	}
	if !volumeExists(t, nc, cargos[0]) {
		t.Fatal("stopped sandbox lost its cargo volume")
	}
	g.must(204, "DELETE", "/v1/sandboxes/"+delID, nil)
	// The stopped sandbox works again on its cargo.
	if py := g.call(t, "/v1/sandboxes/"+stopID+"/python/exec", map[string]any{"code": "1+1", "timeout": 60}); py["success"] != true {
		t.Fatalf("python after the stop: %v", py)
	}
}

// TestNomadBrowserDeleteRightAfterBrowserCall: deleting a browser-python
// sandbox right after a browser call waits for Gull to save its profile and
// exit before the volume goes: 20 times, every delete answers 204 and no
// volume is left.
func TestNomadBrowserDeleteRightAfterBrowserCall(t *testing.T) {
	testutil.AgentBrowser(t)
	testutil.Chromium(t)
	agent := startAgent(t, devagent.Options{Dev: true})
	g, _ := nomadBay(t, agent, "")
	nc, err := agent.Client()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		sb := g.must(201, "POST", "/v1/sandboxes", map[string]any{"profile": "browser-python"})
		id, cargo := sb["id"].(string), sb["cargo_id"].(string)
		if r := g.call(t, "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "open http://127.0.0.1:8123/health", "timeout": 90}); r["success"] != true {
			t.Fatalf("round %d: browser: %v", i, r)
		}
		if r := g.do("DELETE", "/v1/sandboxes/"+id, nil); r.Status != 204 {
			t.Fatalf("round %d: delete right after a browser call = %d %s", i, r.Status, r.Body)
		}
		if volumeExists(t, nc, cargo) {
			t.Fatalf("round %d: volume of cargo %s left after delete", i, cargo)
		}
		if j := jobsOf(t, nc, id); len(j) != 0 {
			t.Fatalf("round %d: jobs left %v", i, j)
		}
	}
}

// TestNomadACL: on an ACL-enabled agent, Bay with a token of
// examples/acl/bay-policy.hcl runs the scenario; with a read-only token
// `bay serve` warns what it cannot do and a create gets 502
// backend_permission_denied naming the capability (not retryable, no
// Retry-After); with token_check = "refuse" it does not start.
func TestNomadACL(t *testing.T) {
	agent := startAgent(t, devagent.Options{ACL: true})
	c, err := agent.Client()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "examples", "acl", "bay-policy.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	token := func(name, rules string) string {
		if _, err := c.ACLPolicies().Upsert(&api.ACLPolicy{Name: name, Rules: rules}, nil); err != nil {
			t.Fatalf("policy %s: %v", name, err)
		}
		tok, _, err := c.ACLTokens().Create(&api.ACLToken{Name: name, Type: "client", Policies: []string{name}}, nil)
		if err != nil {
			t.Fatalf("token %s: %v", name, err)
		}
		return tok.SecretID
	}
	bayTok := token("bay", string(rules))
	roTok := token("read-only", `namespace "default" { policy = "read" }`)

	t.Run("bay policy", func(t *testing.T) {
		g, _ := nomadBay(t, agent, fmt.Sprintf("  token = %q\n  token_check = \"refuse\"\n", bayTok))
		sb := g.must(201, "POST", "/v1/sandboxes", map[string]any{"profile": "python-default"})
		id := sb["id"].(string)
		if py := g.call(t, "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "2**10", "timeout": 60}); !strings.Contains(fmt.Sprint(py["output"]), "1024") {
			t.Fatalf("python: %v", py)
		}
		g.must(200, "POST", "/v1/sandboxes/"+id+"/stop", nil)
		g.must(204, "DELETE", "/v1/sandboxes/"+id, nil)
		if strings.Contains(g.logs.String(), "lacks a capability") {
			t.Fatalf("the bay policy was reported short:\n%s", g.logs.String())
		}
	})
	t.Run("read-only token", func(t *testing.T) {
		g, _ := nomadBay(t, agent, fmt.Sprintf("  token = %q\n  cargo_pool_size = 0\n", roTok))
		if !strings.Contains(g.logs.String(), "host-volume-create") {
			t.Fatalf("serve did not warn about the missing capability:\n%s", g.logs.String())
		}
		r := g.do("POST", "/v1/sandboxes", map[string]any{"profile": "python-default"})
		if r.Status != 502 || r.errCode(t) != "backend_permission_denied" || r.Header.Get("Retry-After") != "" ||
			!strings.Contains(string(r.Body), "host-volume-create") {
			t.Fatalf("create with a read-only token = %d %s (Retry-After %q)", r.Status, r.Body, r.Header.Get("Retry-After"))
		}
	})
	t.Run("refuse", func(t *testing.T) {
		cfgPath, _, _, env := nomadBayConfig(t, agent, fmt.Sprintf("  token = %q\n  token_check = \"refuse\"\n", roTok))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, testutil.Binary(t, "bay"), "serve", "--config", cfgPath)
		cmd.Env = testutil.Env(env...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "submit-job") {
			t.Fatalf("serve with a read-only token and token_check = refuse: err %v\n%s", err, out)
		}
	})
}
