package gateway_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/store"
)

func (h *harness) warm() []store.Sandbox {
	h.t.Helper()
	w, err := h.st.ListWarm(context.Background(), "python-warm")
	if err != nil {
		h.t.Fatal(err)
	}
	return w
}

// waitWarmRunning waits until the pool holds n warm sandboxes, each with a
// running session.
func (h *harness) waitWarmRunning(n int) []store.Sandbox {
	h.t.Helper()
	var w []store.Sandbox
	h.waitFor("warm pool to fill", 60*time.Second, func() bool {
		w = h.warm()
		if len(w) != n {
			return false
		}
		running := h.sessions()
		for _, sb := range w {
			if running[sb.ID] == "" {
				return false
			}
		}
		return true
	})
	return w
}

func TestWarmPoolClaimListAndReap(t *testing.T) {
	h := newHarness(t, harnessOpts{warmPoolSize: 2})
	ctx := context.Background()
	h.pool.Reconcile(ctx)
	warm := h.waitWarmRunning(2)
	warmIDs := map[string]bool{warm[0].ID: true, warm[1].ID: true}

	// Never listed, never readable, their cargos invisible, not counted.
	if n := h.countSandboxes(); n != 0 {
		t.Fatalf("warm sandboxes listed: %d", n)
	}
	for id := range warmIDs {
		h.wantErr(404, "not_found", "GET", sbPath(id), nil)
		h.wantErr(404, "not_found", "POST", sbPath(id, "/python/exec"), map[string]any{"code": "1"})
	}
	if got := h.must(200, "GET", "/v1/cargos?managed=true", nil)["items"].([]any); len(got) != 0 {
		t.Fatalf("warm cargos listed: %v", got)
	}
	// Nobody can pose as the pool's owner.
	h.wantErr(400, "validation_error", "GET", "/v1/cargos?managed=true", nil, owner("__warm_pool__"))

	// Never reaped as idle while unclaimed.
	h.clk.Advance(idleTimeout + time.Minute)
	if r := h.gcRun("idle_session", "orphan_session", "orphan_cargo")["idle_session"]; num(r["cleaned_count"]) != 0 {
		t.Fatalf("idle gc touched warm sandboxes: %v", r)
	}
	if len(h.waitWarmRunning(2)) != 2 {
		t.Fatal("warm pool shrank")
	}

	// Two concurrent creates claim two different warm sandboxes.
	var wg sync.WaitGroup
	got := make([]map[string]any, 2)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = h.create(map[string]any{"profile": "python-warm", "ttl": 3600})
		}()
	}
	wg.Wait()
	a, b := str(got[0]["id"]), str(got[1]["id"])
	if a == b || !warmIDs[a] || !warmIDs[b] {
		t.Fatalf("claims %s, %s; warm were %v", a, b, warmIDs)
	}
	for _, sb := range got {
		if sb["status"] != "ready" || sb["profile"] != "python-warm" || !parseTS(t, sb["created_at"]).Equal(h.clk.Now()) ||
			!parseTS(t, sb["expires_at"]).Equal(h.clk.Now().Add(3600*time.Second)) || sb["idle_expires_at"] == nil {
			t.Fatalf("claimed sandbox %v", sb)
		}
		// Its managed cargo now belongs to the claimer.
		cg := h.must(200, "GET", "/v1/cargos/"+str(sb["cargo_id"]), nil)
		if cg["managed"] != true || cg["managed_by_sandbox_id"] != sb["id"] {
			t.Fatalf("claimed cargo %v", cg)
		}
	}
	if n := h.countSandboxes(); n != 2 {
		t.Fatalf("%d sandboxes listed after two claims", n)
	}
	// The pool is empty now: a third create is a cold one.
	c := h.create(map[string]any{"profile": "python-warm"})
	if warmIDs[str(c["id"])] {
		t.Fatal("third create got a warm sandbox twice")
	}
	if r := h.python(a, "6*7"); r["success"] != true {
		t.Fatalf("claimed sandbox python: %v", r)
	}

	// Claimed sandboxes are ordinary: they idle out.
	h.clk.Advance(idleTimeout + time.Second)
	r := h.gcRun("idle_session")["idle_session"]
	if num(r["cleaned_count"]) < 2 {
		t.Fatalf("claimed sandboxes not reaped: %v", r)
	}
	if s := h.sessions(); s[a] != "" || s[b] != "" {
		t.Fatalf("claimed sessions still run: %v", s)
	}

	// Replenish: back to two fresh warm sandboxes.
	h.pool.Reconcile(ctx)
	rotated := h.waitWarmRunning(2)
	for _, sb := range rotated {
		if warmIDs[sb.ID] {
			t.Fatalf("replenished with a claimed sandbox %s", sb.ID)
		}
	}
	h.python(a, "1") // running again, so drain must leave it alone

	// Drain (gateway shutdown) removes every unclaimed one, nothing else.
	dirs := []string{h.cargoDir(rotated[0].CargoID), h.cargoDir(rotated[1].CargoID)}
	h.pool.Drain(ctx)
	if w := h.warm(); len(w) != 0 {
		t.Fatalf("warm sandboxes after drain: %v", w)
	}
	running := h.sessions()
	for i, sb := range rotated {
		if running[sb.ID] != "" || exists(dirs[i]) {
			t.Fatalf("drained warm sandbox %s left compute or cargo", sb.ID)
		}
	}
	if running[a] == "" {
		t.Fatal("drain destroyed a claimed sandbox")
	}
}

func TestWarmPoolReplenishAndRotate(t *testing.T) {
	h := newHarness(t, harnessOpts{warmPoolSize: 2, runWarmPool: true})
	old := h.waitWarmRunning(2)

	// A claim is replenished in the background.
	claimed := h.create(map[string]any{"profile": "python-warm"})
	if str(claimed["id"]) != old[0].ID {
		t.Fatalf("claimed %v, want the oldest warm sandbox %s", claimed["id"], old[0].ID)
	}
	now := h.waitWarmRunning(2)
	if (now[0].ID != old[1].ID && now[1].ID != old[1].ID) || now[0].ID == old[0].ID || now[1].ID == old[0].ID {
		t.Fatalf("pool after claim %v (was %v)", now, old)
	}

	// Rotation: after warm_rotate_ttl the old ones are replaced.
	oldDirs := []string{h.cargoDir(now[0].CargoID), h.cargoDir(now[1].CargoID)}
	h.clk.Advance(warmRotateTTL)
	h.pool.Claimed("python-warm") // wake the background loop
	h.waitFor("rotation", 60*time.Second, func() bool {
		for _, sb := range h.warm() {
			if sb.ID == now[0].ID || sb.ID == now[1].ID {
				return false
			}
		}
		return true
	})
	h.waitWarmRunning(2)
	running := h.sessions()
	for i, sb := range now {
		if running[sb.ID] != "" || exists(oldDirs[i]) {
			t.Fatalf("rotated warm sandbox %s left compute or cargo behind", sb.ID)
		}
	}
	// The claimed sandbox is the user's: rotation leaves it alone.
	if running[str(claimed["id"])] == "" {
		t.Fatal("rotation destroyed a claimed sandbox")
	}
	h.python(str(claimed["id"]), "1")
}
