package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/bay-sandbox/bay/internal/testutil/pgtest"
	"github.com/bay-sandbox/bay/store"
	"github.com/bay-sandbox/bay/store/postgres"
)

// benchPGStore compares the shared PostgreSQL store with the embedded SQLite
// one in the same run, through the gateway's HTTP API with the local
// allocator and the real ship binary: the cold start (create to first
// Python result, warm pool off) and the overhead of a capability call on a
// running session (python/exec "1+1", which reads the sandbox, refreshes
// the idle deadline and writes history). PostgreSQL is a throwaway cluster
// from the Debian binaries on loopback; without them the suite says so.
func benchPGStore(ctx context.Context, r *Reporter) error {
	ship, err := Binary("ship")
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	srv, err := pgtest.Start(sctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgstore: skipped: %v\n", err)
		return nil
	}
	defer srv.Stop()
	openPG := func(ctx context.Context, dir string) (store.Store, error) {
		dsn, err := srv.CreateDB(ctx, "")
		if err != nil {
			return nil, err
		}
		return postgres.Open(ctx, dsn)
	}

	n := min(r.N, 15)
	coldLite, err := firstResultLatenciesOn(ctx, ship, 0, n, openSQLite)
	if err != nil {
		return fmt.Errorf("sqlite cold start: %w", err)
	}
	coldPG, err := firstResultLatenciesOn(ctx, ship, 0, n, openPG)
	if err != nil {
		return fmt.Errorf("postgres cold start: %w", err)
	}
	r.ReportLatency("store_sqlite_create_to_first_python_cold", coldLite)
	r.ReportLatency("store_postgres_create_to_first_python_cold", coldPG)
	r.Ratio("store_postgres_vs_sqlite_cold_start_p50", Pct(coldPG, 50), Pct(coldLite, 50))

	callLite, err := callLatencies(ctx, ship, r.N, openSQLite)
	if err != nil {
		return fmt.Errorf("sqlite calls: %w", err)
	}
	callPG, err := callLatencies(ctx, ship, r.N, openPG)
	if err != nil {
		return fmt.Errorf("postgres calls: %w", err)
	}
	r.ReportLatency("store_sqlite_python_call", callLite)
	r.ReportLatency("store_postgres_python_call", callPG)
	r.Ratio("store_postgres_vs_sqlite_call_p50", Pct(callPG, 50), Pct(callLite, 50))
	r.Value("store_postgres_minus_sqlite_call_p50", Pct(callPG, 50)-Pct(callLite, 50), "ms")
	return nil
}

// callLatencies times n python/exec calls on one running sandbox.
func callLatencies(ctx context.Context, ship string, n int, open openStore) ([]time.Duration, error) {
	dir, err := os.MkdirTemp("", "bay-bench-pgstore-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	g, err := startLCGateway(ctx, dir, ship, 0, open)
	if err != nil {
		return nil, err
	}
	defer g.stop()
	sb, err := g.call("POST", "/v1/sandboxes", map[string]any{}, http.StatusCreated)
	if err != nil {
		return nil, err
	}
	path := "/v1/sandboxes/" + sb["id"].(string) + "/python/exec"
	for i := 0; i < 5; i++ { // warm up: session, interpreter, connections
		if _, err := g.call("POST", path, map[string]any{"code": "1+1"}, http.StatusOK); err != nil {
			return nil, err
		}
	}
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := g.call("POST", path, map[string]any{"code": "1+1"}, http.StatusOK); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	sortDurations(out)
	return out, nil
}
