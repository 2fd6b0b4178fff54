package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// profilesHCL gives browser-python a restart delay long enough to observe
// DEGRADED before the container comes back.
const profilesHCL = `
profile "python-default" {
  description = "Python, shell and files"
  container "ship" {
    runtime_type = "ship"
  }
}
profile "browser-python" {
  description = "Python plus a browser"
  restart {
    attempts = 3
    delay    = "3s"
  }
  container "ship" {
    runtime_type = "ship"
    primary_for  = ["filesystem"]
  }
  container "gull" {
    runtime_type = "gull"
  }
}
`

func TestBrowserPythonEndToEnd(t *testing.T) {
	g := startGateway(t, profilesHCL)

	sb := g.must(201, "POST", "/v1/sandboxes", map[string]any{"profile": "browser-python"})
	id := sb["id"].(string)
	// The page is served from inside the session (the sandbox reaches
	// nothing on the host): Gull opens it on 127.0.0.1, as on Nomad.
	page := servePage(t, g, id, testPageHTML)
	if !strings.HasPrefix(id, "sandbox-") || !strings.HasPrefix(sb["cargo_id"].(string), "ws-") {
		t.Fatalf("ids: %v", sb)
	}
	caps := fmt.Sprint(sb["capabilities"])
	for _, c := range []string{"python", "shell", "filesystem", "browser"} {
		if !strings.Contains(caps, c) {
			t.Fatalf("capabilities %s lack %s", caps, c)
		}
	}

	// Python writes a file; the shell sees it.
	py := g.must(200, "POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "open('note.txt','w').write('from python')\n1+2"})
	if py["success"] != true || !strings.Contains(py["output"].(string), "3") {
		t.Fatalf("python: %v", py)
	}
	if !strings.HasPrefix(py["execution_id"].(string), "exec-") {
		t.Fatalf("execution id: %v", py["execution_id"])
	}
	sh := g.must(200, "POST", "/v1/sandboxes/"+id+"/shell/exec", map[string]any{"command": "cat note.txt"})
	if sh["success"] != true || sh["output"] != "from python" || sh["exit_code"].(float64) != 0 {
		t.Fatalf("shell: %v", sh)
	}

	// Gull opens a page, takes a screenshot into the shared workspace.
	br := g.must(200, "POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "open " + page, "timeout": 60})
	if br["success"] != true {
		t.Fatalf("browser open: %v", br)
	}
	title := g.must(200, "POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "get title"})
	if !strings.Contains(title["output"].(string), "Bay Test Page") {
		t.Fatalf("title: %v", title)
	}
	shot := g.must(200, "POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "screenshot shot.png"})
	if shot["success"] != true {
		t.Fatalf("screenshot: %v", shot)
	}
	// Python reads the PNG's size and hash; download returns the same bytes.
	info := g.must(200, "POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{
		"code": "import hashlib\nb=open('shot.png','rb').read()\nprint(len(b), hashlib.sha256(b).hexdigest(), b[:8]==b'\\x89PNG\\r\\n\\x1a\\n')"})
	fields := strings.Fields(info["output"].(string))
	if len(fields) != 3 || fields[2] != "True" || fields[0] == "0" {
		t.Fatalf("python PNG check: %v", info)
	}
	dl := g.do("GET", "/v1/sandboxes/"+id+"/filesystem/download?path=shot.png", nil)
	sum := sha256.Sum256(dl.Body)
	if dl.Status != 200 || hex.EncodeToString(sum[:]) != fields[1] || fmt.Sprint(len(dl.Body)) != fields[0] {
		t.Fatalf("download: status %d, %d bytes, sha %x vs python %v", dl.Status, len(dl.Body), sum, fields)
	}
	if cd := dl.Header.Get("Content-Disposition"); !strings.Contains(cd, `filename="shot.png"`) {
		t.Fatalf("content-disposition %q", cd)
	}

	// GET shows both containers with versions and health.
	detail := g.must(200, "GET", "/v1/sandboxes/"+id, nil)
	if detail["status"] != "ready" {
		t.Fatalf("status %v", detail["status"])
	}
	cs, _ := detail["containers"].([]any)
	if len(cs) != 2 {
		t.Fatalf("containers: %v", detail["containers"])
	}
	for _, c := range cs {
		m := c.(map[string]any)
		if m["healthy"] != true || m["version"] == nil || m["status"] != "running" {
			t.Fatalf("container %v", m)
		}
	}
	shipPIDs := runtimePIDs(t, id, "ship")

	// Kill Gull: degraded, browser 503 while python works, then healed.
	gulls := runtimePIDs(t, id, "gull")
	if len(gulls) != 1 {
		t.Fatalf("gull pids: %v", gulls)
	}
	if err := syscall.Kill(gulls[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	g.waitStatus(id, "degraded", 2*time.Second)
	r := g.do("POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "get title"})
	if r.Status != 503 || r.errCode(t) != "session_not_ready" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("browser while degraded: %d %s", r.Status, r.Body)
	}
	d := r.json(t)["error"].(map[string]any)["details"].(map[string]any)
	if d["container"] != "gull" || d["capability"] != "browser" {
		t.Fatalf("details: %v", d)
	}
	py2 := g.must(200, "POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "40+2"})
	if py2["success"] != true || !strings.Contains(py2["output"].(string), "42") {
		t.Fatalf("python while degraded: %v", py2)
	}
	g.waitStatus(id, "ready", 30*time.Second)
	br2 := g.must(200, "POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "open " + page, "timeout": 60})
	if br2["success"] != true {
		t.Fatalf("browser after heal: %v", br2)
	}
	if after := runtimePIDs(t, id, "ship"); fmt.Sprint(after) != fmt.Sprint(shipPIDs) {
		t.Fatalf("ship restarted: %v → %v", shipPIDs, after)
	}

	// Stop, then a new call: a fresh session, files intact.
	first := g.must(200, "GET", "/v1/sandboxes/"+id+"/history/last?exec_type=python", nil)["session_id"]
	g.must(200, "POST", "/v1/sandboxes/"+id+"/stop", nil)
	if st := g.must(200, "GET", "/v1/sandboxes/"+id, nil); st["status"] != "idle" || st["containers"] != nil {
		t.Fatalf("after stop: %v", st)
	}
	if pids := runtimePIDs(t, id, "ship"); len(pids) != 0 {
		t.Fatalf("ship still running after stop: %v", pids)
	}
	rf := g.must(200, "GET", "/v1/sandboxes/"+id+"/filesystem/files?path=note.txt", nil)
	if rf["content"] != "from python" {
		t.Fatalf("file after restart: %v", rf)
	}
	g.must(200, "POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "1"})
	second := g.must(200, "GET", "/v1/sandboxes/"+id+"/history/last?exec_type=python", nil)["session_id"]
	if first == nil || second == nil || first == second {
		t.Fatalf("session ids %v → %v, want a fresh session", first, second)
	}

	// Delete removes the managed cargo.
	cargoDir := filepath.Join(g.dataDir, "cargos", sb["cargo_id"].(string))
	if _, err := os.Stat(cargoDir); err != nil {
		t.Fatalf("cargo dir: %v", err)
	}
	if r := g.do("DELETE", "/v1/sandboxes/"+id, nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if _, err := os.Stat(cargoDir); !os.IsNotExist(err) {
		t.Fatalf("cargo dir still there: %v", err)
	}
	if r := g.do("GET", "/v1/sandboxes/"+id, nil); r.Status != 404 || r.errCode(t) != "not_found" {
		t.Fatalf("get after delete: %d %s", r.Status, r.Body)
	}
}

func TestPythonDefaultContract(t *testing.T) {
	g := startGateway(t, profilesHCL)

	// Auth.
	if r := g.do("GET", "/v1/sandboxes", nil, withoutAuth()); r.Status != 401 || r.errCode(t) != "unauthorized" {
		t.Fatalf("no key: %d %s", r.Status, r.Body)
	}
	if r := g.do("GET", "/v1/sandboxes", nil, withHeader("Authorization", "Bearer wrong")); r.Status != 401 {
		t.Fatalf("wrong key: %d", r.Status)
	}
	if r := g.do("GET", "/v1/profiles", nil, withoutAuth()); r.Status != 200 {
		t.Fatalf("profiles need no auth: %d", r.Status)
	}
	r := g.do("GET", "/health", nil, withoutAuth(), withHeader("X-Request-Id", "rid-123"))
	if r.Status != 200 || r.Header.Get("X-Request-Id") != "rid-123" {
		t.Fatalf("health: %d %v", r.Status, r.Header)
	}

	// Validation.
	if r := g.do("POST", "/v1/sandboxes", map[string]any{"profile": "nope"}); r.Status != 400 || r.errCode(t) != "validation_error" {
		t.Fatalf("unknown profile: %d %s", r.Status, r.Body)
	}
	if r := g.do("POST", "/v1/sandboxes", "{not json"); r.Status != 422 || r.errCode(t) != "validation_error" {
		t.Fatalf("malformed: %d %s", r.Status, r.Body)
	}
	if r := g.do("POST", "/v1/sandboxes", map[string]any{"ttl": "soon"}); r.Status != 422 {
		t.Fatalf("wrong type: %d %s", r.Status, r.Body)
	}

	sb := g.must(201, "POST", "/v1/sandboxes", nil)
	id := sb["id"].(string)
	if sb["profile"] != "python-default" {
		t.Fatalf("default profile: %v", sb)
	}

	// Unsupported capability: 400 with available, before any compute.
	r = g.do("POST", "/v1/sandboxes/"+id+"/browser/exec", map[string]any{"cmd": "get title"})
	if r.Status != 400 || r.errCode(t) != "capability_not_supported" {
		t.Fatalf("capability: %d %s", r.Status, r.Body)
	}
	avail := fmt.Sprint(r.json(t)["error"].(map[string]any)["details"].(map[string]any)["available"])
	if !strings.Contains(avail, "python") || strings.Contains(avail, "browser") {
		t.Fatalf("available: %s", avail)
	}

	// Foreign owner sees 404.
	if r := g.do("GET", "/v1/sandboxes/"+id, nil, withOwner("mallory")); r.Status != 404 || r.errCode(t) != "not_found" {
		t.Fatalf("foreign get: %d %s", r.Status, r.Body)
	}
	if r := g.do("POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "1"}, withOwner("mallory")); r.Status != 404 {
		t.Fatalf("foreign exec: %d %s", r.Status, r.Body)
	}

	// Invalid paths.
	for _, c := range []struct{ path, reason string }{
		{"", "empty_path"}, {"/etc/passwd", "absolute_path"}, {"../x", "path_traversal"}, {"a/../../x", "path_traversal"},
	} {
		r := g.do("GET", "/v1/sandboxes/"+id+"/filesystem/files?path="+c.path, nil)
		if r.Status != 400 || r.errCode(t) != "invalid_path" {
			t.Fatalf("path %q: %d %s", c.path, r.Status, r.Body)
		}
		if got := r.json(t)["error"].(map[string]any)["details"].(map[string]any)["reason"]; got != c.reason {
			t.Fatalf("path %q: reason %v, want %s", c.path, got, c.reason)
		}
	}
	if r := g.do("POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "1", "timeout": 0}); r.Status != 422 {
		t.Fatalf("timeout 0: %d", r.Status)
	}

	// Five parallel first calls on a fresh sandbox start one session; all succeed.
	sb2 := g.must(201, "POST", "/v1/sandboxes", nil)
	id2 := sb2["id"].(string)
	var wg sync.WaitGroup
	errs := make(chan string, 5)
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := g.do("POST", "/v1/sandboxes/"+id2+"/python/exec", map[string]any{"code": fmt.Sprintf("%d*2", i)})
			if r.Status != 200 || !strings.Contains(string(r.Body), fmt.Sprintf(`"output":"%d`, i*2)) {
				errs <- fmt.Sprintf("call %d: %d %s", i, r.Status, r.Body)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := len(runtimePIDs(t, id2, "ship")); n != 1 {
		t.Fatalf("%d ship processes for one sandbox, want 1", n)
	}

	// Files: write, read, list, upload, download, delete, missing → 404.
	g.must(200, "PUT", "/v1/sandboxes/"+id+"/filesystem/files", map[string]any{"path": "dir/a.txt", "content": "hello"})
	if c := g.must(200, "GET", "/v1/sandboxes/"+id+"/filesystem/files?path=dir/./a.txt", nil)["content"]; c != "hello" {
		t.Fatalf("read: %v", c)
	}
	ls := g.must(200, "GET", "/v1/sandboxes/"+id+"/filesystem/directories?path=.", nil)
	if !strings.Contains(fmt.Sprint(ls["entries"]), "dir") {
		t.Fatalf("list: %v", ls)
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 300000) // 4.8 MB
	var mp bytes.Buffer
	w := multipart.NewWriter(&mp)
	_ = w.WriteField("path", "up/blob.bin")
	fw, _ := w.CreateFormFile("file", "blob.bin")
	_, _ = fw.Write(payload)
	_ = w.Close()
	up := g.do("POST", "/v1/sandboxes/"+id+"/filesystem/upload", mp.Bytes(), withHeader("Content-Type", w.FormDataContentType()))
	if up.Status != 200 || !strings.Contains(string(up.Body), fmt.Sprintf(`"size":%d`, len(payload))) {
		t.Fatalf("upload: %d %s", up.Status, up.Body)
	}
	// A refused upload (absolute path, traversal) is a 400 invalid_path, and
	// the connection stays usable for the next request.
	for _, bad := range []struct{ path, reason string }{{"/tmp/evil.txt", "absolute_path"}, {"../evil.txt", "path_traversal"}} {
		var bmp bytes.Buffer
		bw := multipart.NewWriter(&bmp)
		_ = bw.WriteField("path", bad.path)
		bfw, _ := bw.CreateFormFile("file", "evil.txt")
		_, _ = bfw.Write(payload)
		_ = bw.Close()
		r := g.do("POST", "/v1/sandboxes/"+id+"/filesystem/upload", bmp.Bytes(), withHeader("Content-Type", bw.FormDataContentType()))
		if r.Status != 400 || r.errCode(t) != "invalid_path" || !strings.Contains(string(r.Body), bad.reason) {
			t.Fatalf("upload to %q: %d %s", bad.path, r.Status, r.Body)
		}
		if c := g.must(200, "GET", "/v1/sandboxes/"+id+"/filesystem/files?path=dir/a.txt", nil)["content"]; c != "hello" {
			t.Fatalf("request after a refused upload: %v", c)
		}
	}
	if _, err := os.Stat("/tmp/evil.txt"); err == nil {
		t.Fatal("a refused upload wrote /tmp/evil.txt")
	}
	dl := g.do("GET", "/v1/sandboxes/"+id+"/filesystem/download?path=up/blob.bin", nil)
	if dl.Status != 200 || !bytes.Equal(dl.Body, payload) {
		t.Fatalf("download: %d, %d bytes", dl.Status, len(dl.Body))
	}
	g.must(200, "DELETE", "/v1/sandboxes/"+id+"/filesystem/files?path=dir", nil)
	if r := g.do("GET", "/v1/sandboxes/"+id+"/filesystem/files?path=dir/a.txt", nil); r.Status != 404 || r.errCode(t) != "file_not_found" {
		t.Fatalf("read deleted: %d %s", r.Status, r.Body)
	}
	if r := g.do("GET", "/v1/sandboxes/"+id+"/filesystem/download?path=nope.bin", nil); r.Status != 404 || r.errCode(t) != "file_not_found" {
		t.Fatalf("download missing: %d %s", r.Status, r.Body)
	}

	// A failing program is still 200 with success:false.
	bad := g.must(200, "POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "1/0"})
	if bad["success"] != false || !strings.Contains(fmt.Sprint(bad["error"]), "ZeroDivisionError") {
		t.Fatalf("python error: %v", bad)
	}
	shb := g.must(200, "POST", "/v1/sandboxes/"+id+"/shell/exec", map[string]any{"command": "exit 3"})
	if shb["success"] != false || shb["exit_code"].(float64) != 3 {
		t.Fatalf("shell exit: %v", shb)
	}

	// Metrics: Prometheus text, no auth, route patterns as labels.
	m := g.do("GET", "/metrics", nil, withoutAuth())
	body := string(m.Body)
	for _, want := range []string{
		`bay_http_requests_total{method="POST",route="/v1/sandboxes/:id/python/exec",status="200"}`,
		`bay_http_requests_total{method="GET",route="/v1",status="401"} 2`,
		`bay_sessions{phase="ready"} 2`,
	} {
		if m.Status != 200 || !strings.Contains(body, want) {
			t.Fatalf("metrics lack %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, id) {
		t.Fatalf("metrics leak raw paths: %s", body)
	}
	_ = io.Discard
}
