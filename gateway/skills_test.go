package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/store"
)

func itemsOf(t *testing.T, m map[string]any) []map[string]any {
	t.Helper()
	raw, ok := m["items"].([]any)
	if !ok {
		t.Fatalf("no items list: %v", m)
	}
	out := make([]map[string]any, len(raw))
	for i, e := range raw {
		out[i] = e.(map[string]any)
	}
	return out
}

func TestSkillPayloads(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	created := h.must(201, "POST", "/v1/skills/payloads", map[string]any{
		"payload": map[string]any{"commands": []string{"open https://example.org", "get title"}}, "kind": "browser_script",
	})
	ref := str(created["payload_ref"])
	if !strings.HasPrefix(ref, "blob:blob-") || created["kind"] != "browser_script" {
		t.Fatalf("create payload: %v", created)
	}
	got := h.must(200, "GET", "/v1/skills/payloads/"+ref, nil)
	cmds := got["payload"].(map[string]any)["commands"].([]any)
	if got["payload_ref"] != ref || got["kind"] != "browser_script" || len(cmds) != 2 || cmds[1] != "get title" {
		t.Fatalf("get payload: %v", got)
	}
	// An escaped colon names the same payload.
	if got := h.must(200, "GET", "/v1/skills/payloads/"+strings.Replace(ref, ":", "%3A", 1), nil); got["payload_ref"] != ref {
		t.Fatalf("escaped ref: %v", got)
	}
	if arr := h.must(201, "POST", "/v1/skills/payloads", map[string]any{"payload": []int{1, 2}}); arr["kind"] != "generic" {
		t.Fatalf("default kind: %v", arr)
	}

	h.wantErr(404, "not_found", "GET", "/v1/skills/payloads/"+ref, nil, owner("mallory"))
	h.wantErr(404, "not_found", "GET", "/v1/skills/payloads/blob:blob-000000000000", nil)
	bare := strings.TrimPrefix(ref, "blob:")
	if e := h.wantErr(400, "validation_error", "GET", "/v1/skills/payloads/"+bare, nil); e["error"].(map[string]any)["message"] != "Unsupported payload_ref: "+bare {
		t.Fatalf("non-blob ref: %v", e)
	}
	if e := h.wantErr(400, "validation_error", "GET", "/v1/skills/payloads/s3:bucket-key", nil); e["error"].(map[string]any)["message"] != "Unsupported payload_ref: s3:bucket-key" {
		t.Fatalf("s3 ref: %v", e)
	}
	h.wantErr(422, "validation_error", "POST", "/v1/skills/payloads", map[string]any{"payload": "text"})
	h.wantErr(422, "validation_error", "POST", "/v1/skills/payloads", map[string]any{"kind": "x"})
	h.wantErr(422, "validation_error", "POST", "/v1/skills/payloads", map[string]any{"payload": map[string]any{}, "kind": ""})
}

