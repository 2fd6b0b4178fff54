package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/client"
	"github.com/bay-sandbox/bay/internal/openapi"
	"github.com/bay-sandbox/bay/internal/testutil"
)

// contractCheck validates every response of a real gateway against
// docs/openapi.json.
type contractCheck struct {
	t   *testing.T
	g   *gateway
	doc *openapi.Doc
	n   int
}

func newContractCheck(t *testing.T, g *gateway) *contractCheck {
	doc, err := openapi.Load()
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	return &contractCheck{t: t, g: g, doc: doc}
}

// do sends a request, checks its status and validates the answer.
func (cc *contractCheck) do(status int, method, path string, body any, opts ...reqOpt) map[string]any {
	cc.t.Helper()
	r := cc.g.do(method, path, body, opts...)
	if r.Status != status {
		cc.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, status, r.Body)
	}
	cc.validate(method, path, r)
	if len(r.Body) == 0 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return nil
	}
	return r.json(cc.t)
}

func (cc *contractCheck) validate(method, path string, r response) {
	cc.t.Helper()
	if err := cc.doc.ValidateResponse(method, path, r.Status, r.Header.Get("Content-Type"), r.Body); err != nil {
		cc.t.Errorf("contract: %v", err)
	}
	cc.n++
}

// TestOpenAPIResponses drives a real gateway through every area of the API,
// successes and refusals, and validates each answer against the document.
func TestOpenAPIResponses(t *testing.T) {
	g := startGateway(t, profilesHCL)
	cc := newContractCheck(t, g)

	cc.do(200, "GET", "/health", nil, withoutAuth())
	cc.do(200, "GET", "/openapi.json", nil, withoutAuth())
	cc.do(200, "GET", "/v1/profiles", nil, withoutAuth())
	cc.do(200, "GET", "/v1/profiles?detail=true", nil, withoutAuth())
	cc.do(422, "GET", "/v1/profiles?detail=maybe", nil)
	cc.do(401, "GET", "/v1/sandboxes", nil, withoutAuth())
	cc.do(401, "GET", "/v1/sandboxes", nil, withHeader("Authorization", "Bearer wrong"))

	sb := cc.do(201, "POST", "/v1/sandboxes", map[string]any{"profile": "python-default"}, withHeader("Idempotency-Key", "contract-1"))
	id := sb["id"].(string)
	cc.do(201, "POST", "/v1/sandboxes", map[string]any{"profile": "python-default"}, withHeader("Idempotency-Key", "contract-1"))
	cc.do(409, "POST", "/v1/sandboxes", map[string]any{"profile": "browser-python"}, withHeader("Idempotency-Key", "contract-1"))
	cc.do(400, "POST", "/v1/sandboxes", map[string]any{"profile": "nope"})
	cc.do(422, "POST", "/v1/sandboxes", map[string]any{"ttl": "soon"})
	cc.do(404, "POST", "/v1/sandboxes", map[string]any{"cargo_id": "ws-000000000000"})
	cc.do(200, "GET", "/v1/sandboxes", nil)
	cc.do(200, "GET", "/v1/sandboxes?limit=1&status=ready", nil)
	cc.do(422, "GET", "/v1/sandboxes?limit=0", nil)
	cc.do(404, "GET", "/v1/sandboxes/sandbox-000000000000", nil)

	sp := "/v1/sandboxes/" + id
	py := cc.do(200, "POST", sp+"/python/exec", map[string]any{"code": "print('hi')\n1+2", "include_code": true, "tags": "b, a"})
	cc.do(200, "POST", sp+"/python/exec", map[string]any{"code": "1/0"})
	cc.do(422, "POST", sp+"/python/exec", map[string]any{"code": "1", "timeout": 0})
	cc.do(422, "POST", sp+"/python/exec", "{not json")
	cc.do(200, "GET", sp, nil) // now with containers
	cc.do(200, "POST", sp+"/shell/exec", map[string]any{"command": "echo out; echo err >&2; exit 3", "cwd": "."})
	cc.do(400, "POST", sp+"/shell/exec", map[string]any{"command": "pwd", "cwd": "../etc"})
	cc.do(400, "POST", sp+"/browser/exec", map[string]any{"cmd": "open about:blank"})
	cc.do(400, "GET", sp+"/browser/traces/blob:nope", nil)
	cc.do(200, "PUT", sp+"/filesystem/files", map[string]any{"path": "d/a.txt", "content": "hello"})
	cc.do(200, "GET", sp+"/filesystem/files?path=d/a.txt", nil)
	cc.do(404, "GET", sp+"/filesystem/files?path=missing.txt", nil)
	cc.do(400, "GET", sp+"/filesystem/files?path=/etc/passwd", nil)
	cc.do(200, "GET", sp+"/filesystem/directories?path=.", nil)

	var mp bytes.Buffer
	w := multipart.NewWriter(&mp)
	_ = w.WriteField("path", "up/b.bin")
	fw, _ := w.CreateFormFile("file", "b.bin")
	_, _ = fw.Write([]byte{0, 1, 2, 3})
	_ = w.Close()
	cc.do(200, "POST", sp+"/filesystem/upload", mp.Bytes(), withHeader("Content-Type", w.FormDataContentType()))
	cc.do(422, "POST", sp+"/filesystem/upload", "x", withHeader("Content-Type", "text/plain"))
	cc.do(200, "GET", sp+"/filesystem/download?path=up/b.bin", nil)
	cc.do(404, "GET", sp+"/filesystem/download?path=nope.bin", nil)
	cc.do(200, "DELETE", sp+"/filesystem/files?path=d", nil)

	cc.do(200, "GET", sp+"/history", nil)
	cc.do(200, "GET", sp+"/history?exec_type=python&success_only=true&tags=a&limit=5", nil)
	cc.do(422, "GET", sp+"/history?exec_type=cobol", nil)
	cc.do(200, "GET", sp+"/history/last?exec_type=shell", nil)
	cc.do(404, "GET", sp+"/history/last?exec_type=browser", nil)
	execID := py["execution_id"].(string)
	cc.do(200, "GET", sp+"/history/"+execID, nil)
	cc.do(200, "PATCH", sp+"/history/"+execID, map[string]any{"notes": "checked", "tags": "x,y"})
	cc.do(404, "GET", sp+"/history/exec-000000000000", nil)

	cc.do(409, "POST", sp+"/extend_ttl", map[string]any{"extend_by": 60})
	cc.do(422, "POST", sp+"/extend_ttl", map[string]any{})
	cc.do(200, "POST", sp+"/keepalive", nil)

	cg := cc.do(201, "POST", "/v1/cargos", map[string]any{"size_limit_mb": 64})
	cc.do(201, "POST", "/v1/cargos", nil)
	cc.do(422, "POST", "/v1/cargos", map[string]any{"size_limit_mb": 0})
	cc.do(200, "GET", "/v1/cargos", nil)
	cc.do(200, "GET", "/v1/cargos?managed=true", nil)
	cc.do(200, "GET", "/v1/cargos/"+cg["id"].(string), nil)
	cc.do(409, "DELETE", "/v1/cargos/"+sb["cargo_id"].(string), nil)
	cc.do(204, "DELETE", "/v1/cargos/"+cg["id"].(string), nil)
	cc.do(404, "GET", "/v1/cargos/"+cg["id"].(string), nil)

	pl := cc.do(201, "POST", "/v1/skills/payloads", map[string]any{"payload": map[string]any{"commands": []string{"open about:blank"}}, "kind": "browser"})
	cc.do(200, "GET", "/v1/skills/payloads/"+pl["payload_ref"].(string), nil)
	cc.do(422, "POST", "/v1/skills/payloads", map[string]any{"payload": 3})
	cand := cc.do(201, "POST", "/v1/skills/candidates", map[string]any{"skill_key": "k", "source_execution_ids": []string{execID}})
	cid := cand["id"].(string)
	cc.do(200, "GET", "/v1/skills/candidates", nil)
	cc.do(200, "GET", "/v1/skills/candidates/"+cid, nil)
	cc.do(409, "POST", "/v1/skills/candidates/"+cid+"/promote", map[string]any{"stage": "canary"})
	cc.do(200, "POST", "/v1/skills/candidates/"+cid+"/evaluate", map[string]any{"passed": true, "score": 0.9})
	rel := cc.do(200, "POST", "/v1/skills/candidates/"+cid+"/promote", map[string]any{"stage": "stable"})
	cc.do(200, "GET", "/v1/skills/releases", nil)
	cc.do(200, "GET", "/v1/skills/releases/"+rel["id"].(string)+"/health", nil)
	cc.do(200, "DELETE", "/v1/skills/releases/"+rel["id"].(string), map[string]any{"reason": "test"})
	cc.do(200, "DELETE", "/v1/skills/candidates/"+cid, nil)

	cc.do(200, "GET", "/v1/admin/gc/status", nil)
	cc.do(200, "POST", "/v1/admin/gc/run", map[string]any{"tasks": []string{"orphan_cargo"}})
	cc.do(422, "POST", "/v1/admin/gc/run", map[string]any{"tasks": []string{"everything"}})
	if r := g.do("GET", "/v1/no/such/route", nil); r.Status != 404 || cc.doc.ValidateSchema("Error", r.Body) != nil {
		t.Errorf("unknown route: %d %s", r.Status, r.Body)
	}

	// Streamed answers: every event's data validates too.
	for _, tc := range []struct{ path, body, result string }{
		{sp + "/shell/exec", `{"command":"echo a; echo b >&2"}`, "ShellExecResult"},
		{sp + "/python/exec", `{"code":"print('a')"}`, "PythonExecResult"},
	} {
		events := streamEvents(t, g, tc.path, tc.body)
		for i, ev := range events {
			schema := map[string]string{"output": "OutputEvent", "result": tc.result, "error": "Error"}[ev.name]
			if schema == "" {
				t.Fatalf("unknown event %q", ev.name)
			}
			if err := cc.doc.ValidateSchema(schema, ev.data); err != nil {
				t.Errorf("%s event %d (%s): %v: %s", tc.path, i, ev.name, err, ev.data)
			}
			cc.n++
		}
		if last := events[len(events)-1]; last.name != "result" {
			t.Fatalf("%s: stream ended with %q, want result", tc.path, last.name)
		}
	}

	cc.do(200, "POST", sp+"/stop", nil)
	cc.do(204, "DELETE", sp, nil)
	cc.do(204, "DELETE", sp, nil)
	t.Logf("%d responses validated against docs/openapi.json", cc.n)
}

