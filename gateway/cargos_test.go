package gateway_test

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

func idsOf(items []any) []string {
	var out []string
	for _, it := range items {
		out = append(out, str(it.(map[string]any)["id"]))
	}
	return out
}

func TestCargosAPI(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.must(201, "POST", "/v1/cargos", nil)
	if !strings.HasPrefix(str(c["id"]), "ws-") || c["managed"] != false || c["managed_by_sandbox_id"] != nil ||
		c["backend"] != "local_dir" || num(c["size_limit_mb"]) != 1024 || c["created_at"] == nil || c["last_accessed_at"] == nil {
		t.Fatalf("cargo %v", c)
	}
	if !exists(h.cargoDir(str(c["id"]))) {
		t.Fatal("cargo storage not created")
	}
	h.clk.Advance(time.Millisecond) // a distinct created_at orders the list
	small := h.must(201, "POST", "/v1/cargos", map[string]any{"size_limit_mb": 10})
	if num(small["size_limit_mb"]) != 10 {
		t.Fatalf("size %v", small)
	}
	for _, body := range []any{map[string]any{"size_limit_mb": 0}, map[string]any{"size_limit_mb": 65537}, map[string]any{"size_limit_mb": "big"}, "[1]"} {
		h.wantErr(422, "validation_error", "POST", "/v1/cargos", body)
	}
	h.clk.Advance(time.Millisecond)
	h.must(201, "POST", "/v1/cargos", map[string]any{"size_limit_mb": 65536})

	// Sandboxes: one on the external cargo, one with its own managed cargo.
	shared := str(c["id"])
	a := h.create(map[string]any{"cargo_id": shared})
	b := h.create(map[string]any{"cargo_id": shared})
	own := h.create(nil)
	if a["cargo_id"] != shared || b["cargo_id"] != shared || own["cargo_id"] == shared {
		t.Fatalf("cargo ids %v %v %v", a["cargo_id"], b["cargo_id"], own["cargo_id"])
	}
	h.wantErr(404, "not_found", "POST", "/v1/sandboxes", map[string]any{"cargo_id": "ws-000000000000"})
	// Another sandbox's managed cargo cannot be shared.
	e := h.wantErr(409, "conflict", "POST", "/v1/sandboxes", map[string]any{"cargo_id": own["cargo_id"]})
	if d := e["error"].(map[string]any)["details"].(map[string]any); d["managed_by_sandbox_id"] != own["id"] {
		t.Fatalf("details %v", d)
	}
	h.wantErr(404, "not_found", "POST", "/v1/sandboxes", map[string]any{"cargo_id": shared}, owner("mallory"))

	// Lists: external only by default, managed=true the managed ones.
	ext := idsOf(h.must(200, "GET", "/v1/cargos", nil)["items"].([]any))
	if len(ext) != 3 || ext[len(ext)-1] != shared {
		t.Fatalf("external cargos %v (newest first, %s oldest)", ext, shared)
	}
	if got := idsOf(h.must(200, "GET", "/v1/cargos?managed=false", nil)["items"].([]any)); strings.Join(got, ",") != strings.Join(ext, ",") {
		t.Fatalf("managed=false %v, want %v", got, ext)
	}
	man := h.must(200, "GET", "/v1/cargos?managed=true", nil)["items"].([]any)
	if len(man) != 1 || str(man[0].(map[string]any)["id"]) != str(own["cargo_id"]) || man[0].(map[string]any)["managed_by_sandbox_id"] != own["id"] {
		t.Fatalf("managed cargos %v", man)
	}
	if got := h.must(200, "GET", "/v1/cargos", nil, owner("mallory"))["items"].([]any); len(got) != 0 {
		t.Fatalf("another owner sees %v", got)
	}
	h.wantErr(422, "validation_error", "GET", "/v1/cargos?managed=perhaps", nil)
	// Pagination walks every external cargo once.
	var walked []string
	cursor := ""
	for {
		q := "/v1/cargos?limit=2"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		page := h.must(200, "GET", q, nil)
		walked = append(walked, idsOf(page["items"].([]any))...)
		nc, _ := page["next_cursor"].(string)
		if nc == "" {
			break
		}
		cursor = nc
	}
	if strings.Join(walked, ",") != strings.Join(ext, ",") {
		t.Fatalf("paged %v, want %v", walked, ext)
	}

	// Get: own 200, foreign 404.
	if g := h.must(200, "GET", "/v1/cargos/"+shared, nil); g["id"] != shared {
		t.Fatalf("get %v", g)
	}
	h.wantErr(404, "not_found", "GET", "/v1/cargos/"+shared, nil, owner("mallory"))
	h.wantErr(404, "not_found", "DELETE", "/v1/cargos/"+shared, nil, owner("mallory"))

	// The two sandboxes see one workspace.
	h.must(200, "PUT", sbPath(str(a["id"]), "/filesystem/files"), map[string]any{"path": "shared.txt", "content": "from a"})
	if got := h.must(200, "GET", sbPath(str(b["id"]), "/filesystem/files?path=shared.txt"), nil); got["content"] != "from a" {
		t.Fatalf("b reads %v", got)
	}

	// Delete refusals: in use by sandboxes, or managed by a live sandbox.
	e = h.wantErr(409, "conflict", "DELETE", "/v1/cargos/"+shared, nil)
	users := []string{str(a["id"]), str(b["id"])}
	sort.Strings(users)
	details, _ := e["error"].(map[string]any)["details"].(map[string]any)
	if got := details["active_sandbox_ids"]; got == nil || strings.Join(toStrings(got), ",") != strings.Join(users, ",") {
		t.Fatalf("active_sandbox_ids %v, want %v", got, users)
	}
	e = h.wantErr(409, "conflict", "DELETE", "/v1/cargos/"+str(own["cargo_id"]), nil)
	if d := e["error"].(map[string]any)["details"].(map[string]any); d["managed_by_sandbox_id"] != own["id"] {
		t.Fatalf("managed cargo refusal details %v", d)
	}

	// Deleting the sandboxes never deletes the external cargo.
	h.must(204, "DELETE", sbPath(str(a["id"])), nil)
	h.wantErr(409, "conflict", "DELETE", "/v1/cargos/"+shared, nil)
	h.must(204, "DELETE", sbPath(str(b["id"])), nil)
	dir := h.cargoDir(shared)
	if !exists(filepath.Join(dir, "shared.txt")) {
		t.Fatal("external cargo lost its files with its sandboxes")
	}
	h.must(200, "GET", "/v1/cargos/"+shared, nil)
	// A new sandbox on it sees the files.
	c2 := h.create(map[string]any{"cargo_id": shared})
	if got := h.must(200, "GET", sbPath(str(c2["id"]), "/filesystem/files?path=shared.txt"), nil); got["content"] != "from a" {
		t.Fatalf("new sandbox reads %v", got)
	}
	h.must(204, "DELETE", sbPath(str(c2["id"])), nil)
	h.must(204, "DELETE", "/v1/cargos/"+shared, nil)
	if exists(dir) {
		t.Fatal("deleted cargo's storage remains")
	}
	h.wantErr(404, "not_found", "GET", "/v1/cargos/"+shared, nil)
	h.wantErr(404, "not_found", "DELETE", "/v1/cargos/"+shared, nil)
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, str(x))
	}
	return out
}
