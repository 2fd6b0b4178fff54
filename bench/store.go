package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/bay-sandbox/bay/store"
	"github.com/bay-sandbox/bay/store/sqlite"
)

// gcBudgetMS is the goal for one GC cycle's store reads over 10,000 sandboxes.
const gcBudgetMS = 200

// benchStore measures the state store on a file database of 10,000
// sandboxes (half with a session, 5% idle-expired, 5% past their TTL, each
// with a managed cargo): a GC cycle's reads, a deep list page, and the idle
// refresh every capability call writes.
func benchStore(ctx context.Context, r *Reporter) error {
	dir, err := os.MkdirTemp("", "bay-bench-store-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := sqlite.Open(ctx, filepath.Join(dir, "bay.db"))
	if err != nil {
		return err
	}
	defer s.Close()

	const n = 10_000
	base := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Millisecond)
	now := base.Add(24 * time.Hour)
	past, future := now.Add(-time.Minute), now.Add(time.Hour)
	seedStart := time.Now()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("sb-%05d", i)
		sb := store.Sandbox{ID: id, Owner: fmt.Sprintf("user%d", i%50), ProfileID: "python-default", CargoID: "c-" + id,
			CreatedAt: base.Add(time.Duration(i) * time.Second), ExpiresAt: &future}
		if i%2 == 0 {
			sb.SessionID, sb.IdleExpiresAt = "sess-"+id, &future
			if i%20 == 0 {
				sb.IdleExpiresAt = &past
			}
		}
		if i%20 == 1 {
			sb.ExpiresAt = &past
		}
		c := store.Cargo{ID: "c-" + id, Owner: sb.Owner, Managed: true, ManagedBySandboxID: id, CreatedAt: sb.CreatedAt, LastAccessedAt: sb.CreatedAt}
		if err := s.CreateSandboxWithCargo(ctx, sb, c); err != nil {
			return err
		}
	}
	r.Value("store_create_sandbox_with_cargo_mean", ms(time.Since(seedStart))/n, "ms")

	gc, err := Latencies(r.N, func() error {
		idle, err := s.ListIdleExpired(ctx, now)
		if err != nil {
			return err
		}
		exp, err := s.ListExpired(ctx, now)
		if err != nil {
			return err
		}
		if len(idle) != n/20 || len(exp) != n/20 {
			return fmt.Errorf("gc saw %d idle, %d expired; want %d each", len(idle), len(exp), n/20)
		}
		_, err = s.ListOrphanCargos(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("gc cycle: %w", err)
	}
	r.ReportLatency("store_gc_cycle_10k", gc)
	r.Ratio("store_gc_cycle_10k_p99_vs_budget", Pct(gc, 99), gcBudgetMS)

	_, cursor, err := s.ListSandboxes(ctx, store.SandboxFilter{Owner: "user7", Limit: 100})
	if err != nil {
		return err
	}
	page, err := Latencies(r.N, func() error {
		_, _, err := s.ListSandboxes(ctx, store.SandboxFilter{Owner: "user7", Limit: 50, Cursor: cursor})
		return err
	})
	if err != nil {
		return fmt.Errorf("list page: %w", err)
	}
	r.ReportLatency("store_list_page_50", page)

	i := 0
	touch, err := Latencies(r.N, func() error {
		t := now.Add(time.Duration(i) * time.Millisecond)
		i++
		return s.SetIdleExpiry(ctx, fmt.Sprintf("sb-%05d", i%n), &t)
	})
	if err != nil {
		return fmt.Errorf("set idle expiry: %w", err)
	}
	r.ReportLatency("store_set_idle_expiry", touch)
	return nil
}