type sseEvent struct {
	name string
	data []byte
	at   time.Duration
}

// streamEvents posts body with Accept: text/event-stream and returns the
// events with their arrival times.
func streamEvents(t *testing.T, g *gateway, path, body string) []sseEvent {
	t.Helper()
	req, _ := http.NewRequest("POST", g.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream %s: %d %s: %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var out []sseEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var cur sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.name != "" {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
			cur.at = time.Since(start)
		case strings.HasPrefix(line, "data: "):
			cur.data = []byte(strings.TrimPrefix(line, "data: "))
		}
	}
	if len(out) == 0 {
		t.Fatalf("stream %s: no events", path)
	}
	return out
}

// TestStreamedShellFirstLineEarly: the first line of a command reaches the
// client while the command still runs, and the final result equals the
// unstreamed one and is in history.
func TestStreamedShellFirstLineEarly(t *testing.T) {
	g := startGateway(t, profilesHCL)
	id := g.must(201, "POST", "/v1/sandboxes", map[string]any{"profile": "python-default"})["id"].(string)
	sp := "/v1/sandboxes/" + id
	g.must(200, "POST", sp+"/shell/exec", map[string]any{"command": "true"}) // warm

	events := streamEvents(t, g, sp+"/shell/exec", `{"command":"echo first; sleep 2; echo last"}`)
	first, last := events[0], events[len(events)-1]
	if first.name != "output" || !strings.Contains(string(first.data), "first") {
		t.Fatalf("first event %s %s, want output with the first line", first.name, first.data)
	}
	if last.name != "result" {
		t.Fatalf("last event %s, want result", last.name)
	}
	if last.at-first.at < time.Second {
		t.Fatalf("first line at %s, result at %s: the output was not streamed as produced", first.at, last.at)
	}
	var res map[string]any
	if err := json.Unmarshal(last.data, &res); err != nil {
		t.Fatal(err)
	}
	if res["output"] != "first\nlast\n" || res["exit_code"] != float64(0) || res["success"] != true {
		t.Fatalf("result: %v", res)
	}
	h := g.must(200, "GET", sp+"/history/"+res["execution_id"].(string), nil)
	if h["output"] != "first\nlast\n" || h["exec_type"] != "shell" {
		t.Fatalf("history of the streamed call: %v", h)
	}
	t.Logf("first line after %s, result after %s", first.at, last.at)
}

