package local

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/internal/testutil"
	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/runtimes/wire"
)

func postJSON(t *testing.T, url string, in, out any) {
	t.Helper()
	b, _ := json.Marshal(in)
	// startReq gives every session testSecret.
	resp, err := wire.WithSecret(http.DefaultClient, testSecret).Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, body.String())
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("decode %s: %v", url, err)
	}
}

// TestRealShip runs the real ship binary: it starts on its port with the
// cargo as workspace, writes into the cargo, sees the profile env from
// Python, is restarted after a crash, and leaves nothing behind on Stop
// (its Python kernel included).
func TestRealShip(t *testing.T) {
	if _, err := os.Stat(filepath.Join(testutil.RepoRoot(t), "cmd", "ship", "main.go")); err != nil && os.Getenv("CI") != "true" {
		t.Skip("cmd/ship is not written yet")
	}
	py := testutil.DebianPython(t)
	ship := testutil.Binary(t, "ship")
	cfg := testConfig(t)
	cfg.Binaries = map[string]string{profiles.RuntimeShip: ship}
	cfg.ExtraEnv = map[string][]string{profiles.RuntimeShip: {"BAY_PYTHON=" + py}}
	a := newAlloc(t, cfg)
	p := &profiles.Profile{
		ID:      "python-default",
		Env:     map[string]string{"GREETING": "hello ${SANDBOX_ID}"},
		Restart: profiles.RestartPolicy{Attempts: 2, Delay: 50 * time.Millisecond},
		Containers: []profiles.Container{
			{Name: "ship", RuntimeType: profiles.RuntimeShip, Capabilities: []string{"python", "shell", "filesystem"}},
		},
	}
	req := startReq(t, a, p)
	sess := mustStart(t, a, req)
	url := sess.Endpoints["ship"].URL

	var w struct {
		Success bool `json:"success"`
	}
	postJSON(t, url+"/fs/write_file", map[string]any{"path": "note.txt", "content": "from ship", "mode": "w"}, &w)
	if b, err := os.ReadFile(filepath.Join(req.Cargo.Locator, "note.txt")); err != nil || string(b) != "from ship" {
		t.Fatalf("cargo file = %q, %v", b, err)
	}

	var ex struct {
		Success bool `json:"success"`
		Output  struct {
			Text string `json:"text"`
		} `json:"output"`
		Error any `json:"error"`
	}
	postJSON(t, url+"/ipython/exec", map[string]any{"code": "import os\nprint(os.getpid(), os.environ['GREETING'])"}, &ex)
	fields := strings.Fields(ex.Output.Text)
	if !ex.Success || len(fields) != 3 || fields[1]+" "+fields[2] != "hello "+req.SandboxID {
		t.Fatalf("python exec = %+v", ex)
	}
	kernel, _ := strconv.Atoi(fields[0])
	assertAlive(t, kernel)

	shipPid := mustShipPid(t, a, req.SessionID)
	if err := killPid(shipPid); err != nil {
		t.Fatal(err)
	}
	if ev := waitEvent(t, a, 2*time.Second); ev.Kind != allocator.ContainerDown {
		t.Fatalf("event = %+v", ev)
	}
	ev := waitEvent(t, a, 60*time.Second)
	if ev.Kind != allocator.ContainerUp {
		t.Fatalf("event = %+v", ev)
	}
	assertGone(t, kernel) // the crashed runtime's group went with it
	resp, err := http.Get(ev.Endpoint.URL + "/health")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("health after restart: %v %v", resp, err)
	}
	resp.Body.Close()

	postJSON(t, ev.Endpoint.URL+"/ipython/exec", map[string]any{"code": "import os\nprint(os.getpid())"}, &ex)
	kernel, _ = strconv.Atoi(strings.TrimSpace(ex.Output.Text))
	shipPid = mustShipPid(t, a, req.SessionID)
	if err := a.Stop(context.Background(), req.SessionID); err != nil {
		t.Fatal(err)
	}
	assertGone(t, shipPid, kernel)
}

func mustShipPid(t *testing.T, a *Allocator, sessionID string) int {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[sessionID]
	if s == nil || s.conts[0].proc == nil {
		t.Fatal("no ship process")
	}
	return s.conts[0].proc.pid
}

func killPid(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
