package gateway_test

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func entriesOf(t *testing.T, m map[string]any) []map[string]any {
	t.Helper()
	raw, ok := m["entries"].([]any)
	if !ok {
		t.Fatalf("no entries list: %v", m)
	}
	out := make([]map[string]any, len(raw))
	for i, e := range raw {
		out[i] = e.(map[string]any)
	}
	return out
}

func TestHistoryRecordsFiltersAndAnnotates(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	id := str(h.create(nil)["id"])
	hist := func(q string) map[string]any { return h.must(200, "GET", sbPath(id, "/history"+q), nil) }

	h.wantErr(404, "not_found", "GET", sbPath(id, "/history/last"), nil)

	// Four calls, one second of fake time apart so the order is certain.
	py := h.must(200, "POST", sbPath(id, "/python/exec"), map[string]any{
		"code": "print('hi')", "description": "greet", "tags": " beta, Alpha ,beta,, ",
	})
	if py["code"] != nil {
		t.Fatalf("code returned without include_code: %v", py["code"])
	}
	h.clk.Advance(time.Second)
	bad := h.must(200, "POST", sbPath(id, "/python/exec"), map[string]any{"code": "1/0", "include_code": true})
	if bad["success"] != false || bad["code"] != "1/0" || !strings.Contains(str(bad["error"]), "ZeroDivisionError") {
		t.Fatalf("failing python: %v", bad)
	}
	h.clk.Advance(time.Second)
	sh := h.must(200, "POST", sbPath(id, "/shell/exec"), map[string]any{"command": "echo out; echo bad >&2; exit 3", "include_code": true, "tags": "gamma"})
	if sh["success"] != false || num(sh["exit_code"]) != 3 || sh["command"] != "echo out; echo bad >&2; exit 3" {
		t.Fatalf("failing shell: %v", sh)
	}
	h.clk.Advance(time.Second)
	h.must(200, "POST", sbPath(id, "/shell/exec"), map[string]any{"command": "true"})
	// Filesystem calls are not history.
	h.must(200, "PUT", sbPath(id, "/filesystem/files"), map[string]any{"path": "f.txt", "content": "x"})

	all := hist("")
	es := entriesOf(t, all)
	if num(all["total"]) != 4 || len(es) != 4 {
		t.Fatalf("history: %v", all)
	}
	wantOrder := []string{str(sh["execution_id"]), str(bad["execution_id"]), str(py["execution_id"])}
	if str(es[1]["id"]) != wantOrder[0] || str(es[2]["id"]) != wantOrder[1] || str(es[3]["id"]) != wantOrder[2] {
		t.Fatalf("not newest first: %v", es)
	}
	session := h.sessions()[id]
	first := es[3]
	if first["exec_type"] != "python" || first["code"] != "print('hi')" || first["success"] != true ||
		strings.TrimSpace(str(first["output"])) != "hi" || first["error"] != nil || first["tags"] != "Alpha,beta" ||
		first["description"] != "greet" || first["notes"] != nil || first["payload_ref"] != nil || str(first["session_id"]) != session {
		t.Fatalf("python entry %v (session %s)", first, session)
	}
	if got := parseTS(t, first["created_at"]); got.After(h.clk.Now()) || h.clk.Now().Sub(got) != 3*time.Second {
		t.Fatalf("created_at %v, now %v", got, h.clk.Now())
	}
	if _, ok := first["execution_time_ms"].(float64); !ok {
		t.Fatalf("execution_time_ms: %v", first)
	}
	if !strings.Contains(str(es[1]["error"]), "bad") || es[1]["code"] != "echo out; echo bad >&2; exit 3" || !strings.Contains(str(es[1]["output"]), "out") {
		t.Fatalf("shell entry %v", es[1])
	}

	for q, want := range map[string]int{
		"?exec_type=python":                     2,
		"?exec_type=shell":                      2,
		"?exec_type=browser":                    0,
		"?success_only=true":                    2,
		"?tags=ALPH":                            1, // case-insensitive substring
		"?tags=" + url.QueryEscape("nope, gam"): 1, // any-match
		"?has_description=true":                 1,
		"?has_notes=true":                       0,
		"?exec_type=python&success_only=true":   1,
	} {
		if got := num(hist(q)["total"]); got != want {
			t.Errorf("history%s: total %d, want %d", q, got, want)
		}
	}
	page := hist("?limit=1&offset=1")
	if es := entriesOf(t, page); num(page["total"]) != 4 || len(es) != 1 || str(es[0]["id"]) != wantOrder[0] {
		t.Fatalf("limit/offset page %v", page)
	}
	for _, q := range []string{"?exec_type=ruby", "?limit=0", "?limit=501", "?offset=-1", "?success_only=maybe"} {
		h.wantErr(422, "validation_error", "GET", sbPath(id, "/history"+q), nil)
	}
	h.wantErr(422, "validation_error", "GET", sbPath(id, "/history/last?exec_type=ruby"), nil)

	if last := h.must(200, "GET", sbPath(id, "/history/last?exec_type=python"), nil); last["id"] != bad["execution_id"] {
		t.Fatalf("last python %v", last)
	}
	if last := h.must(200, "GET", sbPath(id, "/history/last"), nil); last["exec_type"] != "shell" || last["code"] != "true" {
		t.Fatalf("last %v", last)
	}
	h.wantErr(404, "not_found", "GET", sbPath(id, "/history/last?exec_type=browser"), nil)

	got := h.must(200, "GET", sbPath(id, "/history/"+str(py["execution_id"])), nil)
	if got["id"] != py["execution_id"] || got["description"] != "greet" {
		t.Fatalf("get entry %v", got)
	}
	h.wantErr(404, "not_found", "GET", sbPath(id, "/history/exec-000000000000"), nil)
	h.wantErr(404, "not_found", "GET", sbPath(id, "/history/"+str(py["execution_id"])), nil, owner("mallory"))

	// PATCH: tags normalised; fields not sent are kept.
	p := h.must(200, "PATCH", sbPath(id, "/history/"+str(bad["execution_id"])), map[string]any{"tags": "z, a ,a,m,", "notes": "divides by zero"})
	if p["tags"] != "a,m,z" || p["notes"] != "divides by zero" || p["description"] != nil || p["code"] != "1/0" {
		t.Fatalf("patched %v", p)
	}
	p = h.must(200, "PATCH", sbPath(id, "/history/"+str(bad["execution_id"])), map[string]any{"description": "oops"})
	if p["tags"] != "a,m,z" || p["notes"] != "divides by zero" || p["description"] != "oops" {
		t.Fatalf("second patch %v", p)
	}
	if got := num(hist("?has_notes=true")["total"]); got != 1 {
		t.Fatalf("has_notes after patch: %d", got)
	}
	if got := num(hist("?tags=z")["total"]); got != 1 {
		t.Fatalf("tags=z after patch: %d", got)
	}
	h.wantErr(404, "not_found", "PATCH", sbPath(id, "/history/exec-000000000000"), map[string]any{"notes": "x"})
	h.wantErr(422, "validation_error", "PATCH", sbPath(id, "/history/"+str(bad["execution_id"])), map[string]any{"tags": 5})

	// Another sandbox's history is separate.
	other := str(h.create(nil)["id"])
	if got := num(h.must(200, "GET", sbPath(other, "/history"), nil)["total"]); got != 0 {
		t.Fatalf("other sandbox history total %d", got)
	}
	h.wantErr(404, "not_found", "GET", sbPath(other, "/history/"+str(py["execution_id"])), nil)
}