// TestStreamDisconnectInterrupts: a client that goes away mid-stream stops
// the command, and nothing is recorded for it.
func TestStreamDisconnectInterrupts(t *testing.T) {
	g := startGateway(t, profilesHCL)
	id := g.must(201, "POST", "/v1/sandboxes", map[string]any{"profile": "python-default"})["id"].(string)
	sp := "/v1/sandboxes/" + id
	c := sdk(t, g)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		_, err := c.ShellStream(ctx, id, &client.ShellRequest{Command: "echo started; sleep 30; touch survived"}, func(ch client.OutputChunk) {
			select {
			case got <- struct{}{}:
			default:
			}
		})
		done <- err
	}()
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("no output")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("stream after cancel: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := g.must(200, "POST", sp+"/shell/exec", map[string]any{"command": "pgrep -f '[s]leep 30' | wc -l"})
		if strings.TrimSpace(r["output"].(string)) == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the command still runs 15s after its client went away")
		}
		time.Sleep(200 * time.Millisecond)
	}
	hist := g.must(200, "GET", sp+"/history?exec_type=shell", nil)
	for _, e := range hist["entries"].([]any) {
		if strings.Contains(e.(map[string]any)["code"].(string), "sleep 30") {
			t.Fatalf("an interrupted call was recorded: %v", e)
		}
	}
}

