package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator/local"
	"github.com/bay-sandbox/bay/gateway"
	"github.com/bay-sandbox/bay/gateway/gc"
	"github.com/bay-sandbox/bay/gateway/service"
	"github.com/bay-sandbox/bay/gateway/warmpool"
	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/runtimes/ship"
	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/bay-sandbox/bay/store"
	"github.com/bay-sandbox/bay/store/sqlite"
)

// Goals of the lifecycle suite.
const (
	warmFirstResultP50BudgetMS = 50
	gcCycleBudgetMS            = 200
)

// benchLifecycle measures, through the gateway's HTTP API with the local
// allocator and the real ship binary, the time from POST /v1/sandboxes to the
// first Python result with the warm pool off (cold start, the baseline) and
// on; and the cost of a whole GC cycle (all four tasks) over 10,000 sandboxes.
func benchLifecycle(ctx context.Context, r *Reporter) error {
	if err := benchGCCycle(ctx, r); err != nil {
		return fmt.Errorf("gc cycle: %w", err)
	}
	ship, err := Binary("ship")
	if err != nil {
		return err
	}
	n := min(r.N, 30)
	cold, err := firstResultLatencies(ctx, ship, 0, n)
	if err != nil {
		return fmt.Errorf("warm pool off: %w", err)
	}
	r.ReportLatency("lifecycle_create_to_first_python_cold", cold)
	warm, err := firstResultLatencies(ctx, ship, 2, n)
	if err != nil {
		return fmt.Errorf("warm pool on: %w", err)
	}
	r.ReportLatency("lifecycle_create_to_first_python_warm", warm)
	r.Value("lifecycle_create_to_first_python_warm_p50_budget", warmFirstResultP50BudgetMS, "ms")
	r.Ratio("lifecycle_first_python_warm_vs_cold_p50", Pct(warm, 50), Pct(cold, 50))
	return nil
}

// lcGateway is an in-process gateway on a loopback port.
type lcGateway struct {
	url   string
	st    store.Store
	alloc *local.Allocator
	svc   *service.Manager
	pool  *warmpool.Pool
	gc    *gc.Collector
	stop  func()
}

// openStore opens the gateway's store in dir.
type openStore func(ctx context.Context, dir string) (store.Store, error)

func openSQLite(ctx context.Context, dir string) (store.Store, error) {
	return sqlite.Open(ctx, filepath.Join(dir, "bay.db"))
}

func startLCGateway(ctx context.Context, dir, ship string, warmSize int, open openStore) (*lcGateway, error) {
	log := hclog.NewNullLogger()
	prof := profiles.Profile{
		ID: profiles.PythonDefault, IdleTimeout: time.Hour, WarmPoolSize: warmSize, WarmRotateTTL: time.Hour,
		Restart:    profiles.RestartPolicy{Attempts: 1, Delay: time.Second},
		Containers: []profiles.Container{profiles.NewContainer("ship", profiles.RuntimeShip)},
	}
	set, err := profiles.NewSet([]profiles.Profile{prof})
	if err != nil {
		return nil, err
	}
	st, err := open(ctx, dir)
	if err != nil {
		return nil, err
	}
	var env []string
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		env = append(env, "BAY_PYTHON=/usr/bin/python3")
	}
	alloc, err := local.New(local.Config{
		DataDir: dir, Binaries: map[string]string{profiles.RuntimeShip: ship},
		ExtraEnv: map[string][]string{profiles.RuntimeShip: env}, GracePeriod: time.Second,
	}, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	svc := service.New(service.Config{}, st, alloc, set, log)
	srv := gateway.New(gateway.Config{AllowAnonymous: true}, st, svc, alloc, set, log)
	collector := gc.New(gc.Config{}, st, svc, alloc, log)
	srv.SetGC(collector)
	pool := warmpool.New(set.All(), st, svc, log)
	if pool.Enabled() {
		srv.SetWarmPool(pool)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		alloc.Close()
		st.Close()
		return nil, err
	}
	bg, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); svc.Run(bg) }()
	go func() { defer wg.Done(); _ = srv.Serve(bg, ln) }()
	if pool.Enabled() {
		wg.Add(1)
		go func() { defer wg.Done(); pool.Run(bg) }()
	}
	g := &lcGateway{url: "http://" + ln.Addr().String(), st: st, alloc: alloc, svc: svc, pool: pool, gc: collector}
	g.stop = func() {
		cancel()
		wg.Wait()
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		pool.Drain(dctx)
		dcancel()
		svc.Wait()
		alloc.Close()
		st.Close()
	}
	return g, nil
}

