package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/bay-sandbox/bay/store"
)

// testIntents: a stop or delete is recorded first and reads back; a delete
// replaces a stop but a stop never replaces a delete; clearing drops only
// the intent that was carried out; pending intents list oldest first.
func testIntents(t *testing.T, newDB NewDB) {
	ctx := context.Background()
	s := newDB(t)()
	mustCreateSandbox(t, s, store.Sandbox{ID: "sb-a", Owner: "alice", ProfileID: "p", CreatedAt: at(0)})
	mustCreateSandbox(t, s, store.Sandbox{ID: "sb-b", Owner: "alice", ProfileID: "p", CreatedAt: at(0)})
	if err := s.SetIntent(ctx, "sb-missing", store.IntentStop, at(1)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("intent on a missing sandbox: %v, want ErrNotFound", err)
	}
	if err := s.SetIntent(ctx, "sb-a", "explode", at(1)); err == nil {
		t.Fatal("unknown intent accepted")
	}
	if err := s.SetIntent(ctx, "sb-b", store.IntentStop, at(2)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetIntent(ctx, "sb-a", store.IntentStop, at(3)); err != nil {
		t.Fatal(err)
	}
	sb, err := s.GetSandbox(ctx, "alice", "sb-a")
	if err != nil || sb.Intent != store.IntentStop || sb.IntentAt == nil || !sb.IntentAt.Equal(at(3)) {
		t.Fatalf("after stop intent: %+v %v", sb, err)
	}
	// A delete replaces the stop; a later stop does not replace the delete.
	if err := s.SetIntent(ctx, "sb-a", store.IntentDelete, at(4)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetIntent(ctx, "sb-a", store.IntentStop, at(5)); err != nil {
		t.Fatal(err)
	}
	if sb, _ := s.GetSandbox(ctx, "", "sb-a"); sb.Intent != store.IntentDelete {
		t.Fatalf("stop replaced a pending delete: %+v", sb)
	}
	pending, err := s.ListIntents(ctx)
	if err != nil || len(pending) != 2 || pending[0].ID != "sb-b" || pending[1].ID != "sb-a" {
		t.Fatalf("ListIntents = %v %v, want sb-b (oldest) then sb-a", ids(pending), err)
	}
	// Finishing the stop does not clear the delete recorded meanwhile.
	if err := s.ClearIntent(ctx, "sb-a", store.IntentStop); err != nil {
		t.Fatal(err)
	}
	if sb, _ := s.GetSandbox(ctx, "", "sb-a"); sb.Intent != store.IntentDelete {
		t.Fatalf("clearing the stop dropped the delete: %+v", sb)
	}
	if err := s.ClearIntent(ctx, "sb-b", store.IntentStop); err != nil {
		t.Fatal(err)
	}
	if sb, _ := s.GetSandbox(ctx, "", "sb-b"); sb.Intent != "" || sb.IntentAt != nil {
		t.Fatalf("cleared intent still there: %+v", sb)
	}
	if err := s.ClearIntent(ctx, "sb-missing", store.IntentStop); err != nil {
		t.Fatalf("clear on a missing sandbox: %v", err)
	}
	pending, _ = s.ListIntents(ctx)
	if len(pending) != 1 || pending[0].ID != "sb-a" {
		t.Fatalf("ListIntents after clearing = %v", ids(pending))
	}
}

// testCargoPool: pooled cargos are invisible to users until claimed; each
// claim takes the oldest of the backend exactly once, also when several
// gateways claim at once.
func testCargoPool(t *testing.T, newDB NewDB) {
	ctx := context.Background()
	open := newDB(t)
	s := open()
	for i, id := range []string{"ws-p1", "ws-p2", "ws-p3"} {
		if err := s.CreateCargo(ctx, store.Cargo{ID: id, Owner: store.PoolOwner, Backend: "b", Locator: id,
			SizeLimitMB: 1024, CreatedAt: at(i), LastAccessedAt: at(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateCargo(ctx, store.Cargo{ID: "ws-other", Owner: store.PoolOwner, Backend: "other", CreatedAt: at(0), LastAccessedAt: at(0)}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountPooledCargos(ctx, "b"); err != nil || n != 3 {
		t.Fatalf("CountPooledCargos = %d %v, want 3", n, err)
	}
	c, ok, err := s.ClaimPooledCargo(ctx, "b", "alice", "sb-1", at(10))
	if err != nil || !ok || c.ID != "ws-p1" || c.Owner != "alice" || !c.Managed || c.ManagedBySandboxID != "sb-1" || !c.CreatedAt.Equal(at(10)) {
		t.Fatalf("claim = %+v %v %v, want ws-p1 managed by sb-1 for alice", c, ok, err)
	}
	if got, err := s.GetCargo(ctx, "alice", "ws-p1"); err != nil || got.ManagedBySandboxID != "sb-1" {
		t.Fatalf("claimed cargo reads %+v %v", got, err)
	}
	// Two gateways claim the remaining two at once: each gets one.
	var wg sync.WaitGroup
	got := make([]string, 4)
	for i := range got {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if c, ok, err := open().ClaimPooledCargo(ctx, "b", "bob", "sb-x", at(11)); err == nil && ok {
				got[i] = c.ID
			} else if err != nil {
				t.Errorf("concurrent claim: %v", err)
			}
		}(i)
	}
	wg.Wait()
	seen := map[string]int{}
	for _, id := range got {
		if id != "" {
			seen[id]++
		}
	}
	if len(seen) != 2 || seen["ws-p2"] != 1 || seen["ws-p3"] != 1 {
		t.Fatalf("concurrent claims got %v, want ws-p2 and ws-p3 once each", got)
	}
	if _, ok, err := s.ClaimPooledCargo(ctx, "b", "carol", "sb-2", at(12)); ok || err != nil {
		t.Fatalf("claim from an empty pool: ok=%v err=%v", ok, err)
	}
	if n, _ := s.CountPooledCargos(ctx, "other"); n != 1 {
		t.Fatalf("another backend's pool changed: %d", n)
	}
}
