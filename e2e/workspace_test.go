package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWorkspaceIsTheCargo: in the embedded default, with the gateway
// running as root, every container of a session sees its own cargo at
// /workspace (API.md, DESIGN.md): shell, Python, the file API and the
// browser agree, two sandboxes do not see each other's files there, and
// nothing lands in the host's /workspace.
func TestWorkspaceIsTheCargo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the cargo is mounted at /workspace only when the gateway runs as root (mount namespaces)")
	}
	g := startGateway(t, profilesHCL)
	exec := func(id, kind string, body map[string]any) map[string]any {
		t.Helper()
		r := g.must(200, "POST", "/v1/sandboxes/"+id+"/"+kind+"/exec", body)
		if r["success"] != true {
			t.Fatalf("%s %v: %v", kind, body, r)
		}
		return r
	}

	// Two sandboxes at once write the same absolute path and read their own.
	var ids, cargos []string
	for range 2 {
		sb := g.must(201, "POST", "/v1/sandboxes", map[string]any{"profile": "python-default"})
		ids = append(ids, sb["id"].(string))
		cargos = append(cargos, sb["cargo_id"].(string))
	}
	for _, id := range ids {
		exec(id, "shell", map[string]any{"command": "echo " + id + " > /workspace/who.txt"})
	}
	for i, id := range ids {
		out := exec(id, "shell", map[string]any{"command": "cat /workspace/who.txt"})["output"].(string)
		if strings.TrimSpace(out) != id {
			t.Errorf("sandbox %s reads %q from /workspace/who.txt", id, out)
		}
		b, err := os.ReadFile(filepath.Join(g.dataDir, "cargos", cargos[i], "who.txt"))
		if err != nil || strings.TrimSpace(string(b)) != id {
			t.Errorf("cargo %s/who.txt = %q, %v", cargos[i], b, err)
		}
	}
	if _, err := os.Stat("/workspace/who.txt"); err == nil {
		t.Error("a sandbox wrote into the host's /workspace")
	}

	// The Shipyard Neo SDK's smoke test: absolute write, relative read.
	id := ids[0]
	exec(id, "shell", map[string]any{"command": "mkdir -p /workspace/mydir && echo test > /workspace/mydir/file.txt"})
	cat := exec(id, "shell", map[string]any{"command": "cat file.txt", "cwd": "mydir"})
	if strings.TrimSpace(cat["output"].(string)) != "test" {
		t.Errorf("cat file.txt in mydir: %v", cat)
	}
	py := exec(id, "python", map[string]any{"code": "import os\nprint(open('/workspace/mydir/file.txt').read().strip(), os.getcwd() == '/workspace', os.environ['BAY_WORKSPACE_PATH'])"})
	if got := strings.TrimSpace(py["output"].(string)); got != "test True /workspace" {
		t.Errorf("python sees %q, want %q", got, "test True /workspace")
	}
	f := g.must(200, "GET", "/v1/sandboxes/"+id+"/filesystem/files?path=mydir/file.txt", nil)
	if f["content"] != "test\n" {
		t.Errorf("filesystem API: %v", f)
	}
	if _, err := os.Stat("/workspace/mydir"); err == nil {
		t.Error("mydir appeared in the host's /workspace")
	}
	// The other sandbox has no mydir.
	other := g.must(200, "POST", "/v1/sandboxes/"+ids[1]+"/shell/exec", map[string]any{"command": "ls /workspace"})
	if strings.Contains(fmt.Sprint(other["output"]), "mydir") {
		t.Errorf("sandbox %s sees the other's mydir: %v", ids[1], other)
	}

	// The browser opens a page of the cargo by its /workspace path and
	// screenshots into it.
	sb := g.must(201, "POST", "/v1/sandboxes", map[string]any{"profile": "browser-python"})
	bid := sb["id"].(string)
	g.must(200, "PUT", "/v1/sandboxes/"+bid+"/filesystem/files", map[string]any{
		"path": "page.html", "content": "<!doctype html><html><head><title>Cargo Page</title></head><body><h1>in the cargo</h1></body></html>"})
	exec(bid, "browser", map[string]any{"cmd": "open file:///workspace/page.html", "timeout": 60})
	title := exec(bid, "browser", map[string]any{"cmd": "get title"})
	if !strings.Contains(title["output"].(string), "Cargo Page") {
		t.Errorf("title of file:///workspace/page.html: %v", title)
	}
	exec(bid, "browser", map[string]any{"cmd": "screenshot /workspace/shot.png"})
	dl := g.do("GET", "/v1/sandboxes/"+bid+"/filesystem/download?path=shot.png", nil)
	if dl.Status != 200 || !bytes.HasPrefix(dl.Body, []byte("\x89PNG")) {
		t.Errorf("screenshot at /workspace/shot.png: status %d, %d bytes", dl.Status, len(dl.Body))
	}
	if _, err := os.Stat("/workspace/shot.png"); err == nil {
		t.Error("the screenshot landed in the host's /workspace")
	}
}