func (g *lcGateway) call(method, path string, body any, want int) (map[string]any, error) {
	status, b, err := doJSON(http.DefaultClient, method, g.url+path, body)
	if err != nil {
		return nil, err
	}
	if status != want {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, status, b)
	}
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// waitWarm waits until the pool holds size warm sandboxes with a running
// session and interpreter, so each measurement sees a refilled pool (the
// steady state; a burst of claims faster than the refill pays part of a
// cold start instead).
func (g *lcGateway) waitWarm(ctx context.Context, size int) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		w, err := g.st.ListWarm(ctx, profiles.PythonDefault)
		if err != nil {
			return err
		}
		ready := 0
		for _, sb := range w {
			if g.svc.Status(sb) == service.StatusReady && g.kernelReady(ctx, sb) {
				ready++
			}
		}
		if ready >= size {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("warm pool did not fill (%d of %d ready)", ready, size)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kernelReady reports whether the warm sandbox's Ship has its Python
// interpreter up (Ship starts it in the background after /health answers).
func (g *lcGateway) kernelReady(ctx context.Context, sb store.Sandbox) bool {
	for _, c := range g.svc.Containers(ctx, sb) {
		if c.Endpoint == "" {
			return false
		}
		st, err := ship.NewClient(c.Endpoint, wire.WithSecret(http.DefaultClient, g.svc.RuntimeSecret(sb.SessionID))).KernelStatus(ctx)
		return err == nil && st.Status == "ready"
	}
	return false
}

// firstResultLatencies times create + first python/exec, n times.
func firstResultLatencies(ctx context.Context, ship string, warmSize, n int) ([]time.Duration, error) {
	return firstResultLatenciesOn(ctx, ship, warmSize, n, openSQLite)
}

func firstResultLatenciesOn(ctx context.Context, ship string, warmSize, n int, open openStore) ([]time.Duration, error) {
	dir, err := os.MkdirTemp("", "bay-bench-lifecycle-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	g, err := startLCGateway(ctx, dir, ship, warmSize, open)
	if err != nil {
		return nil, err
	}
	defer g.stop()
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		if warmSize > 0 {
			// Untimed: let the pool refill (steady state).
			if err := g.waitWarm(ctx, warmSize); err != nil {
				return nil, err
			}
		}
		start := time.Now()
		sb, err := g.call("POST", "/v1/sandboxes", map[string]any{}, http.StatusCreated)
		if err != nil {
			return nil, err
		}
		id, _ := sb["id"].(string)
		res, err := g.call("POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "1+1"}, http.StatusOK)
		if err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
		if res["success"] != true {
			return nil, fmt.Errorf("python failed: %v", res)
		}
		if _, err := g.call("DELETE", "/v1/sandboxes/"+id, nil, http.StatusNoContent); err != nil {
			return nil, err
		}
	}
	sortDurations(out)
	return out, nil
}

// benchGCCycle seeds 10,000 sandboxes (half recording a session, each with
// a managed cargo, plus 1,000 external cargos) and times a full GC cycle
// through gc.Collector: with nothing due (the steady state, repeated), and
// once with 1% idle-expired and 1% TTL-expired sandboxes to clean.
func benchGCCycle(ctx context.Context, r *Reporter) error {
	dir, err := os.MkdirTemp("", "bay-bench-gc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "bay.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	alloc, err := local.New(local.Config{DataDir: dir}, hclog.NewNullLogger())
	if err != nil {
		return err
	}
	defer alloc.Close()
	set := profiles.DefaultSet()
	clock := time.Now().UTC().Truncate(time.Millisecond)
	now := func() time.Time { return clock }
	svc := service.New(service.Config{Now: now}, st, alloc, set, hclog.NewNullLogger())
	defer svc.Wait()
	collector := gc.New(gc.Config{Now: now}, st, svc, alloc, hclog.NewNullLogger())

	const n = 10_000
	future := clock.Add(time.Hour)
	past := clock.Add(-time.Minute)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("sandbox-%012d", i)
		created := clock.Add(-time.Hour + time.Duration(i)*time.Millisecond)
		sb := store.Sandbox{ID: id, Owner: fmt.Sprintf("user%d", i%50), ProfileID: profiles.PythonDefault,
			CargoID: fmt.Sprintf("ws-%012d", i), CreatedAt: created}
		if i%4 == 0 {
			sb.ExpiresAt = &future
		}
		if i%2 == 0 {
			sb.SessionID, sb.IdleExpiresAt = fmt.Sprintf("sess-%012d", i), &future
		}
		c := store.Cargo{ID: sb.CargoID, Owner: sb.Owner, Managed: true, ManagedBySandboxID: id,
			Backend: local.BackendLocalDir, SizeLimitMB: 1024, CreatedAt: created, LastAccessedAt: created}
		if err := st.CreateSandboxWithCargo(ctx, sb, c); err != nil {
			return err
		}
	}
	for i := 0; i < 1000; i++ {
		if err := st.CreateCargo(ctx, store.Cargo{ID: fmt.Sprintf("ws-ext%09d", i), Owner: "user1",
			Backend: local.BackendLocalDir, CreatedAt: clock, LastAccessedAt: clock}); err != nil {
			return err
		}
	}

	steady, err := Latencies(min(r.N, 50), func() error {
		rep, err := collector.RunOnce(ctx, nil)
		if err != nil {
			return err
		}
		if rep.TotalCleaned != 0 || rep.TotalErrors != 0 {
			return fmt.Errorf("steady cycle cleaned %d, errors %d", rep.TotalCleaned, rep.TotalErrors)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.ReportLatency("lifecycle_gc_cycle_10k_idle_system", steady)

	// 1% idle-expired sessions (no live compute: as after a restart) and 1%
	// past their TTL.
	for i := 0; i < n; i += 100 {
		id := fmt.Sprintf("sandbox-%012d", i)
		if err := st.SetIdleExpiry(ctx, id, &past); err != nil {
			return err
		}
		if err := st.SetExpiry(ctx, fmt.Sprintf("sandbox-%012d", i+1), &past); err != nil {
			return err
		}
	}
	start := time.Now()
	rep, err := collector.RunOnce(ctx, nil)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if rep.TotalErrors != 0 || rep.TotalCleaned != 2*n/100 {
		return fmt.Errorf("due cycle: cleaned %d, errors %d: %+v", rep.TotalCleaned, rep.TotalErrors, rep.Results)
	}
	r.Value("lifecycle_gc_cycle_10k_with_200_due", ms(elapsed), "ms")
	r.Value("lifecycle_gc_cycle_budget", gcCycleBudgetMS, "ms")
	return nil
}
