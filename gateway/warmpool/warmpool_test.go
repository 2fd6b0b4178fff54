package warmpool_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/gateway/service"
	"github.com/bay-sandbox/bay/gateway/warmpool"
	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/store"
	"github.com/bay-sandbox/bay/store/sqlite"
)

// fakeSessions records the pool's calls against a real store.
type fakeSessions struct {
	st        *sqlite.Store
	mu        sync.Mutex
	now       time.Time
	warmedUp  []string
	deleted   []string
	failCargo error
}

func (f *fakeSessions) CreateCargo(ctx context.Context, owner, managedBy string, sizeMB int) (store.Cargo, error) {
	if f.failCargo != nil {
		return store.Cargo{}, f.failCargo
	}
	cg := store.Cargo{ID: service.NewID("ws-"), Owner: owner, Managed: true, ManagedBySandboxID: managedBy, CreatedAt: f.Now(), LastAccessedAt: f.Now()}
	return cg, f.st.CreateCargo(ctx, cg)
}

func (f *fakeSessions) DeleteSandbox(ctx context.Context, sb store.Sandbox) error {
	f.mu.Lock()
	f.deleted = append(f.deleted, sb.ID)
	f.mu.Unlock()
	return f.st.DeleteSandbox(ctx, sb.ID)
}

func (f *fakeSessions) Warmup(sb store.Sandbox) {
	f.mu.Lock()
	f.warmedUp = append(f.warmedUp, sb.ID)
	f.mu.Unlock()
}

func (f *fakeSessions) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }

func (f *fakeSessions) advance(d time.Duration) { f.mu.Lock(); f.now = f.now.Add(d); f.mu.Unlock() }

// staleStore answers ListWarm with what it returned before a claim, as a
// reconcile that listed just before a create claimed would see it.
type staleStore struct {
	*sqlite.Store
	stale []store.Sandbox
}

func (s *staleStore) ListWarm(ctx context.Context, profileID string) ([]store.Sandbox, error) {
	if s.stale != nil {
		return s.stale, nil
	}
	return s.Store.ListWarm(ctx, profileID)
}

func setup(t *testing.T) (*sqlite.Store, *fakeSessions, []profiles.Profile) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ps := []profiles.Profile{
		{ID: "cold"},
		{ID: "warm2", WarmPoolSize: 2, WarmRotateTTL: 10 * time.Minute},
		{ID: "warm1", WarmPoolSize: 1},
	}
	return st, &fakeSessions{st: st, now: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)}, ps
}

func warmIDs(t *testing.T, st *sqlite.Store, profile string) []string {
	t.Helper()
	w, err := st.ListWarm(context.Background(), profile)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, sb := range w {
		if !sb.Warm || sb.Owner != warmpool.Owner || (profile != "" && sb.ProfileID != profile) {
			t.Fatalf("bad warm row %+v", sb)
		}
		ids = append(ids, sb.ID)
	}
	return ids
}

