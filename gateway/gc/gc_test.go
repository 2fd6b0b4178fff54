package gc_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/gateway/gc"
	"github.com/bay-sandbox/bay/store"
)

// fakeStore serves fixed lists and records what GC asked for.
type fakeStore struct {
	mu            sync.Mutex
	idle, expired []store.Sandbox
	withSession   []store.Sandbox
	orphans       []store.Cargo
	orphanBefore  time.Time
	deletedCargos []string
	calls         []string
	block         chan struct{} // when set, ListIdleExpired waits on it
	entered       chan struct{}
	listErr       error
}

func (f *fakeStore) call(name string) {
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
}

func (f *fakeStore) ListIdleExpired(ctx context.Context, now time.Time) ([]store.Sandbox, error) {
	f.call("idle")
	if f.block != nil {
		f.entered <- struct{}{}
		<-f.block
	}
	return f.idle, f.listErr
}

func (f *fakeStore) ListExpired(ctx context.Context, now time.Time) ([]store.Sandbox, error) {
	f.call("expired")
	return f.expired, nil
}

func (f *fakeStore) ListOrphanCargosBefore(ctx context.Context, before time.Time) ([]store.Cargo, error) {
	f.call("orphan_cargo")
	f.mu.Lock()
	f.orphanBefore = before
	f.mu.Unlock()
	return f.orphans, nil
}

func (f *fakeStore) ListWithSession(ctx context.Context) ([]store.Sandbox, error) {
	f.call("with_session")
	return f.withSession, nil
}

func (f *fakeStore) DeleteCargo(ctx context.Context, id string) error {
	f.mu.Lock()
	f.deletedCargos = append(f.deletedCargos, id)
	f.mu.Unlock()
	return nil
}

func (f *fakeStore) PurgeIdem(ctx context.Context, now time.Time) (int, error) { return 0, nil }

func (f *fakeStore) PurgeTombstones(ctx context.Context, before time.Time) (int, error) {
	return 0, nil
}

type fakeSessions struct {
	mu       sync.Mutex
	released []string
	deleted  []string
	failOn   map[string]error
	notIdle  map[string]bool
	inMemory map[string]string // sandbox → session known only in memory
}

func (f *fakeSessions) ReleaseIfIdle(ctx context.Context, sb store.Sandbox, now time.Time) (bool, error) {
	if err := f.failOn[sb.ID]; err != nil {
		return false, err
	}
	if f.notIdle[sb.ID] {
		return false, nil
	}
	f.mu.Lock()
	f.released = append(f.released, sb.ID)
	f.mu.Unlock()
	return true, nil
}

func (f *fakeSessions) DeleteSandbox(ctx context.Context, sb store.Sandbox) error {
	if err := f.failOn[sb.ID]; err != nil {
		return err
	}
	f.mu.Lock()
	f.deleted = append(f.deleted, sb.ID)
	f.mu.Unlock()
	return nil
}

func (f *fakeSessions) SessionID(sandboxID string) string { return f.inMemory[sandboxID] }

type fakeCompute struct {
	mu        sync.Mutex
	running   []allocator.SessionInfo
	destroyed []string
	inUse     map[string]bool
	failCargo map[string]error
	listErr   error
}

func (f *fakeCompute) List(ctx context.Context) ([]allocator.SessionInfo, error) {
	return f.running, f.listErr
}

func (f *fakeCompute) Destroy(ctx context.Context, id string) error {
	f.mu.Lock()
	f.destroyed = append(f.destroyed, id)
	f.mu.Unlock()
	return nil
}

func (f *fakeCompute) DeleteCargo(ctx context.Context, c allocator.Cargo) error {
	if f.inUse[c.ID] {
		return fmt.Errorf("delete %s: %w", c.ID, allocator.ErrCargoInUse)
	}
	return f.failCargo[c.ID]
}

func sb(id string) store.Sandbox { return store.Sandbox{ID: id} }

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func newCollector(st *fakeStore, ss *fakeSessions, c *fakeCompute, cfg gc.Config) *gc.Collector {
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return t0 }
	}
	return gc.New(cfg, st, ss, c, hclog.NewNullLogger())
}

