package service_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/gateway/service"
)

const clusterLease = 600 * time.Millisecond

// twoGateways is setup's store and allocator with a second gateway on
// them; both run in shared mode on the real clock (leases expire in real
// time).
func twoGateways(t *testing.T) (*env, *service.Manager, *service.Manager) {
	t.Helper()
	e := setup(t)
	p, _ := e.svc.Profile(e.sb)
	mk := func(name string) *service.Manager {
		m := service.New(service.Config{StartTimeout: 5 * time.Second, StartWait: 4 * time.Second,
			Shared: true, Holder: name, LeaseTTL: clusterLease}, e.st, e.alloc, profileSet{"bp": p}, hclog.NewNullLogger())
		t.Cleanup(m.Wait)
		return m
	}
	return e, mk("gw-a"), mk("gw-b")
}

func TestClusterConcurrentFirstCallsOneSession(t *testing.T) {
	e, a, b := twoGateways(t)
	e.alloc.gate = make(chan struct{})
	var wg sync.WaitGroup
	sessions := make([]string, 20)
	errs := make([]error, 20)
	for i := range sessions {
		m := a
		if i%2 == 1 {
			m = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, sessions[i], errs[i] = m.Route(context.Background(), e.sb, "python")
		}()
	}
	time.Sleep(100 * time.Millisecond) // all twenty are waiting on the one start
	close(e.alloc.gate)
	wg.Wait()
	for i := range sessions {
		if errs[i] != nil || sessions[i] != sessions[0] {
			t.Fatalf("call %d: session %q, %v; want %q", i, sessions[i], errs[i], sessions[0])
		}
	}
	if n := e.alloc.starts.Load(); n != 1 {
		t.Fatalf("allocator starts = %d; want 1", n)
	}
}

// A gateway died mid-start: its lease lapses, the session it recorded never
// reached the allocator. The next gateway cleans it up and starts afresh.
func TestClusterTakesOverADeadGatewaysStart(t *testing.T) {
	e, _, b := twoGateways(t)
	ctx := context.Background()
	if ok, err := e.st.AcquireLease(ctx, "start/"+e.sb.ID, "dead-gw", time.Now(), clusterLease); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if err := e.st.SetSession(ctx, e.sb.ID, "sess-dead"); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_, sess, err := b.Route(ctx, e.sb, "python")
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(began); waited < clusterLease/2 {
		t.Fatalf("took over after %v, before the dead gateway's lease lapsed", waited)
	}
	if sess == "sess-dead" || e.alloc.starts.Load() != 1 {
		t.Fatalf("session %q after %d starts; want a fresh one", sess, e.alloc.starts.Load())
	}
	row, _ := e.st.GetSandbox(ctx, "", e.sb.ID)
	if row.SessionID != sess {
		t.Fatalf("row records %q; want %q", row.SessionID, sess)
	}
	if _, _, err := e.st.GetLease(ctx, "start/"+e.sb.ID); err == nil {
		t.Fatal("start lease kept after the start")
	}
}

// A gateway died after its start reached the allocator: the next gateway
// adopts the session instead of starting another.
func TestClusterAdoptsADeadGatewaysSession(t *testing.T) {
	e, _, b := twoGateways(t)
	ctx := context.Background()
	p, _ := e.svc.Profile(e.sb)
	if _, err := e.alloc.Start(ctx, allocator.StartRequest{SandboxID: e.sb.ID, SessionID: "sess-left", Profile: p}); err != nil {
		t.Fatal(err)
	}
	e.alloc.starts.Store(0)
	if ok, _ := e.st.AcquireLease(ctx, "start/"+e.sb.ID, "dead-gw", time.Now(), clusterLease); !ok {
		t.Fatal("lease")
	}
	if err := e.st.SetSession(ctx, e.sb.ID, "sess-left"); err != nil {
		t.Fatal(err)
	}
	_, sess, err := b.Route(ctx, e.sb, "python")
	if err != nil || sess != "sess-left" || e.alloc.starts.Load() != 0 {
		t.Fatalf("route = %q, %v after %d starts; want the left session adopted", sess, err, e.alloc.starts.Load())
	}
}

// Status, degraded and stop read and act the same on a gateway that did not
// start the session.
func TestClusterOtherGatewaySeesAndStopsTheSession(t *testing.T) {
	e, a, b := twoGateways(t)
	ctx := context.Background()
	_, sess, err := a.Route(ctx, e.sb, "python")
	if err != nil {
		t.Fatal(err)
	}
	row, _ := e.st.GetSandbox(ctx, "", e.sb.ID)
	e.alloc.mu.Lock()
	e.alloc.down[sess+"/gull"] = true
	e.alloc.mu.Unlock()
	if got := b.Status(row); got != service.StatusDegraded {
		t.Fatalf("status on B = %s; want degraded", got)
	}
	if err := b.Stop(ctx, row); err != nil {
		t.Fatal(err)
	}
	if _, err := e.alloc.Resolve(ctx, sess, "ship"); err == nil {
		t.Fatal("B's stop left the session A started running")
	}
	row, _ = e.st.GetSandbox(ctx, "", e.sb.ID)
	if row.SessionID != "" {
		t.Fatalf("row still records %q", row.SessionID)
	}
}
