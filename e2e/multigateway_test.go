package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/internal/testutil"
	"github.com/bay-sandbox/bay/internal/testutil/pgtest"
)

// leaseTTL of the multi-gateway tests: takeover is bounded by ttl + ttl/3.
const leaseTTL = 3 * time.Second

// startPostgres runs a throwaway cluster for one test and returns the DSN of
// a fresh database on it.
func startPostgres(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgtest.Start(ctx)
	if err == pgtest.ErrNoPostgres {
		if os.Getenv("CI") == "true" {
			t.Fatalf("prerequisite missing in CI: %v", err)
		}
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	dsn, err := srv.CreateDB(ctx, "bay")
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// startShared runs one bay serve on the shared database (GC every second).
// dataDir is shared by the gateways of one host: the local allocator keeps
// cargos there, so each gateway can reach every cargo (sessions stay in
// the process that started them; a cluster shares them through Nomad).
func startShared(t *testing.T, name, dsn, dataDir, extraHCL string) *gateway {
	t.Helper()
	dir := t.TempDir()
	port := testutil.FreePort(t)
	cfg := fmt.Sprintf(`
data_dir = %q
port = %d
instance_id = "bay-e2e"
auth { api_keys = [%q] }
gc {
  enabled  = true
  interval = "1s"
}
store {
  driver    = "postgres"
  dsn       = %q
  lease_ttl = %q
}
runtimes {
  ship = %q
  gull = %q
  python = %q
}
local { grace_period = "3s" }
%s
`, dataDir, port, testKey, dsn, leaseTTL.String(), testutil.Binary(t, "ship"), testutil.Binary(t, "gull"),
		testutil.DebianPython(t), extraHCL)
	cfgPath := filepath.Join(dir, name+".hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	g := runBay(t, cfgPath, dataDir, port)
	g.cfgPath, g.port = cfgPath, port
	return g
}

// metric reads one unlabelled value from /metrics ("" when absent).
func (g *gateway) metric(name string) string {
	resp, err := http.Get(g.url + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (g *gateway) kill() {
	_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
	_ = g.cmd.Wait()
}

// TestGatewaysShareOnePostgres: two gateways on one PostgreSQL see the same
// sandboxes, exactly one leads, and when the leader is killed the other
// takes over within the lease bound and its GC reaps what the dead leader
// would have.
func TestGatewaysShareOnePostgres(t *testing.T) {
	dsn := startPostgres(t)
	data := filepath.Join(t.TempDir(), "data")
	noWarmup := "server { warmup_on_create = false }"
	a := startShared(t, "a", dsn, data, noWarmup)
	b := startShared(t, "b", dsn, data, noWarmup)

	var leader, follower *gateway
	deadline := time.Now().Add(leaseTTL)
	for leader == nil && time.Now().Before(deadline) {
		la, lb := a.metric("bay_leader"), b.metric("bay_leader")
		switch {
		case la == "1" && lb == "0":
			leader, follower = a, b
		case lb == "1" && la == "0":
			leader, follower = b, a
		case la == "1" && lb == "1":
			t.Fatal("both gateways lead")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if leader == nil {
		t.Fatalf("no single leader within %v (a=%q b=%q)", leaseTTL, a.metric("bay_leader"), b.metric("bay_leader"))
	}

	// Create on one, read, list and delete on the other.
	sb := a.must(201, "POST", "/v1/sandboxes", map[string]any{})
	id := sb["id"].(string)
	got := b.must(200, "GET", "/v1/sandboxes/"+id, nil)
	if got["id"] != id || got["profile"] != sb["profile"] {
		t.Fatalf("B sees %v; A created %v", got, sb)
	}
	if list := b.must(200, "GET", "/v1/sandboxes", nil); !strings.Contains(fmt.Sprint(list), id) {
		t.Fatalf("B's list lacks %s: %v", id, list)
	}
	b.must(204, "DELETE", "/v1/sandboxes/"+id, nil)
	if r := a.do("GET", "/v1/sandboxes/"+id, nil); r.Status != 404 {
		t.Fatalf("A still serves a sandbox B deleted: %d %s", r.Status, r.Body)
	}

	// Kill the leader outright: no lease release, no goodbye.
	leader.kill()
	killed := time.Now()
	short := follower.must(201, "POST", "/v1/sandboxes", map[string]any{"ttl": 1})
	shortID := short["id"].(string)
	for follower.metric("bay_leader") != "1" {
		if time.Since(killed) > leaseTTL+leaseTTL/3+2*time.Second {
			t.Fatalf("no takeover %v after the leader died", time.Since(killed))
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(killed)
	t.Logf("takeover %v after the leader was killed (lease_ttl %v, bound %v)", took, leaseTTL, leaseTTL+leaseTTL/3)
	// GC resumes: the expired sandbox is reaped by the new leader.
	for {
		r := follower.do("GET", "/v1/sandboxes/"+shortID, nil)
		if r.Status == 404 {
			break
		}
		if time.Since(killed) > took+5*time.Second {
			t.Fatalf("expired sandbox not reaped by the new leader: %d %s", r.Status, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("gc reaped the expired sandbox %v after the leader was killed", time.Since(killed))
}
