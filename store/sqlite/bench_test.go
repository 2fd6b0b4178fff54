package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/store"
)

// seedGC fills a file store with n sandboxes shaped like a busy gateway:
// every other one has a session, 1 in 10 of those is idle-expired, 1 in 20
// sandboxes is past its TTL, and each has a managed cargo.
// t0 is a fixed, millisecond-aligned instant.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func seedGC(b *testing.B, n int) (*Store, time.Time) {
	b.Helper()
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "bay.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	now := t0.Add(24 * time.Hour)
	past, future := now.Add(-time.Minute), now.Add(time.Hour)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("sb-%05d", i)
		sb := store.Sandbox{ID: id, Owner: fmt.Sprintf("user%d", i%50), ProfileID: "python-default", CargoID: "c-" + id,
			CreatedAt: t0.Add(time.Duration(i) * time.Second), ExpiresAt: &future}
		if i%2 == 0 {
			sb.SessionID = "sess-" + id
			sb.IdleExpiresAt = &future
			if i%20 == 0 {
				sb.IdleExpiresAt = &past
			}
		}
		if i%20 == 1 {
			sb.ExpiresAt = &past
		}
		c := store.Cargo{ID: "c-" + id, Owner: sb.Owner, Managed: true, ManagedBySandboxID: id, CreatedAt: sb.CreatedAt, LastAccessedAt: sb.CreatedAt}
		if err := s.CreateSandboxWithCargo(ctx, sb, c); err != nil {
			b.Fatal(err)
		}
	}
	return s, now
}

// BenchmarkGCCycle is one GC pass's reads over 10,000 sandboxes; the goal is
// well under 200 ms per cycle.
func BenchmarkGCCycle(b *testing.B) {
	ctx := context.Background()
	s, now := seedGC(b, 10_000)
	b.ResetTimer()
	for b.Loop() {
		idle, err := s.ListIdleExpired(ctx, now)
		if err != nil || len(idle) != 500 {
			b.Fatalf("idle = %d, %v", len(idle), err)
		}
		exp, err := s.ListExpired(ctx, now)
		if err != nil || len(exp) != 500 {
			b.Fatalf("expired = %d, %v", len(exp), err)
		}
		orphans, err := s.ListOrphanCargos(ctx)
		if err != nil || len(orphans) != 0 {
			b.Fatalf("orphans = %d, %v", len(orphans), err)
		}
	}
}

// BenchmarkListWithSession is the restart reconcile read (5,000 rows).
func BenchmarkListWithSession(b *testing.B) {
	ctx := context.Background()
	s, _ := seedGC(b, 10_000)
	b.ResetTimer()
	for b.Loop() {
		if got, err := s.ListWithSession(ctx); err != nil || len(got) != 5000 {
			b.Fatalf("with session = %d, %v", len(got), err)
		}
	}
}

// BenchmarkListPage is one 50-row page deep into an owner's sandboxes.
func BenchmarkListPage(b *testing.B) {
	ctx := context.Background()
	s, _ := seedGC(b, 10_000)
	_, cursor, err := s.ListSandboxes(ctx, store.SandboxFilter{Owner: "user7", Limit: 100})
	if err != nil || cursor == "" {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if page, _, err := s.ListSandboxes(ctx, store.SandboxFilter{Owner: "user7", Limit: 50, Cursor: cursor}); err != nil || len(page) != 50 {
			b.Fatalf("page = %d, %v", len(page), err)
		}
	}
}

// BenchmarkSetIdleExpiry is the write every capability call makes.
func BenchmarkSetIdleExpiry(b *testing.B) {
	ctx := context.Background()
	s, now := seedGC(b, 10_000)
	b.ResetTimer()
	i := 0
	for b.Loop() {
		t := now.Add(time.Duration(i) * time.Millisecond)
		if err := s.SetIdleExpiry(ctx, fmt.Sprintf("sb-%05d", i%10_000), &t); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
