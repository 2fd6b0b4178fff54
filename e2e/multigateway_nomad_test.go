package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/bay-sandbox/bay/allocator/nomad/devagent"
	"github.com/bay-sandbox/bay/internal/testutil"
)

// liveJobs lists the sandbox's Nomad jobs that are not dead.
func liveJobs(t *testing.T, nc *api.Client, sandboxID string) []string {
	t.Helper()
	jobs, _, err := nc.Jobs().PrefixList("bay-")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, j := range jobs {
		if j.Status != "dead" && strings.Contains(j.ID, sandboxID) {
			out = append(out, j.ID)
		}
	}
	return out
}

// TestTwoGatewaysOneNomad: two bay serve on one PostgreSQL and one Nomad
// agent. Create on A, call on B; 20 concurrent first calls spread over both
// make one session; A killed in the middle of a cold start leaves B to
// finish it with no job left behind; the idle reaper stops a session once.
func TestTwoGatewaysOneNomad(t *testing.T) {
	bin := testutil.Nomad(t)
	ship := testutil.Binary(t, "ship")
	testutil.DebianPython(t)
	dsn := startPostgres(t)
	agent, err := devagent.Start(bin, 90*time.Second)
	if err != nil {
		t.Fatalf("start nomad dev agent: %v", err)
	}
	t.Cleanup(agent.Stop)
	nc, err := agent.Client()
	if err != nil {
		t.Fatal(err)
	}

	example, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "examples", "nomad-dev.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	base := strings.Replace(string(example), `"http://127.0.0.1:4646"`, strconv.Quote(agent.Addr), 1)
	extra := fmt.Sprintf(`
store {
  driver    = "postgres"
  dsn       = %q
  lease_ttl = %q
}
gc {
  enabled  = true
  interval = "1s"
}
server { warmup_on_create = false }
profile "python-default" {
  idle_timeout = "30s"
  container "ship" {
    runtime_type = "ship"
  }
}
`, dsn, leaseTTL.String())
	start := func(name string) *gateway {
		dir := t.TempDir()
		cfgPath := filepath.Join(dir, name+".hcl")
		if err := os.WriteFile(cfgPath, []byte(base+extra), 0o644); err != nil {
			t.Fatal(err)
		}
		port := testutil.FreePort(t)
		g := runBay(t, cfgPath, filepath.Join(dir, "data"), port,
			"BAY_DATA_DIR="+filepath.Join(dir, "data"), "BAY_PORT="+strconv.Itoa(port), "BAY_SHIP_BIN="+ship, "BAY_API_KEY="+testKey)
		g.cfgPath, g.port = cfgPath, port
		return g
	}
	a, b := start("a"), start("b")
	owner := withOwner("ha")
	py := func(g *gateway, id, code string) response {
		return g.do("POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": code}, owner)
	}

	// Create on A, call on B; the session is B's, and A then serves it too.
	sb := a.must(201, "POST", "/v1/sandboxes", map[string]any{}, owner)
	id := sb["id"].(string)
	if r := py(b, id, "x = 41\nx + 1"); r.Status != 200 || !strings.Contains(string(r.Body), "42") {
		t.Fatalf("call on B: %d %s", r.Status, r.Body)
	}
	if r := py(a, id, "x"); r.Status != 200 || !strings.Contains(string(r.Body), "41") {
		t.Fatalf("A does not reach the session B started: %d %s", r.Status, r.Body)
	}
	if jobs := liveJobs(t, nc, id); len(jobs) != 1 {
		t.Fatalf("jobs of %s = %v; want one", id, jobs)
	}

	// 20 concurrent first calls over A and B: one session.
	sb2 := b.must(201, "POST", "/v1/sandboxes", map[string]any{}, owner)
	id2 := sb2["id"].(string)
	var wg sync.WaitGroup
	statuses := make([]response, 20)
	for i := range statuses {
		g := a
		if i%2 == 1 {
			g = b
		}
		wg.Add(1)
		go func() { defer wg.Done(); statuses[i] = py(g, id2, "1+1") }()
	}
	wg.Wait()
	for i, r := range statuses {
		if r.Status != 200 {
			t.Errorf("concurrent first call %d: %d %s", i, r.Status, r.Body)
		}
	}
	if jobs := liveJobs(t, nc, id2); len(jobs) != 1 {
		t.Fatalf("20 first calls over two gateways made jobs %v; want one", jobs)
	}
	startsA, startsB := a.metric(`bay_session_starts_total{result="ok"}`), b.metric(`bay_session_starts_total{result="ok"}`)
	t.Logf("session starts: A=%s B=%s (the first sandbox's plus this one's)", startsA, startsB)

	// Kill A in the middle of a cold start: B finishes it, no job left.
	sb3 := a.must(201, "POST", "/v1/sandboxes", map[string]any{}, owner)
	id3 := sb3["id"].(string)
	// The call dies with A: sent raw, so its broken connection is expected.
	go func() {
		req, _ := http.NewRequest("POST", a.url+"/v1/sandboxes/"+id3+"/python/exec", strings.NewReader(`{"code":"1"}`))
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Owner", "ha")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for len(liveJobs(t, nc, id3)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("A never registered the job of its cold start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.kill()
	killed := time.Now()
	// A client retries 503 session_not_ready (Retry-After), as the SDKs do.
	for {
		r := py(b, id3, "6*7")
		if r.Status == 200 && strings.Contains(string(r.Body), "42") {
			break
		}
		if r.Status != 503 || time.Since(killed) > 90*time.Second {
			t.Fatalf("B after A died mid-start: %d %s", r.Status, r.Body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("B served the sandbox %v after A died mid-start", time.Since(killed))
	if jobs := liveJobs(t, nc, id3); len(jobs) != 1 {
		t.Fatalf("jobs of %s after the take-over = %v; want exactly one (none left behind)", id3, jobs)
	}

	// The idle reaper (on the leader of the moment) stops each idle
	// session once.
	// (30 s idle timeout: long enough that the reaps come after A's death,
	// so a reap cannot be cut short by the kill.)
	deadline = time.Now().Add(leaseTTL + 60*time.Second)
	for len(liveJobs(t, nc, id))+len(liveJobs(t, nc, id2))+len(liveJobs(t, nc, id3)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle sessions not reaped: %v %v %v", liveJobs(t, nc, id), liveJobs(t, nc, id2), liveJobs(t, nc, id3))
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // a few more GC cycles
	for _, x := range []string{id, id2, id3} {
		got := b.must(200, "GET", "/v1/sandboxes/"+x, nil, owner)
		if got["status"] != "idle" {
			t.Errorf("%s after the idle reap: %v", x, got["status"])
		}
	}
	// Whichever gateway led at the deadline reaped it (A led first); both
	// have exited before their logs are read.
	b.stop()
	logs := a.logs.String() + b.logs.String()
	for _, x := range []string{id, id2, id3} {
		if n := strings.Count(logs, "idle session stopped: sandbox_id="+x); n != 1 {
			t.Errorf("%s reaped %d times; want exactly once", x, n)
		}
	}
}