func TestReconcileFillsAndRotates(t *testing.T) {
	st, ss, ps := setup(t)
	ctx := context.Background()
	p := warmpool.New(ps, st, ss, hclog.NewNullLogger())
	if !p.Enabled() || warmpool.New(ps[:1], st, ss, hclog.NewNullLogger()).Enabled() {
		t.Fatal("Enabled is wrong")
	}
	p.Reconcile(ctx)
	first := warmIDs(t, st, "warm2")
	if len(first) != 2 || len(warmIDs(t, st, "warm1")) != 1 || len(warmIDs(t, st, "cold")) != 0 {
		t.Fatalf("pools after fill: warm2 %v", first)
	}
	if len(ss.warmedUp) != 3 {
		t.Fatalf("warm-ups %v", ss.warmedUp)
	}
	// Each warm sandbox has its own managed cargo owned by the pool.
	for _, id := range first {
		sb, err := st.GetSandbox(ctx, "", id)
		if err != nil {
			t.Fatal(err)
		}
		cg, err := st.GetCargo(ctx, warmpool.Owner, sb.CargoID)
		if err != nil || !cg.Managed || cg.ManagedBySandboxID != id {
			t.Fatalf("cargo of %s: %+v %v", id, cg, err)
		}
	}
	// A full pool is left alone.
	p.Reconcile(ctx)
	if got := warmIDs(t, st, "warm2"); len(got) != 2 || len(ss.deleted) != 0 {
		t.Fatalf("second reconcile changed a full pool: %v, deleted %v", got, ss.deleted)
	}
	// Rotation after warm_rotate_ttl (warm1 has none: it is kept).
	ss.advance(10 * time.Minute)
	p.Reconcile(ctx)
	rotated := warmIDs(t, st, "warm2")
	if len(rotated) != 2 || rotated[0] == first[0] || rotated[0] == first[1] || rotated[1] == first[0] || rotated[1] == first[1] {
		t.Fatalf("rotated %v, first %v", rotated, first)
	}
	if len(ss.deleted) != 2 {
		t.Fatalf("deleted %v", ss.deleted)
	}
	if len(warmIDs(t, st, "warm1")) != 1 {
		t.Fatal("warm1 pool changed")
	}
}

func TestRotationAndDrainNeverDeleteAClaimedSandbox(t *testing.T) {
	st, ss, ps := setup(t)
	ctx := context.Background()
	stale := &staleStore{Store: st}
	p := warmpool.New(ps[:2], stale, ss, hclog.NewNullLogger())
	p.Reconcile(ctx)
	before, err := st.ListWarm(ctx, "warm2")
	if err != nil {
		t.Fatal(err)
	}
	claimed, ok, err := st.ClaimWarm(ctx, "warm2", "alice", ss.Now(), 0, nil)
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	// The reconcile listed before the claim: rotation must not touch it.
	stale.stale = before
	ss.advance(time.Hour)
	p.Reconcile(ctx)
	for _, id := range ss.deleted {
		if id == claimed.ID {
			t.Fatal("rotation deleted a claimed sandbox")
		}
	}
	got, err := st.GetSandbox(ctx, "alice", claimed.ID)
	if err != nil || got.Warm {
		t.Fatalf("claimed sandbox after rotation: %+v %v", got, err)
	}
	// Same for a drain working from a stale list.
	stale.stale = append(before, claimed)
	ss.deleted = nil
	p.Drain(ctx)
	for _, id := range ss.deleted {
		if id == claimed.ID {
			t.Fatal("drain deleted a claimed sandbox")
		}
	}
	if _, err := st.GetSandbox(ctx, "alice", claimed.ID); err != nil {
		t.Fatalf("claimed sandbox after drain: %v", err)
	}
	stale.stale = nil
	p.Drain(ctx)
	if w := warmIDs(t, st, ""); len(w) != 0 {
		t.Fatalf("warm sandboxes after drain: %v", w)
	}
}

func TestFailedAddStopsTheRound(t *testing.T) {
	st, ss, ps := setup(t)
	ss.failCargo = errors.New("no space")
	p := warmpool.New(ps, st, ss, hclog.NewNullLogger())
	p.Reconcile(context.Background())
	if w := warmIDs(t, st, ""); len(w) != 0 || len(ss.warmedUp) != 0 {
		t.Fatalf("warm after failures: %v", w)
	}
	ss.failCargo = nil
	p.Reconcile(context.Background())
	if w := warmIDs(t, st, ""); len(w) != 3 {
		t.Fatalf("warm after recovery: %v", w)
	}
}

func TestRunReplenishesOnClaim(t *testing.T) {
	st, ss, ps := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	p := warmpool.New(ps[1:2], st, ss, hclog.NewNullLogger())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	wait := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for len(warmIDs(t, st, "warm2")) != n {
			if time.Now().After(deadline) {
				t.Fatalf("pool never reached %d", n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wait(2)
	if _, ok, err := st.ClaimWarm(context.Background(), "warm2", "bob", ss.Now(), 0, nil); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	wait(1)
	p.Claimed("warm2")
	wait(2)
}