func TestSkillLifecycle(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	sb := str(h.create(nil)["id"])
	e1 := str(h.python(sb, "x = 40 + 2")["execution_id"])
	e2 := str(h.python(sb, "print(x)")["execution_id"])
	foreignSB := str(h.create(nil, owner("mallory"))["id"])
	foreign := str(h.python(foreignSB, "1", owner("mallory"))["execution_id"])
	payload := str(h.must(201, "POST", "/v1/skills/payloads", map[string]any{"payload": map[string]any{"steps": []string{}}})["payload_ref"])

	// Candidate creation: sources must be the caller's executions.
	// An unknown or foreign source is bad input (400), as upstream answers.
	if e := h.wantErr(400, "validation_error", "POST", "/v1/skills/candidates", map[string]any{"skill_key": "calc", "source_execution_ids": []string{e1, foreign}}); !strings.Contains(str(e["error"].(map[string]any)["message"]), foreign) {
		t.Fatalf("foreign source: %v", e)
	}
	h.wantErr(400, "validation_error", "POST", "/v1/skills/candidates", map[string]any{"skill_key": "calc", "source_execution_ids": []string{"exec-000000000000"}})
	h.wantErr(400, "validation_error", "POST", "/v1/skills/candidates", map[string]any{"skill_key": "calc", "source_execution_ids": []string{}})
	h.wantErr(422, "validation_error", "POST", "/v1/skills/candidates", map[string]any{"skill_key": "calc"})
	h.wantErr(422, "validation_error", "POST", "/v1/skills/candidates", map[string]any{"source_execution_ids": []string{e1}})
	h.wantErr(422, "validation_error", "POST", "/v1/skills/candidates", map[string]any{"skill_key": "calc", "source_execution_ids": []string{e1}, "preconditions": []string{"a"}})
	h.wantErr(400, "validation_error", "POST", "/v1/skills/candidates", map[string]any{"skill_key": "calc", "source_execution_ids": []string{e1}, "payload_ref": " "})
	// Any other ref is kept as given (the SDK's README uses s3://...).
	ext := h.must(201, "POST", "/v1/skills/candidates", map[string]any{"skill_key": "ext", "source_execution_ids": []string{e1}, "payload_ref": "s3://bucket/key"})
	if ext["payload_ref"] != "s3://bucket/key" {
		t.Fatalf("external payload_ref: %v", ext)
	}
	h.must(200, "DELETE", "/v1/skills/candidates/"+str(ext["id"]), nil)

	c1 := h.must(201, "POST", "/v1/skills/candidates", map[string]any{
		"skill_key": "calc", "source_execution_ids": []string{e1, e2, e1}, "scenario_key": "sum", "payload_ref": payload,
		"summary": "adds", "usage_notes": "call it", "preconditions": map[string]any{"python": true},
	})
	c1ID := str(c1["id"])
	srcs := c1["source_execution_ids"].([]any)
	if !strings.HasPrefix(c1ID, "skc-") || c1["status"] != "draft" || c1["skill_type"] != "code" || len(srcs) != 2 || srcs[0] != e1 ||
		c1["payload_ref"] != payload || c1["scenario_key"] != "sum" || c1["latest_pass"] != nil || c1["postconditions"] != nil ||
		c1["preconditions"].(map[string]any)["python"] != true || c1["is_deleted"] != false || c1["created_by"] != "default" {
		t.Fatalf("candidate: %v", c1)
	}
	h.clk.Advance(time.Second)
	c2ID := str(h.must(201, "POST", "/v1/skills/candidates", map[string]any{"skill_key": "calc", "source_execution_ids": []string{e2}})["id"])
	h.clk.Advance(time.Second)
	h.must(201, "POST", "/v1/skills/candidates", map[string]any{"skill_key": "other", "source_execution_ids": []string{e2}})

	// List: owner scoped, filters, newest first, total beyond the page.
	all := h.must(200, "GET", "/v1/skills/candidates", nil)
	if num(all["total"]) != 3 || len(itemsOf(t, all)) != 3 {
		t.Fatalf("list: %v", all)
	}
	calc := h.must(200, "GET", "/v1/skills/candidates?skill_key=calc&limit=1", nil)
	if items := itemsOf(t, calc); num(calc["total"]) != 2 || len(items) != 1 || items[0]["id"] != c2ID {
		t.Fatalf("filtered page: %v", calc)
	}
	if m := h.must(200, "GET", "/v1/skills/candidates", nil, owner("mallory")); num(m["total"]) != 0 {
		t.Fatalf("foreign list: %v", m)
	}
	h.wantErr(400, "validation_error", "GET", "/v1/skills/candidates?status=bogus", nil)
	h.wantErr(422, "validation_error", "GET", "/v1/skills/candidates?limit=501", nil)
	h.wantErr(404, "not_found", "GET", "/v1/skills/candidates/"+c1ID, nil, owner("mallory"))
	if got := h.must(200, "GET", "/v1/skills/candidates/"+c1ID, nil); got["id"] != c1ID || got["summary"] != "adds" {
		t.Fatalf("get: %v", got)
	}

	// Promotion needs a passing evaluation.
	h.wantErr(409, "conflict", "POST", "/v1/skills/candidates/"+c1ID+"/promote", map[string]any{})
	ev := h.must(200, "POST", "/v1/skills/candidates/"+c1ID+"/evaluate", map[string]any{"passed": false, "score": 0.25, "report": "wrong"})
	if !strings.HasPrefix(str(ev["id"]), "ske-") || ev["candidate_id"] != c1ID || ev["passed"] != false || ev["score"] != 0.25 ||
		ev["report"] != "wrong" || ev["benchmark_id"] != nil || ev["evaluated_by"] != "default" {
		t.Fatalf("evaluation: %v", ev)
	}
	if got := h.must(200, "GET", "/v1/skills/candidates/"+c1ID, nil); got["status"] != "rejected" || got["latest_pass"] != false || got["latest_score"] != 0.25 || got["last_evaluated_at"] == nil {
		t.Fatalf("after failing evaluation: %v", got)
	}
	h.wantErr(409, "conflict", "POST", "/v1/skills/candidates/"+c1ID+"/promote", nil)
	h.wantErr(422, "validation_error", "POST", "/v1/skills/candidates/"+c1ID+"/evaluate", map[string]any{"score": 1})
	h.wantErr(404, "not_found", "POST", "/v1/skills/candidates/"+c1ID+"/evaluate", map[string]any{"passed": true}, owner("mallory"))
	h.must(200, "POST", "/v1/skills/candidates/"+c1ID+"/evaluate", map[string]any{"passed": true, "score": 0.9, "benchmark_id": "b1"})
	if got := h.must(200, "GET", "/v1/skills/candidates?status=evaluating", nil); num(got["total"]) != 1 {
		t.Fatalf("status filter: %v", got)
	}
	h.wantErr(400, "validation_error", "POST", "/v1/skills/candidates/"+c1ID+"/promote", map[string]any{"stage": "prod"})
	h.wantErr(404, "not_found", "POST", "/v1/skills/candidates/"+c1ID+"/promote", nil, owner("mallory"))

	r1 := h.must(200, "POST", "/v1/skills/candidates/"+c1ID+"/promote", map[string]any{"stage": "stable", "change_summary": "first"})
	r1ID := str(r1["id"])
	if !strings.HasPrefix(r1ID, "skr-") || num(r1["version"]) != 1 || r1["stage"] != "stable" || r1["is_active"] != true ||
		r1["candidate_id"] != c1ID || r1["skill_key"] != "calc" || r1["release_mode"] != "manual" || r1["rollback_of"] != nil ||
		r1["change_summary"] != "first" || r1["health_window_end_at"] == nil || r1["promoted_by"] != "default" {
		t.Fatalf("release: %v", r1)
	}
	if got := h.must(200, "GET", "/v1/skills/candidates/"+c1ID, nil); got["status"] != "promoted_stable" || got["promotion_release_id"] != r1ID {
		t.Fatalf("promoted candidate: %v", got)
	}
	h.wantErr(409, "conflict", "POST", "/v1/skills/releases/"+r1ID+"/rollback", nil)

	h.clk.Advance(time.Hour)
	h.must(200, "POST", "/v1/skills/candidates/"+c2ID+"/evaluate", map[string]any{"passed": true})
	h.wantErr(404, "not_found", "POST", "/v1/skills/candidates/"+c2ID+"/promote", map[string]any{"stage": "stable", "upgrade_of_release_id": "skr-000000000000"})
	r2 := h.must(200, "POST", "/v1/skills/candidates/"+c2ID+"/promote", map[string]any{"stage": "stable", "upgrade_of_release_id": r1ID, "upgrade_reason": "faster"})
	r2ID := str(r2["id"])
	if num(r2["version"]) != 2 || r2["upgrade_of_release_id"] != r1ID || r2["upgrade_reason"] != "faster" {
		t.Fatalf("second release: %v", r2)
	}

	// Releases: list, filters, owner scope.
	rel := h.must(200, "GET", "/v1/skills/releases?skill_key=calc", nil)
	if items := itemsOf(t, rel); num(rel["total"]) != 2 || items[0]["id"] != r2ID || items[1]["is_active"] != false {
		t.Fatalf("releases: %v", rel)
	}
	if act := h.must(200, "GET", "/v1/skills/releases?active_only=true&stage=stable", nil); num(act["total"]) != 1 || itemsOf(t, act)[0]["id"] != r2ID {
		t.Fatalf("active releases: %v", act)
	}
	if got := h.must(200, "GET", "/v1/skills/releases?stage=canary", nil); num(got["total"]) != 0 {
		t.Fatalf("canary releases: %v", got)
	}
	h.wantErr(400, "validation_error", "GET", "/v1/skills/releases?stage=beta", nil)
	h.wantErr(422, "validation_error", "GET", "/v1/skills/releases?active_only=maybe", nil)
	if m := h.must(200, "GET", "/v1/skills/releases", nil, owner("mallory")); num(m["total"]) != 0 {
		t.Fatalf("foreign releases: %v", m)
	}

	// Health: r1 ran 5 times cleanly before r2 replaced it; r2 fails 3 of 5.
	ctx := context.Background()
	promoted1, promoted2 := parseTS(t, r1["promoted_at"]), parseTS(t, r2["promoted_at"])
	for i := range 5 {
		run := store.SkillRun{Owner: "default", ReleaseID: r1ID, Success: true, DurationMS: int64(100 + i), CreatedAt: promoted1.Add(time.Duration(i+1) * time.Minute)}
		if err := h.st.RecordSkillRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		run = store.SkillRun{Owner: "default", ReleaseID: r2ID, Success: i >= 3, DurationMS: int64(10 * (i + 1)), CreatedAt: promoted2.Add(time.Duration(i) * time.Minute)}
		if err := h.st.RecordSkillRun(ctx, run); err != nil {
			t.Fatal(err)
		}
	}
	h.clk.Advance(10 * time.Minute)
	hl := h.must(200, "GET", "/v1/skills/releases/"+r2ID+"/health", nil)
	if hl["release_id"] != r2ID || hl["skill_key"] != "calc" || hl["stage"] != "stable" || num(hl["samples"]) != 5 ||
		hl["success_rate"] != 0.4 || num(hl["baseline_samples"]) != 5 || hl["baseline_success_rate"] != 1.0 ||
		num(hl["p95_duration"]) != 50 || hl["healthy"] != false || hl["should_rollback"] != true ||
		len(hl["rollback_reasons"].([]any)) == 0 || hl["window_complete"] != false {
		t.Fatalf("r2 health: %v", hl)
	}
	if d := hl["success_drop"].(float64); d < 0.59 || d > 0.61 {
		t.Fatalf("success_drop %v", d)
	}
	if _, ok := hl["thresholds"].(map[string]any)["max_success_drop"]; !ok {
		t.Fatalf("thresholds: %v", hl["thresholds"])
	}
	h1 := h.must(200, "GET", "/v1/skills/releases/"+r1ID+"/health", nil)
	if num(h1["samples"]) != 5 || h1["healthy"] != true || h1["should_rollback"] != false || num(h1["baseline_samples"]) != 0 {
		t.Fatalf("r1 health: %v", h1)
	}
	h.wantErr(404, "not_found", "GET", "/v1/skills/releases/"+r2ID+"/health", nil, owner("mallory"))

	// Rollback: a new active release of the previous candidate.
	h.wantErr(404, "not_found", "POST", "/v1/skills/releases/"+r2ID+"/rollback", nil, owner("mallory"))
	h.wantErr(409, "conflict", "POST", "/v1/skills/releases/"+r1ID+"/rollback", nil)
	r3 := h.must(200, "POST", "/v1/skills/releases/"+r2ID+"/rollback", nil)
	r3ID := str(r3["id"])
	if num(r3["version"]) != 3 || r3["rollback_of"] != r2ID || r3["candidate_id"] != c1ID || r3["is_active"] != true || r3["stage"] != "stable" {
		t.Fatalf("rollback: %v", r3)
	}
	if got := h.must(200, "GET", "/v1/skills/candidates/"+c2ID, nil); got["status"] != "rolled_back" {
		t.Fatalf("rolled back candidate: %v", got)
	}
	if act := h.must(200, "GET", "/v1/skills/releases?active_only=true", nil); num(act["total"]) != 1 || itemsOf(t, act)[0]["id"] != r3ID {
		t.Fatalf("active after rollback: %v", act)
	}

	// Delete: the active release's candidate is protected; deletes are soft.
	h.wantErr(409, "conflict", "DELETE", "/v1/skills/candidates/"+c1ID, nil)
	h.wantErr(404, "not_found", "DELETE", "/v1/skills/releases/"+r3ID, nil, owner("mallory"))
	del := h.must(200, "DELETE", "/v1/skills/releases/"+r3ID, map[string]any{"reason": "retired"})
	if del["id"] != r3ID || del["delete_reason"] != "retired" || del["deleted_by"] != "default" || del["deleted_at"] == nil {
		t.Fatalf("delete release: %v", del)
	}
	h.wantErr(404, "not_found", "DELETE", "/v1/skills/releases/"+r3ID, nil)
	if got := h.must(200, "GET", "/v1/skills/releases", nil); num(got["total"]) != 2 {
		t.Fatalf("releases after delete: %v", got)
	}
	// Deleting the release a candidate was promoted into clears its pointer.
	if got := h.must(200, "GET", "/v1/skills/candidates/"+c1ID, nil); got["promotion_release_id"] != r1ID {
		t.Fatalf("c1 before its release is deleted: %v", got)
	}
	h.must(200, "DELETE", "/v1/skills/releases/"+r1ID, nil)
	if got := h.must(200, "GET", "/v1/skills/candidates/"+c1ID, nil); got["promotion_release_id"] != nil {
		t.Fatalf("c1 after its release was deleted: %v", got)
	}
	dc := h.must(200, "DELETE", "/v1/skills/candidates/"+c1ID, map[string]any{})
	if dc["id"] != c1ID || dc["delete_reason"] != nil || dc["deleted_at"] == nil {
		t.Fatalf("delete candidate: %v", dc)
	}
	h.wantErr(404, "not_found", "GET", "/v1/skills/candidates/"+c1ID, nil)
	if got := h.must(200, "GET", "/v1/skills/candidates", nil); num(got["total"]) != 2 {
		t.Fatalf("candidates after delete: %v", got)
	}

	// No active browser release: the replay is refused before compute
	// (python-default has no browser at all).
	h.wantErr(400, "capability_not_supported", "POST", sbPath(sb, "/browser/skills/calc/run"), nil)
}

