package service_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/gateway/apierr"
	"github.com/bay-sandbox/bay/gateway/service"
	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/store"
	"github.com/bay-sandbox/bay/store/sqlite"
)

// fakeAlloc is a hand-written allocator: sessions are map entries, Start
// blocks until released when gate is set.
type fakeAlloc struct {
	mu       sync.Mutex
	sessions map[string]allocator.StartRequest
	down     map[string]bool // sessionID/container
	starts   atomic.Int32
	gate     chan struct{}
	failNext error
	events   chan allocator.Event
}

func newFakeAlloc() *fakeAlloc {
	return &fakeAlloc{sessions: map[string]allocator.StartRequest{}, down: map[string]bool{}, events: make(chan allocator.Event, 16)}
}

func (f *fakeAlloc) Start(ctx context.Context, req allocator.StartRequest) (*allocator.Session, error) {
	f.starts.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failNext != nil {
		err := f.failNext
		f.failNext = nil
		return nil, fmt.Errorf("%w: %v", allocator.ErrStartFailed, err)
	}
	f.sessions[req.SessionID] = req
	eps := map[string]allocator.Endpoint{}
	for _, c := range req.Profile.Containers {
		eps[c.Name] = allocator.Endpoint{Container: c.Name, RuntimeType: c.RuntimeType, URL: "http://" + req.SessionID + "/" + c.Name}
	}
	return &allocator.Session{ID: req.SessionID, SandboxID: req.SandboxID, Endpoints: eps}, nil
}

func (f *fakeAlloc) Stop(ctx context.Context, id string) error { return f.Destroy(ctx, id) }
func (f *fakeAlloc) Destroy(ctx context.Context, id string) error {
	f.mu.Lock()
	delete(f.sessions, id)
	f.mu.Unlock()
	return nil
}
func (f *fakeAlloc) Resolve(ctx context.Context, id, c string) (allocator.Endpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sessions[id]; !ok {
		return allocator.Endpoint{}, allocator.ErrSessionGone
	}
	if f.down[id+"/"+c] {
		return allocator.Endpoint{}, allocator.ErrContainerDown
	}
	return allocator.Endpoint{Container: c, URL: "http://" + id + "/" + c}, nil
}
func (f *fakeAlloc) List(ctx context.Context) ([]allocator.SessionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []allocator.SessionInfo
	for id, r := range f.sessions {
		out = append(out, allocator.SessionInfo{SandboxID: r.SandboxID, SessionID: id})
	}
	return out, nil
}
func (f *fakeAlloc) CreateCargo(ctx context.Context, s allocator.CargoSpec) (allocator.Cargo, error) {
	return allocator.Cargo{ID: s.ID, Backend: "fake", Locator: "/fake/" + s.ID}, nil
}
func (f *fakeAlloc) DeleteCargo(ctx context.Context, c allocator.Cargo) error { return nil }
func (f *fakeAlloc) Events() <-chan allocator.Event                           { return f.events }
func (f *fakeAlloc) Close() error                                             { return nil }

type profileSet map[string]*profiles.Profile

func (p profileSet) Get(id string) (*profiles.Profile, bool) { v, ok := p[id]; return v, ok }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type env struct {
	st    *sqlite.Store
	alloc *fakeAlloc
	svc   *service.Manager
	clk   *clock
	sb    store.Sandbox
}

func setup(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p := &profiles.Profile{ID: "bp", IdleTimeout: time.Minute, Restart: profiles.RestartPolicy{Attempts: 3, Delay: time.Second},
		Containers: []profiles.Container{
			{Name: "ship", RuntimeType: "ship", Capabilities: []string{"python", "shell", "filesystem"}},
			{Name: "gull", RuntimeType: "gull", Capabilities: []string{"browser"}},
		}}
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	fa := newFakeAlloc()
	svc := service.New(service.Config{StartTimeout: 5 * time.Second, StartWait: 2 * time.Second, Now: clk.Now}, st, fa, profileSet{"bp": p}, hclog.NewNullLogger())
	runCtx, cancel := context.WithCancel(ctx)
	go svc.Run(runCtx)
	t.Cleanup(func() { cancel(); svc.Wait() })
	cg, err := svc.CreateCargo(ctx, "alice", "sandbox-000000000001", 0)
	if err != nil {
		t.Fatal(err)
	}
	sb := store.Sandbox{ID: "sandbox-000000000001", Owner: "alice", ProfileID: "bp", CargoID: cg.ID, CreatedAt: clk.Now()}
	if err := st.CreateSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	return &env{st: st, alloc: fa, svc: svc, clk: clk, sb: sb}
}