func byName(rep gc.Report) map[string]gc.TaskResult {
	out := map[string]gc.TaskResult{}
	for _, r := range rep.Results {
		out[r.TaskName] = r
	}
	return out
}

func TestPerItemErrorsNeverAbortTheCycle(t *testing.T) {
	st := &fakeStore{
		idle:        []store.Sandbox{sb("sandbox-i1"), sb("sandbox-i2"), sb("sandbox-i3")},
		expired:     []store.Sandbox{sb("sandbox-e1"), sb("sandbox-e2")},
		orphans:     []store.Cargo{{ID: "ws-o1", Managed: true}, {ID: "ws-o2", Managed: true}, {ID: "ws-o3", Managed: true}},
		withSession: []store.Sandbox{{ID: "sandbox-a", SessionID: "sess-a"}},
	}
	ss := &fakeSessions{
		failOn:   map[string]error{"sandbox-i1": errors.New("stop failed"), "sandbox-e1": errors.New("destroy failed")},
		notIdle:  map[string]bool{"sandbox-i2": true},
		inMemory: map[string]string{"sandbox-b": "sess-b"},
	}
	c := &fakeCompute{
		running: []allocator.SessionInfo{
			{SandboxID: "sandbox-a", SessionID: "sess-a"},
			{SandboxID: "sandbox-b", SessionID: "sess-b"},   // starting: only in memory yet
			{SandboxID: "sandbox-x", SessionID: "sess-x"},   // nobody's
			{SandboxID: "sandbox-a", SessionID: "sess-old"}, // a's previous session
		},
		inUse:     map[string]bool{"ws-o2": true},
		failCargo: map[string]error{"ws-o3": errors.New("disk on fire")},
	}
	g := newCollector(st, ss, c, gc.Config{})
	rep, err := g.RunOnce(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := byName(rep)
	check := func(task string, cleaned, skipped int, errSubstr ...string) {
		t.Helper()
		got := r[task]
		if got.CleanedCount != cleaned || got.SkippedCount != skipped || len(got.Errors) != len(errSubstr) {
			t.Fatalf("%s: %+v, want cleaned %d skipped %d errors %v", task, got, cleaned, skipped, errSubstr)
		}
		for i, s := range errSubstr {
			if !strings.Contains(got.Errors[i], s) {
				t.Fatalf("%s error %q lacks %q", task, got.Errors[i], s)
			}
		}
	}
	check(gc.TaskIdleSession, 1, 1, "sandbox-i1: stop failed")
	check(gc.TaskExpiredSandbox, 1, 0, "sandbox-e1: destroy failed")
	check(gc.TaskOrphanCargo, 1, 1, "ws-o3: disk on fire")
	check(gc.TaskOrphanSession, 2, 2)
	if rep.TotalCleaned != 5 || rep.TotalErrors != 3 {
		t.Fatalf("totals %+v", rep)
	}
	sort.Strings(c.destroyed)
	if strings.Join(c.destroyed, ",") != "sess-old,sess-x" {
		t.Fatalf("destroyed %v", c.destroyed)
	}
	if strings.Join(st.deletedCargos, ",") != "ws-o1" {
		t.Fatalf("deleted cargo rows %v (in-use and failed storage must keep their rows)", st.deletedCargos)
	}
	// Orphan cargos get a grace period before they count.
	if want := t0.Add(-5 * time.Minute); !st.orphanBefore.Equal(want) {
		t.Fatalf("orphan cargo cut-off %v, want %v", st.orphanBefore, want)
	}
}

func TestListErrorsAreReported(t *testing.T) {
	st := &fakeStore{listErr: errors.New("db locked")}
	c := &fakeCompute{listErr: errors.New("allocator down")}
	rep, err := newCollector(st, &fakeSessions{}, c, gc.Config{}).RunOnce(context.Background(), []string{gc.TaskIdleSession, gc.TaskOrphanSession})
	if err != nil {
		t.Fatal(err)
	}
	r := byName(rep)
	if len(r[gc.TaskIdleSession].Errors) != 1 || len(r[gc.TaskOrphanSession].Errors) != 1 || rep.TotalErrors != 2 {
		t.Fatalf("report %+v", rep)
	}
}

func TestOnlyNamedTasksRunInCanonicalOrder(t *testing.T) {
	st := &fakeStore{}
	g := newCollector(st, &fakeSessions{}, &fakeCompute{}, gc.Config{})
	rep, err := g.RunOnce(context.Background(), []string{gc.TaskOrphanCargo, gc.TaskIdleSession})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 || rep.Results[0].TaskName != gc.TaskIdleSession || rep.Results[1].TaskName != gc.TaskOrphanCargo {
		t.Fatalf("results %+v", rep.Results)
	}
	if strings.Join(st.calls, ",") != "idle,orphan_cargo" {
		t.Fatalf("store calls %v", st.calls)
	}
	for _, r := range rep.Results {
		if r.Errors == nil {
			t.Fatal("errors must be an empty list, not null")
		}
	}
	if _, err := g.RunOnce(context.Background(), []string{"idle_session", "nope"}); err == nil {
		t.Fatal("unknown task accepted")
	}
	if err := gc.Validate([]string{"orphan_session"}); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentCycleIsRefusedAndStatusShowsRunning(t *testing.T) {
	st := &fakeStore{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	g := newCollector(st, &fakeSessions{}, &fakeCompute{}, gc.Config{InstanceID: "i-1", Interval: 90 * time.Second,
		Tasks: map[string]bool{gc.TaskIdleSession: true}})
	if s := g.Status(); s.IsRunning || s.LastRunAt != nil {
		t.Fatalf("status before any run %+v", s)
	}
	done := make(chan error, 1)
	go func() { _, err := g.RunOnce(context.Background(), nil); done <- err }()
	<-st.entered
	if s := g.Status(); !s.IsRunning {
		t.Fatal("status does not show the running cycle")
	}
	if _, err := g.RunOnce(context.Background(), []string{gc.TaskOrphanCargo}); !errors.Is(err, gc.ErrRunning) {
		t.Fatalf("second cycle: %v, want ErrRunning", err)
	}
	close(st.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := g.Status()
	if s.IsRunning || s.LastRunAt == nil || *s.LastRunAt != "2026-03-04T05:06:07.000Z" || s.InstanceID != "i-1" || s.IntervalSeconds != 90 {
		t.Fatalf("status after %+v", s)
	}
	if !s.Tasks[gc.TaskIdleSession]["enabled"] || s.Tasks[gc.TaskOrphanCargo]["enabled"] || len(s.Tasks) != 4 {
		t.Fatalf("status tasks %v", s.Tasks)
	}
	// Free again.
	st.block = nil
	if _, err := g.RunOnce(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

func TestRunLoopRunsEnabledTasksAtStartup(t *testing.T) {
	st := &fakeStore{}
	g := newCollector(st, &fakeSessions{}, &fakeCompute{}, gc.Config{Enabled: true, Interval: time.Hour,
		Tasks: map[string]bool{gc.TaskExpiredSandbox: true, gc.TaskOrphanCargo: true}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for g.Status().LastRunAt == nil {
		if time.Now().After(deadline) {
			t.Fatal("no cycle at start-up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	st.mu.Lock()
	defer st.mu.Unlock()
	if strings.Join(st.calls, ",") != "expired,orphan_cargo" {
		t.Fatalf("start-up cycle ran %v, want only the enabled tasks", st.calls)
	}

	// Disabled: Run returns at once without a cycle.
	st2 := &fakeStore{}
	off := newCollector(st2, &fakeSessions{}, &fakeCompute{}, gc.Config{Enabled: false})
	off.Run(context.Background())
	if len(st2.calls) != 0 {
		t.Fatalf("disabled collector ran %v", st2.calls)
	}
}