// TestBrowserSkillRun replays a browser skill learned from a real Gull
// execution (agent-browser, Chromium).
func TestBrowserSkillRun(t *testing.T) {
	h := newHarness(t, harnessOpts{browser: true})
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html><head><title>Skill Page</title></head><body>hi</body></html>")
	}))
	defer page.Close()
	id := str(h.create(map[string]any{"profile": "browser-python"})["id"])

	h.wantErr(404, "not_found", "POST", sbPath(id, "/browser/skills/visit/run"), map[string]any{})
	open := h.must(200, "POST", sbPath(id, "/browser/exec"), map[string]any{"cmd": "open " + page.URL, "timeout": 60, "learn": true})
	cand := h.must(201, "POST", "/v1/skills/candidates", map[string]any{"skill_key": "visit", "source_execution_ids": []string{str(open["execution_id"])}})
	if cand["skill_type"] != "browser" || !strings.HasPrefix(str(cand["payload_ref"]), "blob:blob-") {
		t.Fatalf("browser candidate: %v", cand)
	}
	h.must(200, "POST", "/v1/skills/candidates/"+str(cand["id"])+"/evaluate", map[string]any{"passed": true})
	rel := h.must(200, "POST", "/v1/skills/candidates/"+str(cand["id"])+"/promote", nil)
	if rel["stage"] != "canary" {
		t.Fatalf("default stage: %v", rel)
	}

	run := h.must(200, "POST", sbPath(id, "/browser/skills/visit/run"), map[string]any{"include_trace": true, "tags": "replay"})
	results := run["results"].([]any)
	if run["skill_key"] != "visit" || run["release_id"] != rel["id"] || run["success"] != true || num(run["total_steps"]) != 1 ||
		len(results) != 1 || results[0].(map[string]any)["cmd"] != "open "+page.URL || !strings.HasPrefix(str(run["trace_ref"]), "blob:") {
		t.Fatalf("run: %v", run)
	}
	last := h.must(200, "GET", sbPath(id, "/history/last"), nil)
	if last["id"] != run["execution_id"] || last["exec_type"] != "browser_batch" || last["tags"] != "replay" || last["code"] != "open "+page.URL {
		t.Fatalf("history: %v", last)
	}
	if hl := h.must(200, "GET", "/v1/skills/releases/"+str(rel["id"])+"/health", nil); num(hl["samples"]) != 1 || hl["success_rate"] != 1.0 {
		t.Fatalf("health after run: %v", hl)
	}
	h.wantErr(404, "not_found", "POST", sbPath(id, "/browser/skills/visit/run"), nil, owner("mallory"))
}