func sdk(t *testing.T, g *gateway) *client.Client {
	t.Helper()
	c, err := client.New(&client.Config{Address: g.url, APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSDKAgainstGateway runs the Go SDK against a real gateway.
func TestSDKAgainstGateway(t *testing.T) {
	g := startGateway(t, profilesHCL)
	c := sdk(t, g)
	ctx := context.Background()

	sb, err := c.CreateSandbox(ctx, &client.CreateSandboxRequest{Profile: "python-default", TTL: 600})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sb.ID, "sandbox-") || sb.ExpiresAt == nil {
		t.Fatalf("created: %+v", sb)
	}
	var phases []string
	ready, err := c.WaitReady(ctx, sb.ID, 20*time.Millisecond, func(s *client.Sandbox) {
		p := s.Status
		if s.Phase != nil {
			p += "/" + *s.Phase
		}
		phases = append(phases, p)
	})
	if err != nil || ready.Status != client.StatusReady {
		t.Fatalf("wait ready: %v %+v", err, ready)
	}
	for _, p := range phases {
		if strings.HasPrefix(p, "starting") && !strings.Contains(p, "/") {
			t.Fatalf("a starting sandbox without a phase: %v", phases)
		}
	}
	t.Logf("observed: %v", phases)

	py, err := c.Python(ctx, sb.ID, &client.PythonRequest{Code: "x = 21\nx * 2"})
	if err != nil || !py.Success || !strings.Contains(py.Output, "42") {
		t.Fatalf("python: %v %+v", err, py)
	}
	var chunks []string
	start := time.Now()
	var firstAt time.Duration
	ps, err := c.PythonStream(ctx, sb.ID, &client.PythonRequest{Code: "import time\nprint('one', flush=True)\ntime.sleep(1.5)\nprint('two')"},
		func(ch client.OutputChunk) {
			if firstAt == 0 {
				firstAt = time.Since(start)
			}
			chunks = append(chunks, ch.Text)
		})
	total := time.Since(start)
	if err != nil || !ps.Success || ps.Output != "one\ntwo\n" || strings.Join(chunks, "") != "one\ntwo\n" {
		t.Fatalf("python stream: %v %+v %q", err, ps, chunks)
	}
	if total-firstAt < time.Second {
		t.Fatalf("first chunk at %s of %s: not streamed", firstAt, total)
	}

	sh, err := c.Shell(ctx, sb.ID, &client.ShellRequest{Command: "exit 5"})
	if err != nil || sh.Success || sh.ExitCode == nil || *sh.ExitCode != 5 {
		t.Fatalf("shell: %v %+v", err, sh)
	}

	// Files: a streamed upload and download of 8 MiB round-trips.
	data := bytes.Repeat([]byte("0123456789abcdef"), 512<<10)
	up, err := c.Upload(ctx, sb.ID, "big/data.bin", bytes.NewReader(data))
	if err != nil || up.Size != int64(len(data)) {
		t.Fatalf("upload: %v %+v", err, up)
	}
	rc, err := c.Download(ctx, sb.ID, "big/data.bin")
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("download: %v, %d bytes", err, len(back))
	}
	if err := c.WriteFile(ctx, sb.ID, "n.txt", "note"); err != nil {
		t.Fatal(err)
	}
	if s, err := c.ReadFile(ctx, sb.ID, "n.txt"); err != nil || s != "note" {
		t.Fatalf("read: %v %q", err, s)
	}
	entries, err := c.ListFiles(ctx, sb.ID, ".")
	if err != nil || len(entries) < 2 || !entries[0].IsDir {
		t.Fatalf("list: %v %+v", err, entries)
	}

	// Typed errors carry the envelope.
	_, err = c.ReadFile(ctx, sb.ID, "missing.txt")
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 404 || ae.Code != "file_not_found" || !strings.HasPrefix(ae.RequestID, "req-") || !client.IsNotFound(err) {
		t.Fatalf("missing file: %#v", err)
	}
	_, err = c.ReadFile(ctx, sb.ID, "../x")
	if !errors.As(err, &ae) || ae.Code != "invalid_path" || ae.Details["reason"] != "path_traversal" {
		t.Fatalf("bad path: %#v", err)
	}

	hist, err := c.History(ctx, sb.ID, &client.HistoryOptions{ExecType: "python"})
	if err != nil || hist.Total != 2 || len(hist.Entries) != 2 {
		t.Fatalf("history: %v %+v", err, hist)
	}
	notes := "looked at"
	e, err := c.AnnotateExecution(ctx, sb.ID, hist.Entries[0].ID, &client.HistoryPatch{Notes: &notes})
	if err != nil || e.Notes == nil || *e.Notes != notes {
		t.Fatalf("annotate: %v %+v", err, e)
	}
	if last, err := c.LastExecution(ctx, sb.ID, "shell"); err != nil || last.Code != "exit 5" {
		t.Fatalf("last: %v %+v", err, last)
	}

	// Idempotency: the same key replays the same sandbox.
	k := client.NewIdempotencyKey()
	a, err := c.CreateSandbox(ctx, nil, client.WithIdempotencyKey(k))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.CreateSandbox(ctx, nil, client.WithIdempotencyKey(k))
	if err != nil || a.ID != b.ID {
		t.Fatalf("idempotent create: %v %s %s", err, a.ID, b.ID)
	}

	cg, err := c.CreateCargo(ctx, 32)
	if err != nil || cg.Managed || cg.SizeLimitMB != 32 {
		t.Fatalf("cargo: %v %+v", err, cg)
	}
	shared, err := c.CreateSandbox(ctx, &client.CreateSandboxRequest{CargoID: cg.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteCargo(ctx, cg.ID); client.ErrorCode(err) != "conflict" {
		t.Fatalf("delete used cargo: %v", err)
	}
	for _, id := range []string{shared.ID, a.ID, sb.ID} {
		if err := c.DeleteSandbox(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.DeleteCargo(ctx, cg.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSandbox(ctx, sb.ID); !client.IsNotFound(err) {
		t.Fatalf("deleted sandbox: %v", err)
	}
	ps2, err := c.Profiles(ctx, true)
	if err != nil || len(ps2) != 2 || len(ps2[0].Containers) == 0 {
		t.Fatalf("profiles: %v %+v", err, ps2)
	}
}

// TestCLI runs the bay binary's client commands as a subprocess, the way a
// script would.
func TestCLI(t *testing.T) {
	g := startGateway(t, profilesHCL)
	bay := testutil.Binary(t, "bay")
	dir := t.TempDir()
	run := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(bay, args...)
		cmd.Env = testutil.Env("BAY_ADDR="+g.url, "BAY_API_KEY="+testKey)
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("run bay %v: %v", args, err)
		}
		return out.String(), errb.String(), code
	}

	out, stderr, code := run("", "sandbox", "create", "-profile", "python-default")
	id := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(id, "sandbox-") || strings.Contains(id, "\n") {
		t.Fatalf("create: %d %q %q", code, out, stderr)
	}
	if stderr != "" {
		t.Fatalf("piped create printed progress: %q", stderr)
	}
	out, _, code = run("", "sandbox", "status", "-json", id)
	var st map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st["id"] != id || st["status"] != "ready" {
		t.Fatalf("status -json: %d %s", code, out)
	}
	if out, _, code = run("", "sandbox", "list"); code != 0 || !strings.Contains(out, id) {
		t.Fatalf("list: %d %s", code, out)
	}

	// Code from stdin, from arguments, from a file; exit codes.
	if out, _, code = run("x = 6 * 7\nprint(x)\n", "exec", id, "python"); code != 0 || out != "42\n" {
		t.Fatalf("python from stdin: %d %q", code, out)
	}
	if out, stderr, code = run("", "exec", id, "shell", "--", "echo out; echo err >&2; exit 7"); code != 7 || out != "out\n" || stderr != "err\n" {
		t.Fatalf("shell: %d %q %q", code, out, stderr)
	}
	if err := os.WriteFile(filepath.Join(dir, "s.sh"), []byte("echo from file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _, code = run("", "exec", id, "shell", "-f", "s.sh"); code != 0 || out != "from file\n" {
		t.Fatalf("shell -f: %d %q", code, out)
	}
	if _, stderr, code = run("", "exec", id, "python", "--", "1/0"); code != 1 || !strings.Contains(stderr, "ZeroDivisionError") {
		t.Fatalf("failing python: %d %q", code, stderr)
	}
	out, _, code = run("", "exec", "-json", id, "shell", "--", "echo hi; exit 3")
	var res map[string]any
	if code != 3 || json.Unmarshal([]byte(out), &res) != nil || res["output"] != "hi\n" || res["exit_code"] != float64(3) {
		t.Fatalf("exec -json: %d %s", code, out)
	}

	// fs put/get round trip (binary), ls, cat, a missing file.
	blob := make([]byte, 300<<10)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(dir, "in.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code = run("", "fs", "put", id, "in.bin", "data/in.bin"); code != 0 {
		t.Fatalf("put: %d %s", code, stderr)
	}
	if _, stderr, code = run("", "fs", "get", id, "data/in.bin", "out.bin"); code != 0 {
		t.Fatalf("get: %d %s", code, stderr)
	}
	if back, err := os.ReadFile(filepath.Join(dir, "out.bin")); err != nil || !bytes.Equal(back, blob) {
		t.Fatalf("round trip differs: %v (%d bytes)", err, len(back))
	}
	if out, _, code = run("", "fs", "ls", id, "data"); code != 0 || !strings.Contains(out, "in.bin") {
		t.Fatalf("ls: %d %s", code, out)
	}
	if _, _, code = run("text via stdin", "fs", "put", id, "-", "t.txt"); code != 0 {
		t.Fatalf("put from stdin: %d", code)
	}
	if out, _, code = run("", "fs", "cat", id, "t.txt"); code != 0 || out != "text via stdin" {
		t.Fatalf("cat: %d %q", code, out)
	}
	if _, stderr, code = run("", "fs", "cat", id, "missing.txt"); code != 1 || !strings.Contains(stderr, "file_not_found") {
		t.Fatalf("cat missing: %d %q", code, stderr)
	}
	if out, _, code = run("", "history", "-json", id); code != 0 || !strings.Contains(out, `"exec_type": "shell"`) {
		t.Fatalf("history: %d %s", code, out)
	}

	// Usage and refusals.
	if _, _, code = run("", "exec", id, "cobol", "--", "x"); code != 2 {
		t.Fatalf("bad language: exit %d, want 2", code)
	}
	if _, stderr, code = run("", "sandbox", "status", "sandbox-000000000000"); code != 1 || !strings.Contains(stderr, "not_found") {
		t.Fatalf("unknown sandbox: %d %q", code, stderr)
	}
	if _, stderr, code = run("", "browser", id, "open", "about:blank"); code != 1 || !strings.Contains(stderr, "capability_not_supported") {
		t.Fatalf("browser on python-default: %d %q", code, stderr)
	}
	cg, _, code := run("", "cargo", "create", "-size", "16")
	if code != 0 || !strings.HasPrefix(cg, "ws-") {
		t.Fatalf("cargo create: %d %q", code, cg)
	}
	if _, _, code = run("", "cargo", "delete", strings.TrimSpace(cg)); code != 0 {
		t.Fatalf("cargo delete: %d", code)
	}
	if _, _, code = run("", "sandbox", "stop", id); code != 0 {
		t.Fatalf("stop: %d", code)
	}
	if _, _, code = run("", "sandbox", "delete", id); code != 0 {
		t.Fatalf("delete: %d", code)
	}

	// The key from the credentials file bay serve writes.
	creds := filepath.Join(dir, "creds.json")
	if err := os.WriteFile(creds, []byte(`{"api_key":"`+testKey+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bay, "sandbox", "list", "-json", "-address", g.url, "-credentials", creds)
	cmd.Env = testutil.Env("BAY_API_KEY=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("list with credentials file: %v %s", err, b)
	}
	cmd = exec.Command(bay, "sandbox", "list", "-address", g.url)
	cmd.Env = testutil.Env("BAY_API_KEY=", "BAY_DATA_DIR="+dir)
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "unauthorized") {
		t.Fatalf("list without a key: %v %s", err, b)
	}
}
