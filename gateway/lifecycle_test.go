package gateway_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parseTS(t *testing.T, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("timestamp %v is not a string", v)
	}
	tm, err := time.Parse("2006-01-02T15:04:05.000Z", s)
	if err != nil {
		t.Fatalf("timestamp %q: %v", s, err)
	}
	return tm
}

func TestTTLExtendAndExpiry(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	now := h.clk.Now()

	sb := h.create(map[string]any{"ttl": 60})
	id := str(sb["id"])
	if got := parseTS(t, sb["expires_at"]); !got.Equal(now.Add(60 * time.Second)) {
		t.Fatalf("expires_at %v, want %v", got, now.Add(60*time.Second))
	}
	// No TTL: expires_at null, extend refused as infinite.
	inf := h.create(map[string]any{"ttl": 0})
	if inf["expires_at"] != nil {
		t.Fatalf("ttl 0: expires_at %v, want null", inf["expires_at"])
	}
	h.wantErr(409, "sandbox_ttl_infinite", "POST", sbPath(str(inf["id"]), "/extend_ttl"), map[string]any{"extend_by": 10})
	h.wantErr(422, "validation_error", "POST", "/v1/sandboxes", map[string]any{"ttl": -1})
	h.wantErr(422, "validation_error", "POST", "/v1/sandboxes", map[string]any{"ttl": "soon"})

	// extend_by <= 0 is a 400; a missing one a 422.
	h.wantErr(400, "validation_error", "POST", sbPath(id, "/extend_ttl"), map[string]any{"extend_by": 0})
	h.wantErr(400, "validation_error", "POST", sbPath(id, "/extend_ttl"), map[string]any{"extend_by": -5})
	h.wantErr(422, "validation_error", "POST", sbPath(id, "/extend_ttl"), map[string]any{})

	// new expiry = max(old, now) + extend_by: old is later than now here.
	h.clk.Advance(30 * time.Second)
	ext := h.must(200, "POST", sbPath(id, "/extend_ttl"), map[string]any{"extend_by": 100})
	if got := parseTS(t, ext["expires_at"]); !got.Equal(now.Add(160 * time.Second)) {
		t.Fatalf("extended expires_at %v, want %v", got, now.Add(160*time.Second))
	}
	if got := parseTS(t, h.must(200, "GET", sbPath(id), nil)["expires_at"]); !got.Equal(now.Add(160 * time.Second)) {
		t.Fatalf("stored expires_at %v", got)
	}

	// Run something so a session exists when the TTL passes.
	if r := h.python(id, "x = 41\nx + 1"); strings.TrimSpace(str(r["output"])) != "42" {
		t.Fatalf("python output %v", r["output"])
	}
	cargo := str(sb["cargo_id"])
	dir := h.cargoDir(cargo)

	// At the deadline the sandbox reads expired at once, before any GC.
	h.clk.Advance(130 * time.Second)
	if got := h.must(200, "GET", sbPath(id), nil)["status"]; got != "expired" {
		t.Fatalf("status %v, want expired", got)
	}
	list := h.must(200, "GET", "/v1/sandboxes?status=expired", nil)
	if items := list["items"].([]any); len(items) != 1 || str(items[0].(map[string]any)["id"]) != id {
		t.Fatalf("status=expired list %v", items)
	}
	h.wantErr(409, "sandbox_expired", "POST", sbPath(id, "/extend_ttl"), map[string]any{"extend_by": 10})
	h.wantErr(409, "sandbox_expired", "POST", sbPath(id, "/python/exec"), map[string]any{"code": "1"})
	h.wantErr(409, "sandbox_expired", "POST", sbPath(id, "/shell/exec"), map[string]any{"command": "true"})
	h.wantErr(409, "sandbox_expired", "GET", sbPath(id, "/filesystem/directories"), nil)
	h.wantErr(409, "sandbox_expired", "POST", sbPath(id, "/keepalive"), nil)

	// GC deletes it: compute, row and managed cargo go; the other stays.
	h.clk.Advance(time.Second)
	res := h.gcRun("expired_sandbox")
	if num(res["expired_sandbox"]["cleaned_count"]) != 1 {
		t.Fatalf("expired_sandbox result %v", res["expired_sandbox"])
	}
	if len(res) != 1 {
		t.Fatalf("only expired_sandbox should run, got %v", res)
	}
	h.wantErr(404, "not_found", "GET", sbPath(id), nil)
	if _, ok := h.sessions()[id]; ok {
		t.Fatalf("session of the expired sandbox still runs")
	}
	if exists(dir) {
		t.Fatalf("managed cargo dir %s still exists", dir)
	}
	h.wantErr(404, "not_found", "GET", "/v1/cargos/"+cargo, nil)
	h.must(200, "GET", sbPath(str(inf["id"])), nil)
}