func TestSingleFlightColdStart(t *testing.T) {
	e := setup(t)
	e.alloc.gate = make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := e.svc.Route(context.Background(), e.sb, "python")
			errs <- err
		}()
	}
	// All five wait on one start.
	deadline := time.Now().Add(2 * time.Second)
	for e.svc.Status(e.sb) != service.StatusStarting && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := e.svc.Status(e.sb); got != service.StatusStarting {
		t.Fatalf("status %s, want starting", got)
	}
	close(e.alloc.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("route: %v", err)
		}
	}
	if n := e.alloc.starts.Load(); n != 1 {
		t.Fatalf("%d starts, want 1", n)
	}
	if got := e.svc.Status(e.sb); got != service.StatusReady {
		t.Fatalf("status %s", got)
	}
}

func TestStartWaitBoundGives503(t *testing.T) {
	e := setup(t)
	e.alloc.gate = make(chan struct{})
	defer close(e.alloc.gate)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := e.svc.Route(ctx, e.sb, "python")
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != apierr.CodeSessionNotReady || ae.RetryAfterMS <= 0 {
		t.Fatalf("err %v, want 503 session_not_ready", err)
	}
}

func TestFailedStartThenRetry(t *testing.T) {
	e := setup(t)
	e.alloc.failNext = errors.New("gull exited 1")
	_, _, err := e.svc.Route(context.Background(), e.sb, "python")
	if !errors.Is(err, allocator.ErrStartFailed) {
		t.Fatalf("err %v", err)
	}
	if got := e.svc.Status(e.sb); got != service.StatusFailed {
		t.Fatalf("status %s, want failed", got)
	}
	if _, _, err := e.svc.Route(context.Background(), e.sb, "python"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got := e.svc.Status(e.sb); got != service.StatusReady {
		t.Fatalf("status %s", got)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDegradedAndHealed(t *testing.T) {
	e := setup(t)
	_, sess, err := e.svc.Route(context.Background(), e.sb, "python")
	if err != nil {
		t.Fatal(err)
	}
	e.alloc.mu.Lock()
	e.alloc.down[sess+"/gull"] = true
	e.alloc.mu.Unlock()
	e.alloc.events <- allocator.Event{Kind: allocator.ContainerDown, SandboxID: e.sb.ID, SessionID: sess, Container: "gull"}
	waitFor(t, "degraded", func() bool { return e.svc.Status(e.sb) == service.StatusDegraded })

	_, _, err = e.svc.Route(context.Background(), e.sb, "browser")
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Details["container"] != "gull" || ae.Details["capability"] != "browser" {
		t.Fatalf("browser while degraded: %v", err)
	}
	if _, _, err := e.svc.Route(context.Background(), e.sb, "python"); err != nil {
		t.Fatalf("python while degraded: %v", err)
	}

	e.alloc.mu.Lock()
	delete(e.alloc.down, sess+"/gull")
	e.alloc.mu.Unlock()
	e.alloc.events <- allocator.Event{Kind: allocator.ContainerUp, SandboxID: e.sb.ID, SessionID: sess, Container: "gull"}
	waitFor(t, "ready", func() bool { return e.svc.Status(e.sb) == service.StatusReady })
}

func TestSessionGoneColdStartsAgain(t *testing.T) {
	e := setup(t)
	_, first, err := e.svc.Route(context.Background(), e.sb, "python")
	if err != nil {
		t.Fatal(err)
	}
	_ = e.alloc.Destroy(context.Background(), first)
	e.alloc.events <- allocator.Event{Kind: allocator.SessionGone, SandboxID: e.sb.ID, SessionID: first, Reason: "restarts exhausted"}
	waitFor(t, "idle", func() bool { return e.svc.Status(e.sb) == service.StatusIdle })
	_, second, err := e.svc.Route(context.Background(), e.sb, "python")
	if err != nil || second == first {
		t.Fatalf("second session %q (first %q): %v", second, first, err)
	}
}

func TestIdleReleaseRespectsTouch(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	if _, _, err := e.svc.Route(ctx, e.sb, "python"); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(30 * time.Second)
	if ok, err := e.svc.ReleaseIfIdle(ctx, e.sb, e.clk.Now()); ok || err != nil {
		t.Fatalf("released before the deadline: %v %v", ok, err)
	}
	e.clk.Advance(45 * time.Second) // 75 s after the call: past the 60 s idle timeout
	if ok, err := e.svc.ReleaseIfIdle(ctx, e.sb, e.clk.Now()); !ok || err != nil {
		t.Fatalf("not released after the deadline: %v %v", ok, err)
	}
	if got := e.svc.Status(e.sb); got != service.StatusIdle {
		t.Fatalf("status %s", got)
	}
	if l, _ := e.alloc.List(ctx); len(l) != 0 {
		t.Fatalf("sessions left: %v", l)
	}
	sb, _ := e.st.GetSandbox(ctx, "", e.sb.ID)
	if sb.SessionID != "" || sb.IdleExpiresAt != nil {
		t.Fatalf("stale facts: %+v", sb)
	}
}

func TestReconcileAdoptsAndClears(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	_, sess, err := e.svc.Route(ctx, e.sb, "python")
	if err != nil {
		t.Fatal(err)
	}
	// A second sandbox whose recorded session no longer exists.
	cg, _ := e.svc.CreateCargo(ctx, "alice", "sandbox-000000000002", 0)
	gone := store.Sandbox{ID: "sandbox-000000000002", Owner: "alice", ProfileID: "bp", CargoID: cg.ID, CreatedAt: e.clk.Now(), SessionID: "sess-00000000dead"}
	if err := e.st.CreateSandbox(ctx, gone); err != nil {
		t.Fatal(err)
	}
	// An orphan: running compute no sandbox knows.
	e.alloc.mu.Lock()
	e.alloc.sessions["sess-0000000orfan"] = allocator.StartRequest{SandboxID: "sandbox-unknown"}
	e.alloc.mu.Unlock()

	fresh := service.New(service.Config{Now: e.clk.Now}, e.st, e.alloc, profileSet{"bp": mustProfile(e)}, hclog.NewNullLogger())
	orphans, err := fresh.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(orphans) != 1 || orphans[0].SessionID != "sess-0000000orfan" {
		t.Fatalf("orphans %v", orphans)
	}
	if got := fresh.Status(e.sb); got != service.StatusReady || fresh.SessionID(e.sb.ID) != sess {
		t.Fatalf("adopted: %s %s", got, fresh.SessionID(e.sb.ID))
	}
	sb2, _ := e.st.GetSandbox(ctx, "", gone.ID)
	if sb2.SessionID != "" || fresh.Status(sb2) != service.StatusIdle {
		t.Fatalf("vanished session not cleared: %+v", sb2)
	}
	if n := e.alloc.starts.Load(); n != 1 {
		t.Fatalf("reconcile started sessions: %d", n)
	}
}

func mustProfile(e *env) *profiles.Profile {
	p, _ := e.svc.Profile(e.sb)
	return p
}

func TestExpiredRefusesCalls(t *testing.T) {
	e := setup(t)
	exp := e.clk.Now().Add(10 * time.Second)
	e.sb.ExpiresAt = &exp
	e.clk.Advance(11 * time.Second)
	if got := e.svc.Status(e.sb); got != service.StatusExpired {
		t.Fatalf("status %s", got)
	}
	_, _, err := e.svc.Route(context.Background(), e.sb, "python")
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Code != apierr.CodeExpired {
		t.Fatalf("err %v", err)
	}
	if n := e.alloc.starts.Load(); n != 0 {
		t.Fatalf("expired sandbox started compute")
	}
}

func TestMaxSessionsQuota(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	limited := service.New(service.Config{MaxSessions: 1, Now: e.clk.Now}, e.st, e.alloc, profileSet{"bp": mustProfile(e)}, hclog.NewNullLogger())
	defer limited.Wait()
	if _, _, err := limited.Route(ctx, e.sb, "python"); err != nil {
		t.Fatal(err)
	}
	cg, _ := limited.CreateCargo(ctx, "alice", "sandbox-000000000003", 0)
	other := store.Sandbox{ID: "sandbox-000000000003", Owner: "alice", ProfileID: "bp", CargoID: cg.ID, CreatedAt: e.clk.Now()}
	if err := e.st.CreateSandbox(ctx, other); err != nil {
		t.Fatal(err)
	}
	_, _, err := limited.Route(ctx, other, "python")
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Status != 429 || ae.Code != apierr.CodeQuota {
		t.Fatalf("second session: %v, want 429 quota_exceeded", err)
	}
	// The running sandbox keeps working; after it stops the other may start.
	if _, _, err := limited.Route(ctx, e.sb, "shell"); err != nil {
		t.Fatalf("running sandbox: %v", err)
	}
	if err := limited.Stop(ctx, e.sb); err != nil {
		t.Fatal(err)
	}
	if _, _, err := limited.Route(ctx, other, "python"); err != nil {
		t.Fatalf("after stop: %v", err)
	}
}

func TestSessionStartTouchesCargo(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	e.clk.Advance(90 * time.Second)
	if _, _, err := e.svc.Route(ctx, e.sb, "python"); err != nil {
		t.Fatal(err)
	}
	cg, err := e.st.GetCargo(ctx, "", e.sb.CargoID)
	if err != nil {
		t.Fatal(err)
	}
	if !cg.LastAccessedAt.Equal(e.clk.Now()) || !cg.LastAccessedAt.After(cg.CreatedAt) {
		t.Fatalf("last_accessed_at %v (created %v), want %v", cg.LastAccessedAt, cg.CreatedAt, e.clk.Now())
	}
}
