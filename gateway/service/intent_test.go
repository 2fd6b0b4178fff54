package service_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/gateway/service"
	"github.com/bay-sandbox/bay/store"
)

// outageAlloc is fakeAlloc with a switchable outage: while down, Stop and
// DeleteCargo fail as an unreachable Nomad does.
type outageAlloc struct {
	*fakeAlloc
	mu      sync.Mutex
	down    bool
	deleted []string
}

var errDown = &allocator.BackendError{Kind: allocator.ErrUnavailable, Op: "stop job", Err: errors.New("connection refused")}

func (o *outageAlloc) setDown(v bool) { o.mu.Lock(); o.down = v; o.mu.Unlock() }
func (o *outageAlloc) isDown() bool   { o.mu.Lock(); defer o.mu.Unlock(); return o.down }
func (o *outageAlloc) Stop(ctx context.Context, id string) error {
	if o.isDown() {
		return errDown
	}
	return o.fakeAlloc.Stop(ctx, id)
}
func (o *outageAlloc) DeleteCargo(ctx context.Context, c allocator.Cargo) error {
	if o.isDown() {
		return errDown
	}
	o.mu.Lock()
	o.deleted = append(o.deleted, c.ID)
	o.mu.Unlock()
	return nil
}

// TestIntentsSurviveAnOutage: a stop and a delete asked while the backend
// is down are recorded (not done, the sandboxes read stopping / deleting,
// the session stays in the store so it can still be found) and carried out
// by CarryOut once it is back: the session is released, the stopped
// sandbox reads idle, the deleted one is gone with its cargo and tombstoned.
func TestIntentsSurviveAnOutage(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	oa := &outageAlloc{fakeAlloc: e.alloc}
	svc := service.New(service.Config{StartTimeout: 5 * time.Second, StartWait: 2 * time.Second, Now: e.clk.Now, QuickIntent: time.Second},
		e.st, oa, profileSet{"bp": mustProfile(e)}, hclog.NewNullLogger())
	t.Cleanup(svc.Wait)

	if _, _, err := svc.Route(ctx, e.sb, "python"); err != nil {
		t.Fatal(err)
	}
	sessionID := svc.SessionID(e.sb.ID)
	oa.setDown(true)
	done, err := svc.RequestStop(ctx, e.sb)
	if err != nil || done {
		t.Fatalf("stop while down = done %v, err %v; want recorded, not done", done, err)
	}
	sb, _ := e.st.GetSandbox(ctx, "", e.sb.ID)
	if sb.Intent != store.IntentStop || svc.Status(sb) != service.StatusStopping || sb.SessionID != sessionID {
		t.Fatalf("after the failed stop: intent %q status %q session %q (want %q)", sb.Intent, svc.Status(sb), sb.SessionID, sessionID)
	}
	// A call meanwhile must not start a second session over the first.
	if _, _, err := svc.Route(ctx, sb, "python"); err == nil {
		t.Fatal("a call on a sandbox with a pending stop started a session while the old one could not be stopped")
	}
	done, err = svc.RequestDelete(ctx, sb)
	if err != nil || done {
		t.Fatalf("delete while down = done %v, err %v", done, err)
	}
	sb, _ = e.st.GetSandbox(ctx, "", e.sb.ID)
	if sb.Intent != store.IntentDelete || svc.Status(sb) != service.StatusDeleting {
		t.Fatalf("after the failed delete: intent %q status %q", sb.Intent, svc.Status(sb))
	}
	if _, _, err := svc.Route(ctx, sb, "python"); err == nil {
		t.Fatal("a call on a deleting sandbox was routed")
	}

	oa.setDown(false)
	if err := svc.CarryOut(ctx, sb); err != nil {
		t.Fatalf("carry out after the outage: %v", err)
	}
	if _, err := e.st.GetSandbox(ctx, "", e.sb.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("sandbox still stored after the delete: %v", err)
	}
	if gone, _ := e.st.SandboxTombstoned(ctx, "alice", e.sb.ID); !gone {
		t.Fatal("no tombstone: a repeated DELETE would be 404")
	}
	if sessions, _ := oa.List(ctx); len(sessions) != 0 {
		t.Fatalf("sessions left: %v", sessions)
	}
	if len(oa.deleted) != 1 || oa.deleted[0] != e.sb.CargoID {
		t.Fatalf("cargo storage deleted %v, want %s", oa.deleted, e.sb.CargoID)
	}
}
