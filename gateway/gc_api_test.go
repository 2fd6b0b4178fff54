package gateway_test

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/gateway/gc"
	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/store"
	"github.com/bay-sandbox/bay/store/sqlite"
)

func TestGCRunValidatesAndRunsOnlyNamedTasks(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.wantErr(422, "validation_error", "POST", "/v1/admin/gc/run", map[string]any{"tasks": []string{"idle_session", "bogus"}})
	h.wantErr(422, "validation_error", "POST", "/v1/admin/gc/run", map[string]any{"tasks": "idle_session"})
	h.wantErr(401, "unauthorized", "POST", "/v1/admin/gc/run", nil, func(r *http.Request) { r.Header.Del("Authorization") })

	for _, body := range []any{nil, map[string]any{}} {
		rep := h.must(200, "POST", "/v1/admin/gc/run", body)
		var names []string
		for _, r := range rep["results"].([]any) {
			m := r.(map[string]any)
			names = append(names, str(m["task_name"]))
			if _, ok := m["errors"].([]any); !ok {
				t.Fatalf("errors must be a list: %v", m)
			}
		}
		if want := []string{"idle_session", "expired_sandbox", "orphan_cargo", "orphan_session"}; !equal(names, want) {
			t.Fatalf("body %v ran %v, want all %v", body, names, want)
		}
		for _, k := range []string{"total_cleaned", "total_errors", "duration_ms"} {
			if _, ok := rep[k].(float64); !ok {
				t.Fatalf("report lacks %s: %v", k, rep)
			}
		}
	}
	res := h.gcRun("orphan_session", "idle_session")
	var names []string
	for n := range res {
		names = append(names, n)
	}
	sort.Strings(names)
	if !equal(names, []string{"idle_session", "orphan_session"}) {
		t.Fatalf("ran %v", names)
	}

	st := h.must(200, "GET", "/v1/admin/gc/status", nil)
	if st["enabled"] != false || st["is_running"] != false || st["instance_id"] != "test-instance" || num(st["interval_seconds"]) != 3600 {
		t.Fatalf("gc status %v", st)
	}
	tasks := st["tasks"].(map[string]any)
	for _, n := range []string{"idle_session", "expired_sandbox", "orphan_cargo", "orphan_session"} {
		if e, ok := tasks[n].(map[string]any); !ok || e["enabled"] != true {
			t.Fatalf("status task %s: %v", n, tasks[n])
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestGCOrphanSession(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	// A live sandbox's session must survive.
	id := str(h.create(nil)["id"])
	h.python(id, "1")
	// Compute no sandbox owns, as a crashed gateway would leave it.
	cg, err := h.alloc.CreateCargo(ctx, allocator.CargoSpec{ID: "ws-ghost0000000"})
	if err != nil {
		t.Fatal(err)
	}
	p := &profiles.Profile{ID: profiles.PythonDefault, Containers: []profiles.Container{profiles.NewContainer("ship", profiles.RuntimeShip)}}
	if _, err := h.alloc.Start(ctx, allocator.StartRequest{SandboxID: "sandbox-ghost0000000", SessionID: "sess-ghost0000000", Owner: "x", Profile: p, Cargo: cg, Secret: "ghost-secret"}); err != nil {
		t.Fatal(err)
	}
	if h.sessions()["sandbox-ghost0000000"] == "" {
		t.Fatal("ghost session not listed")
	}
	r := h.gcRun("orphan_session")["orphan_session"]
	if num(r["cleaned_count"]) != 1 || num(r["skipped_count"]) != 1 || len(r["errors"].([]any)) != 0 {
		t.Fatalf("orphan_session result %v", r)
	}
	s := h.sessions()
	if _, ok := s["sandbox-ghost0000000"]; ok {
		t.Fatal("orphan session survived GC")
	}
	if s[id] == "" {
		t.Fatal("GC destroyed a sandbox's own session")
	}
	h.python(id, "2")
}

func TestGCOrphanCargo(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	// A managed cargo whose sandbox row never got written (crash between
	// the two inserts), an external cargo, and a live sandbox's cargo.
	orphan, err := h.svc.CreateCargo(ctx, "default", "sandbox-gone00000000", 0)
	if err != nil {
		t.Fatal(err)
	}
	ext := h.must(201, "POST", "/v1/cargos", nil)
	live := h.create(nil)

	// Within the grace period a fresh orphan is left alone (its sandbox may
	// be being written right now).
	if r := h.gcRun("orphan_cargo")["orphan_cargo"]; num(r["cleaned_count"]) != 0 {
		t.Fatalf("orphan_cargo inside grace: %v", r)
	}
	h.clk.Advance(6 * time.Minute)
	r := h.gcRun("orphan_cargo")["orphan_cargo"]
	if num(r["cleaned_count"]) != 1 || len(r["errors"].([]any)) != 0 {
		t.Fatalf("orphan_cargo result %v", r)
	}
	if exists(orphan.Locator) {
		t.Fatal("orphan cargo directory survived")
	}
	if _, err := h.st.GetCargo(ctx, "", orphan.ID); err == nil {
		t.Fatal("orphan cargo row survived")
	}
	h.must(200, "GET", "/v1/cargos/"+str(ext["id"]), nil)
	h.must(200, "GET", "/v1/cargos/"+str(live["cargo_id"]), nil)
	if !exists(h.cargoDir(str(live["cargo_id"]))) {
		t.Fatal("live cargo directory removed")
	}
}

// TestGCRacesUserCalls runs idle and expiry GC over and over while users
// call their sandboxes; afterwards every running session must belong to a
// sandbox that records it, and every sandbox must still work.
func TestGCRacesUserCalls(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ids := make([]string, 3)
	for i := range ids {
		ids[i] = str(h.create(nil)["id"])
	}
	// A sandbox that will expire, deleted by GC while someone calls it.
	doomedSB := h.create(map[string]any{"ttl": 60})
	doomed := str(doomedSB["id"])

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses, doomedStatuses := map[int]int{}, map[int]int{}
	for _, id := range append(append([]string(nil), ids...), doomed) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := h.do("POST", sbPath(id, "/python/exec"), `{"code":"1+1"}`)
				mu.Lock()
				if id == doomed {
					doomedStatuses[r.Status]++
				} else {
					statuses[r.Status]++
				}
				mu.Unlock()
				if r.Status == 404 {
					return // deleted by GC
				}
			}
		}()
	}
	for range 8 {
		h.clk.Advance(idleTimeout + time.Second)
		h.gcRun("idle_session", "expired_sandbox", "orphan_session")
		time.Sleep(150 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	h.svc.Wait()

	mu.Lock()
	defer mu.Unlock()
	// Idle GC never cuts a call short: live sandboxes answer every call.
	if len(statuses) != 1 || statuses[200] == 0 {
		t.Fatalf("live sandboxes answered %v, want only 200s", statuses)
	}
	// The expiring one answers, then refuses (expired), then is gone; a
	// call caught by the deletion itself may see its runtime vanish (502).
	for st := range doomedStatuses {
		switch st {
		case 200, 404, 409, 502:
		default:
			t.Fatalf("expiring sandbox answered %d (all: %v)", st, doomedStatuses)
		}
	}
	if doomedStatuses[404] == 0 {
		t.Fatalf("expired sandbox never reported gone: %v", doomedStatuses)
	}
	// Consistency: running compute ⇔ a sandbox recording that session.
	ctx := context.Background()
	running := h.sessions()
	for sbID, sess := range running {
		sb, err := h.st.GetSandbox(ctx, "", sbID)
		if err != nil {
			t.Fatalf("session %s runs for sandbox %s that is gone: %v", sess, sbID, err)
		}
		if sb.SessionID != sess {
			t.Fatalf("sandbox %s records session %q, allocator runs %q", sbID, sb.SessionID, sess)
		}
	}
	withSession, err := h.st.ListWithSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sb := range withSession {
		if running[sb.ID] != sb.SessionID {
			t.Fatalf("sandbox %s records session %s that does not run", sb.ID, sb.SessionID)
		}
	}
	if _, err := h.st.GetSandbox(ctx, "", doomed); err == nil {
		t.Fatal("expired sandbox not deleted")
	}
	if _, err := h.st.GetCargo(ctx, "", str(doomedSB["cargo_id"])); err == nil {
		t.Fatal("expired sandbox's managed cargo not deleted")
	}
	for _, id := range ids {
		h.python(id, "2")
	}
}

// TestDeleteRacesColdStart deletes sandboxes while calls cold-start them:
// no compute may outlive its sandbox.
func TestDeleteRacesColdStart(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for range 4 {
		id := str(h.create(nil)["id"])
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() { defer wg.Done(); h.do("POST", sbPath(id, "/python/exec"), `{"code":"1"}`) }()
		}
		time.Sleep(20 * time.Millisecond)
		if r := h.do("DELETE", sbPath(id), nil); r.Status != 204 {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		wg.Wait()
	}
	h.svc.Wait()
	if s := h.sessions(); len(s) != 0 {
		t.Fatalf("compute outlived deleted sandboxes: %v", s)
	}
}

// blockingStore holds a GC cycle inside its first task until released.
type blockingStore struct {
	*sqlite.Store
	entered, release chan struct{}
}

func (b *blockingStore) ListIdleExpired(ctx context.Context, now time.Time) ([]store.Sandbox, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Store.ListIdleExpired(ctx, now)
}

func TestGCRunLockedWhileACycleRuns(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	bs := &blockingStore{Store: h.st, entered: make(chan struct{}, 1), release: make(chan struct{})}
	g := gc.New(gc.Config{InstanceID: "blocking", Now: h.clk.Now}, bs, h.svc, h.alloc, hclog.NewNullLogger())
	h.srv.SetGC(g)
	done := make(chan resp, 1)
	go func() { done <- h.do("POST", "/v1/admin/gc/run", map[string]any{"tasks": []string{"idle_session"}}) }()
	<-bs.entered
	if st := h.must(200, "GET", "/v1/admin/gc/status", nil); st["is_running"] != true {
		t.Fatalf("status while running %v", st)
	}
	h.wantErr(423, "locked", "POST", "/v1/admin/gc/run", nil)
	close(bs.release)
	if r := <-done; r.Status != 200 {
		t.Fatalf("first cycle: %d %s", r.Status, r.Body)
	}
	if st := h.must(200, "GET", "/v1/admin/gc/status", nil); st["is_running"] != false {
		t.Fatalf("status after %v", st)
	}
}
