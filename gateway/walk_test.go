package gateway_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestWalkEveryRouteWithMalformedInput sends malformed ids, bodies, types
// and numbers to every route. Nothing may answer a 5xx other than 503,
// hang, or touch anything outside the workspace, and the sandbox and its
// files are still there afterwards. Bounded to about two minutes.
func TestWalkEveryRouteWithMalformedInput(t *testing.T) {
	if testing.Short() {
		t.Skip("the route walk takes minutes; skipped with -short")
	}
	h := newHarness(t, harnessOpts{})
	sb := h.create(map[string]any{"ttl": 3600})
	id := str(sb["id"])
	h.must(200, "PUT", sbPath(id, "/filesystem/files"), map[string]any{"path": "keep/me.txt", "content": "precious"})
	h.create(nil) // a second sandbox (and cargo) the walk must not reach
	canary := filepath.Join(h.dataDir, "canary.txt")
	if err := os.WriteFile(canary, []byte("untouched"), 0o600); err != nil {
		t.Fatal(err)
	}
	top := func() []string {
		ents, _ := os.ReadDir(h.dataDir)
		var names []string
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), "bay.db") {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		return names
	}
	before := strings.Join(top(), ",")

	long := strings.Repeat("z", 300)
	ids := []string{"sandbox-000000000000", "..%2F..%2Fetc", "%00", long, "x%20y"}
	params := []string{"x", "..%2F..", long, "blob:" + long}
	bodies := []string{
		"", "{", "[]", "null", `"s"`, `{"a":1}{"b":2}`,
		`{"ttl": 1e400, "extend_by": 9223372036854775808, "timeout": -1, "limit": 1e30}`,
		`{"ttl": "x", "extend_by": [], "timeout": {}, "code": 1, "command": true, "cmd": null, "commands": "x", "path": 5, "content": [], "size_limit_mb": -5, "tasks": 7, "profile": [], "cargo_id": {}, "cwd": 1}`,
		`{"ttl": 10000000000, "extend_by": 10000000000, "timeout": 100000, "size_limit_mb": 100000000, "commands": [], "tasks": ["nope"]}`,
		`{"path": "../../../canary.txt", "content": "pwned", "cwd": "../..", "code": "open('/etc/hostname').read()", "timeout": 1000}`,
		`{"path": "/etc/passwd", "content": "x", "cmd": "a\u0000b", "command": "echo\u0000x", "timeout": 0}`,
		`{"profile": "` + long + `", "cargo_id": "../../x", "passed": "yes", "score": "high", "version": -1, "payload": 5}`,
	}
	queries := []string{"", "?path=../../canary.txt&limit=-1&offset=1e99&cursor=zz&status=bogus",
		"?path=%00&limit=99999999999999999999&managed=maybe&success_only=2", "?path=" + url.QueryEscape(strings.Repeat("a/", 2100))}

	routes := h.srv.App().GetRoutes(true)
	hc := &http.Client{Timeout: 30 * time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	sent := 0
	fill := func(p, sandboxID, other string) string {
		var out []string
		for _, seg := range strings.Split(p, "/") {
			switch {
			case seg == ":id":
				out = append(out, sandboxID)
			case strings.HasPrefix(seg, ":"):
				out = append(out, other)
			default:
				out = append(out, seg)
			}
		}
		return strings.Join(out, "/")
	}
	check := func(method, target, body string) {
		t.Helper()
		req, err := http.NewRequest(method, h.url+target, strings.NewReader(body))
		if err != nil {
			return // a target Go itself cannot send
		}
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		res, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s %.80q: %v (after %s)", method, target, body, err, time.Since(start))
		}
		res.Body.Close()
		if res.StatusCode >= 500 && res.StatusCode != 503 {
			t.Fatalf("%s %s %.120q: %d", method, target, body, res.StatusCode)
		}
		sent++
	}
walk:
	for _, rt := range routes {
		if rt.Method == "HEAD" || rt.Method == "CONNECT" || rt.Method == "TRACE" || rt.Path == "/" || !strings.HasPrefix(rt.Path, "/v1/") {
			continue
		}
		targets := []string{}
		for _, bad := range ids {
			for _, p := range params[:2] {
				targets = append(targets, fill(rt.Path, bad, p))
			}
		}
		// The real sandbox, with malformed inner ids, bodies and queries;
		// never deleted or stopped (its files must survive the walk).
		if rt.Method != "DELETE" || strings.Contains(rt.Path, "/filesystem/") {
			for _, p := range params {
				targets = append(targets, fill(rt.Path, id, p))
			}
		}
		for _, tg := range targets {
			for _, q := range queries {
				for _, b := range bodies {
					if time.Now().After(deadline) {
						t.Logf("walk stopped at its time bound")
						break walk
					}
					check(rt.Method, tg+q, b)
				}
			}
		}
	}
	t.Logf("%d requests over %d routes", sent, len(routes))
	if sent < 500 {
		t.Fatalf("only %d requests sent", sent)
	}

	// Nothing outside the workspace changed, the sandbox and file remain.
	if b, err := os.ReadFile(canary); err != nil || string(b) != "untouched" {
		t.Fatalf("canary outside the workspace: %q %v", b, err)
	}
	if after := strings.Join(top(), ","); after != before {
		t.Fatalf("data dir changed: %s → %s", before, after)
	}
	got := h.must(200, "GET", sbPath(id), nil)
	if got["status"] == "expired" {
		t.Fatalf("sandbox expired by the walk: %v", got)
	}
	if r := h.must(200, "GET", sbPath(id, "/filesystem/files?path=keep/me.txt"), nil); r["content"] != "precious" {
		t.Fatalf("file after the walk: %v", r)
	}
}