func TestKeepaliveNeverStartsCompute(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	id := str(h.create(nil)["id"])
	// Let the create's warm-up finish, then stop the session.
	h.waitFor("warm-up", 30*time.Second, func() bool { return h.sessions()[id] != "" })
	h.must(200, "POST", sbPath(id, "/stop"), nil)
	h.must(200, "POST", sbPath(id, "/stop"), nil) // idempotent
	if _, ok := h.sessions()[id]; ok {
		t.Fatal("stop left the session running")
	}
	got := h.must(200, "POST", sbPath(id, "/keepalive"), nil)
	if got["status"] != "ok" {
		t.Fatalf("keepalive %v", got)
	}
	time.Sleep(300 * time.Millisecond) // a start, if one were triggered, would show by now
	if _, ok := h.sessions()[id]; ok {
		t.Fatal("keepalive started compute")
	}
	v := h.must(200, "GET", sbPath(id), nil)
	if v["status"] != "idle" || v["idle_expires_at"] != nil || v["containers"] != nil {
		t.Fatalf("stopped sandbox view %v", v)
	}

	// With a session, keepalive pushes idle_expires_at to now + idle timeout.
	h.python(id, "1")
	h.clk.Advance(5 * time.Minute)
	h.must(200, "POST", sbPath(id, "/keepalive"), nil)
	v = h.must(200, "GET", sbPath(id), nil)
	if got, want := parseTS(t, v["idle_expires_at"]), h.clk.Now().Add(idleTimeout); !got.Equal(want) {
		t.Fatalf("idle_expires_at %v, want %v", got, want)
	}
	// The original deadline has passed, but keepalive moved it: no reap.
	h.clk.Advance(6 * time.Minute)
	if r := h.gcRun("idle_session")["idle_session"]; num(r["cleaned_count"]) != 0 {
		t.Fatalf("idle gc reaped a kept-alive session: %v", r)
	}
	if h.sessions()[id] == "" {
		t.Fatal("kept-alive session is gone")
	}
}

