package gateway_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBrowserHistoryAndTraces drives a real Gull (agent-browser, Chromium):
// browser calls are history, and learn/include_trace store trace blobs.
func TestBrowserHistoryAndTraces(t *testing.T) {
	h := newHarness(t, harnessOpts{browser: true})
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html><head><title>Bay Trace Page</title></head><body>hi</body></html>")
	}))
	defer page.Close()
	id := str(h.create(map[string]any{"profile": "browser-python"})["id"])

	open := h.must(200, "POST", sbPath(id, "/browser/exec"), map[string]any{"cmd": "open " + page.URL, "timeout": 60, "include_trace": true, "tags": "nav"})
	if open["success"] != true || !strings.HasPrefix(str(open["trace_ref"]), "blob:blob-") {
		t.Fatalf("open: %v", open)
	}
	tr := h.must(200, "GET", sbPath(id, "/browser/traces/"+str(open["trace_ref"])), nil)
	trace := tr["trace"].(map[string]any)
	steps := trace["steps"].([]any)
	if tr["trace_ref"] != open["trace_ref"] || trace["kind"] != "browser_exec_trace" || len(steps) != 1 ||
		steps[0].(map[string]any)["cmd"] != "open "+page.URL {
		t.Fatalf("trace %v", tr)
	}
	// learn stores a trace for history without returning it.
	title := h.must(200, "POST", sbPath(id, "/browser/exec"), map[string]any{"cmd": "get title", "learn": true})
	if title["trace_ref"] != nil || !strings.Contains(str(title["output"]), "Bay Trace Page") {
		t.Fatalf("get title: %v", title)
	}
	batch := h.must(200, "POST", sbPath(id, "/browser/exec_batch"), map[string]any{
		"commands": []string{"get title", "get url"}, "include_trace": true,
	})
	if batch["success"] != true || num(batch["completed_steps"]) != 2 || batch["trace_ref"] == nil {
		t.Fatalf("batch: %v", batch)
	}
	bt := h.must(200, "GET", sbPath(id, "/browser/traces/"+str(batch["trace_ref"])), nil)["trace"].(map[string]any)
	if bt["kind"] != "browser_batch_trace" || len(bt["steps"].([]any)) != 2 {
		t.Fatalf("batch trace %v", bt)
	}

	hist := h.must(200, "GET", sbPath(id, "/history"), nil)
	es := entriesOf(t, hist)
	if len(es) != 3 || es[0]["exec_type"] != "browser_batch" || es[1]["exec_type"] != "browser" || es[2]["exec_type"] != "browser" {
		t.Fatalf("browser history %v", hist)
	}
	if es[2]["payload_ref"] != open["trace_ref"] || es[2]["tags"] != "nav" || es[2]["code"] != "open "+page.URL {
		t.Fatalf("open entry %v", es[2])
	}
	if !strings.HasPrefix(str(es[1]["payload_ref"]), "blob:blob-") {
		t.Fatalf("learn entry has no payload_ref: %v", es[1])
	}
	// The learning fields, as Shipyard Neo's entries carry them.
	if es[1]["learn_enabled"] != true || es[1]["learn_status"] != "pending" || es[1]["learn_error"] != nil || es[1]["learn_processed_at"] != nil {
		t.Fatalf("learn entry's learning fields: %v", es[1])
	}
	for _, e := range []map[string]any{es[0], es[2]} {
		if v, ok := e["learn_enabled"]; !ok || v != false || e["learn_status"] != nil {
			t.Fatalf("entry without learn: %v", e)
		}
	}
	if last := h.must(200, "GET", sbPath(id, "/history/"+str(es[1]["id"])), nil); last["learn_status"] != "pending" {
		t.Fatalf("one entry: %v", last)
	}
	if es[0]["code"] != "get title\nget url" {
		t.Fatalf("batch entry code %q", es[0]["code"])
	}
	if got := num(h.must(200, "GET", sbPath(id, "/history?exec_type=browser_batch"), nil)["total"]); got != 1 {
		t.Fatalf("browser_batch filter total %d", got)
	}
	// Traces are the owner's only; unknown refs are 404.
	h.wantErr(404, "not_found", "GET", sbPath(id, "/browser/traces/blob:blob-000000000000"), nil)
	h.wantErr(404, "not_found", "GET", sbPath(id, "/browser/traces/"+str(open["trace_ref"])), nil, owner("mallory"))
	// A profile without a browser refuses before any compute starts.
	py := str(h.create(map[string]any{"profile": "python-default"})["id"])
	h.wantErr(400, "capability_not_supported", "GET", sbPath(py, "/browser/traces/"+str(open["trace_ref"])), nil)
}
