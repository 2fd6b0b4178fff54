package gull

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/internal/testutil"
	"github.com/bay-sandbox/bay/runtimes/wire"
)

const testPage = `<!doctype html>
<html><head><title>Gull Test Page</title></head>
<body>
<h1>Gull</h1>
<input id="name" aria-label="Name">
<button id="go" onclick="document.getElementById('out').textContent = document.getElementById('name').value">Greet</button>
<p id="out"></p>
<p id="cookie">%s</p>
</body></html>`

// gullProc is a running gull binary.
type gullProc struct {
	cmd    *exec.Cmd
	client *Client
	log    string        // gull's output, a file so no grandchild can hold a pipe open
	done   chan struct{} // closed when the process has exited; err is then set
	err    error
}

func (g *gullProc) output() string {
	b, _ := os.ReadFile(g.log)
	return string(b)
}

func startGull(t *testing.T, bin string, env []string, args ...string) *gullProc {
	t.Helper()
	port := testutil.FreePort(t)
	cmd := exec.Command(bin, append([]string{"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--log-level", "debug"}, args...)...)
	const secret = "gull-e2e-secret"
	cmd.Env = append(slices.Clip(env), wire.SecretEnv+"="+secret)
	out, err := os.CreateTemp(t.TempDir(), "gull-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &gullProc{cmd: cmd, client: NewClient(fmt.Sprintf("http://127.0.0.1:%d", port), wire.WithSecret(nil, secret)), log: out.Name(), done: make(chan struct{})}
	go func() { g.err = cmd.Wait(); close(g.done) }()
	t.Cleanup(func() {
		select {
		case <-g.done:
		default:
			_ = cmd.Process.Kill()
			<-g.done
		}
		if t.Failed() {
			t.Logf("gull output:\n%s", g.output())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		h, err := g.client.Health(ctx)
		cancel()
		if err == nil && h.Status == StatusHealthy {
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("gull not healthy: %+v %v\n%s", h, err, g.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and expects a clean exit.
func (g *gullProc) stop(t *testing.T) {
	t.Helper()
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
		if g.err != nil {
			t.Fatalf("gull exited with %v after SIGTERM\n%s", g.err, g.output())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("gull did not exit after SIGTERM\n%s", g.output())
	}
}

func (g *gullProc) exec(t *testing.T, cmd string, timeout int) ExecResponse {
	t.Helper()
	res, err := g.client.Exec(context.Background(), ExecRequest{Cmd: cmd, Timeout: timeout})
	if err != nil {
		t.Fatalf("exec %q: %v", cmd, err)
	}
	return res
}

func (g *gullProc) mustExec(t *testing.T, cmd string) string {
	t.Helper()
	res := g.exec(t, cmd, 60)
	if res.ExitCode != 0 {
		t.Fatalf("exec %q: exit %d\nstdout: %s\nstderr: %s", cmd, res.ExitCode, res.Stdout, res.Stderr)
	}
	if res.Stderr != "" {
		// A warning here (e.g. "already running") means Gull's injected
		// flags disagree with the running daemon.
		t.Errorf("exec %q: unexpected stderr %q", cmd, res.Stderr)
	}
	return res.Stdout
}

// TestBrowserEndToEnd drives real Chromium through the gull binary. It is one
// test on purpose: every browser start costs seconds.
func TestBrowserEndToEnd(t *testing.T) {
	bin := testutil.Binary(t, "gull")
	ab := testutil.AgentBrowser(t)
	testutil.Chromium(t)

	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/setcookie" {
			http.SetCookie(w, &http.Cookie{Name: "bay_state", Value: "persisted", Path: "/", MaxAge: 3600})
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, testPage, r.Header.Get("Cookie"))
	}))
	defer site.Close()

	ws := t.TempDir()
	// Daemon sockets live in a short private dir (unix socket paths are
	// limited to ~108 bytes) so parallel test packages never share a daemon.
	sock, err := os.MkdirTemp("", "gull-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	session := fmt.Sprintf("gulltest-%d", os.Getpid())
	daemon := newDaemonFiles([]string{"AGENT_BROWSER_SOCKET_DIR=" + sock}, session)
	t.Cleanup(func() {
		// Last resort: never leave a daemon (and its Chromium) behind.
		if pid, alive := daemon.pid(); alive {
			t.Errorf("browser daemon %d still running at cleanup; killing it", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = os.RemoveAll(sock)
	})
	env := testutil.Env(append(testutil.BrowserEnv(), "AGENT_BROWSER_SOCKET_DIR="+sock, "BAY_SANDBOX_ID="+session)...)
	args := []string{"--workspace", ws, "--agent-browser", ab}

	g := startGull(t, bin, env, args...)
	ctx := context.Background()
	h, _ := g.client.Health(ctx)
	if *h.BrowserActive || h.Session != session {
		t.Fatalf("before any command: %+v (active %v)", h, *h.BrowserActive)
	}
	m, err := g.client.Meta(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Capabilities["browser"].(map[string]any)["cli_version"].(string); !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(v) {
		t.Fatalf("meta cli_version = %q", v)
	}

	coldStart := time.Now()
	if out := g.mustExec(t, "open "+site.URL+"/"); !strings.Contains(out, "Gull Test Page") {
		t.Fatalf("open printed %q", out)
	}
	t.Logf("first open (browser launch) took %v", time.Since(coldStart))
	h, _ = g.client.Health(ctx)
	if !*h.BrowserActive || !*h.BrowserReady {
		t.Fatalf("after open: active %v ready %v", *h.BrowserActive, *h.BrowserReady)
	}
	if out := g.mustExec(t, "get title"); strings.TrimSpace(out) != "Gull Test Page" {
		t.Fatalf("get title = %q", out)
	}

	// Refs from the snapshot, a quoted argument with a space, and the result.
	snap := g.mustExec(t, "snapshot -i")
	textbox := regexp.MustCompile(`textbox "Name" \[ref=(e\d+)\]`).FindStringSubmatch(snap)
	button := regexp.MustCompile(`button "Greet" \[ref=(e\d+)\]`).FindStringSubmatch(snap)
	if textbox == nil || button == nil {
		t.Fatalf("snapshot lacks the textbox or button:\n%s", snap)
	}
	g.mustExec(t, fmt.Sprintf(`fill @%s "hello world"`, textbox[1]))
	g.mustExec(t, "click @"+button[1])
	if out := g.mustExec(t, "get text #out"); strings.TrimSpace(out) != "hello world" {
		t.Fatalf("get text #out = %q, want the filled text", out)
	}

	// Screenshots land in the workspace: by relative path, and by default.
	g.mustExec(t, "screenshot shot.png")
	assertPNG(t, filepath.Join(ws, "shot.png"))
	out := g.mustExec(t, "screenshot")
	m2 := regexp.MustCompile(`(\S+\.png)`).FindStringSubmatch(out)
	if m2 == nil || filepath.Dir(m2[1]) != ws {
		t.Fatalf("default screenshot not in the workspace: %q", out)
	}
	assertPNG(t, m2[1])

	// A batch whose middle step fails stops there.
	br, err := g.client.ExecBatch(ctx, BatchRequest{Commands: []string{"get title", "click #does-not-exist", "get url"}, Timeout: 60})
	if err != nil {
		t.Fatal(err)
	}
	if br.TotalSteps != 3 || br.CompletedSteps != 2 || br.Success || len(br.Results) != 2 ||
		strings.TrimSpace(br.Results[0].Stdout) != "Gull Test Page" || br.Results[1].ExitCode == 0 || br.Results[1].StepIndex != 1 {
		t.Fatalf("batch = %+v", br)
	}

	// A timeout kills the CLI and answers -1; health stays responsive meanwhile.
	type result struct {
		res ExecResponse
		d   time.Duration
	}
	timed := make(chan result, 1)
	go func() {
		start := time.Now()
		res, _ := g.client.Exec(ctx, ExecRequest{Cmd: "wait 4000", Timeout: 1})
		timed <- result{res, time.Since(start)}
	}()
	time.Sleep(300 * time.Millisecond)
	hctx, cancel := context.WithTimeout(ctx, time.Second)
	h, err = g.client.Health(hctx)
	cancel()
	if err != nil || h.Status != StatusHealthy {
		t.Fatalf("health during a running command: %+v %v", h, err)
	}
	r := <-timed
	if r.res.ExitCode != -1 || !strings.Contains(r.res.Stderr, "timed out") || r.d > 3*time.Second {
		t.Fatalf("timeout: %+v after %v", r.res, r.d)
	}

	// State set now must survive a restart on the same workspace.
	g.mustExec(t, "open "+site.URL+"/setcookie")
	g.mustExec(t, `eval "localStorage.setItem('gull', 'kept')"`)
	pid, alive := daemon.pid()
	if !alive {
		t.Fatal("no daemon pid before shutdown")
	}
	g.stop(t)
	if processAlive(pid) {
		t.Fatalf("daemon %d survived gull's shutdown", pid)
	}

	g = startGull(t, bin, env, args...)
	g.mustExec(t, "open "+site.URL+"/cookie")
	if out := g.mustExec(t, "get text #cookie"); !strings.Contains(out, "bay_state=persisted") {
		t.Fatalf("cookie after restart: %q", out)
	}
	if out := g.mustExec(t, `eval "localStorage.getItem('gull')"`); !strings.Contains(out, "kept") {
		t.Fatalf("localStorage after restart: %q", out)
	}
	pid, _ = daemon.pid()
	g.stop(t)
	if processAlive(pid) {
		t.Fatalf("daemon %d survived the second shutdown", pid)
	}
}

func assertPNG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 100 {
		t.Fatalf("%s is not a PNG (%d bytes)", path, len(b))
	}
}