func TestIdleReleaseKeepsCargoAndFiles(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	sb := h.create(nil)
	id := str(sb["id"])
	h.python(id, "open('keep.txt','w').write('still here')")
	first := h.sessions()[id]
	if first == "" {
		t.Fatal("no session after a python call")
	}
	v := h.must(200, "GET", sbPath(id), nil)
	if v["status"] != "ready" {
		t.Fatalf("status %v", v["status"])
	}
	if got, want := parseTS(t, v["idle_expires_at"]), h.clk.Now().Add(idleTimeout); !got.Equal(want) {
		t.Fatalf("idle_expires_at %v, want %v", got, want)
	}

	// A capability call pushes the deadline.
	h.clk.Advance(idleTimeout - time.Minute)
	h.must(200, "GET", sbPath(id, "/filesystem/files?path=keep.txt"), nil)
	h.clk.Advance(2 * time.Minute)
	if r := h.gcRun("idle_session")["idle_session"]; num(r["cleaned_count"]) != 0 {
		t.Fatalf("reaped although a call refreshed the deadline: %v", r)
	}

	h.clk.Advance(idleTimeout)
	r := h.gcRun("idle_session")["idle_session"]
	if num(r["cleaned_count"]) != 1 || len(r["errors"].([]any)) != 0 {
		t.Fatalf("idle_session result %v", r)
	}
	if _, ok := h.sessions()[id]; ok {
		t.Fatal("idle session still runs after GC")
	}
	v = h.must(200, "GET", sbPath(id), nil)
	if v["status"] != "idle" || v["idle_expires_at"] != nil || v["cargo_id"] != sb["cargo_id"] {
		t.Fatalf("released sandbox view %v", v)
	}
	if !exists(filepath.Join(h.cargoDir(str(sb["cargo_id"])), "keep.txt")) {
		t.Fatal("idle release lost the workspace file")
	}

	// The next call cold-starts on the same cargo, files intact.
	got := h.python(id, "open('keep.txt').read()")
	if strings.TrimSpace(str(got["output"])) != "'still here'" {
		t.Fatalf("after cold start: %v", got)
	}
	if s := h.sessions()[id]; s == "" || s == first {
		t.Fatalf("session after cold start %q (first %q)", s, first)
	}
	// History keeps the session id of each call.
	hist := h.must(200, "GET", sbPath(id, "/history?exec_type=python"), nil)
	entries := hist["entries"].([]any)
	if len(entries) != 2 {
		t.Fatalf("history %v", hist)
	}
	if s0, s1 := str(entries[0].(map[string]any)["session_id"]), str(entries[1].(map[string]any)["session_id"]); s0 == s1 || s1 != first {
		t.Fatalf("history session ids %q, %q (first %q)", s0, s1, first)
	}
}

func TestDeleteSandboxIdempotentForOwner(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	sb := h.create(nil)
	id := str(sb["id"])
	h.python(id, "1")
	dir := h.cargoDir(str(sb["cargo_id"]))

	h.wantErr(404, "not_found", "DELETE", sbPath(id), nil, owner("mallory"))
	h.must(http.StatusNoContent, "DELETE", sbPath(id), nil)
	if _, ok := h.sessions()[id]; ok {
		t.Fatal("delete left compute running")
	}
	if exists(dir) {
		t.Fatal("delete left the managed cargo")
	}
	// Again: still 204 for the owner, 404 for anyone else and for reads.
	h.must(http.StatusNoContent, "DELETE", sbPath(id), nil)
	h.wantErr(404, "not_found", "DELETE", sbPath(id), nil, owner("mallory"))
	h.wantErr(404, "not_found", "GET", sbPath(id), nil)
	h.wantErr(404, "not_found", "POST", sbPath(id, "/python/exec"), map[string]any{"code": "1"})
	h.wantErr(404, "not_found", "DELETE", sbPath("sandbox-000000000000"), nil)
}

// TestIdleReapSparesACallInFlight: a call running past the idle deadline is
// not cut off by the idle GC; the deadline counts from the end of the call.
func TestIdleReapSparesACallInFlight(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	id := str(h.create(nil)["id"])
	h.python(id, "import time")
	done := make(chan resp, 1)
	go func() {
		done <- h.do("POST", sbPath(id, "/python/exec"), `{"code":"time.sleep(1.5); 'slept'"}`)
	}()
	time.Sleep(500 * time.Millisecond) // the call is running in Ship now
	h.clk.Advance(idleTimeout + time.Minute)
	r := h.gcRun("idle_session")["idle_session"]
	if num(r["cleaned_count"]) != 0 || num(r["skipped_count"]) != 1 {
		t.Fatalf("idle GC during a call: %v", r)
	}
	res := <-done
	if res.Status != 200 || !strings.Contains(str(res.json(t)["output"]), "slept") {
		t.Fatalf("call in flight: %d %s", res.Status, res.Body)
	}
	v := h.must(200, "GET", sbPath(id), nil)
	if got, want := parseTS(t, v["idle_expires_at"]), h.clk.Now().Add(idleTimeout); !got.Equal(want) {
		t.Fatalf("idle_expires_at %v, want %v (from the end of the call)", got, want)
	}
	if r := h.gcRun("idle_session")["idle_session"]; num(r["cleaned_count"]) != 0 {
		t.Fatalf("reaped right after the call: %v", r)
	}
}
