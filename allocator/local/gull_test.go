package local

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/internal/testutil"
	"github.com/bay-sandbox/bay/profiles"
)

// TestRealGullLeavesNothingBehind drives a real browser through the real
// gull binary, then stops the session: the agent-browser daemon and Chromium,
// however they detach, must be gone with it.
func TestRealGullLeavesNothingBehind(t *testing.T) {
	if _, err := os.Stat(filepath.Join(testutil.RepoRoot(t), "cmd", "gull", "main.go")); err != nil && os.Getenv("CI") != "true" {
		t.Skip("cmd/gull is not written yet")
	}
	testutil.Chromium(t)
	ab := testutil.AgentBrowser(t)
	gull := testutil.Binary(t, "gull")
	cfg := testConfig(t)
	cfg.Binaries = map[string]string{profiles.RuntimeGull: gull}
	cfg.ExtraEnv = map[string][]string{profiles.RuntimeGull: append(testutil.BrowserEnv(), "BAY_AGENT_BROWSER="+ab)}
	cfg.GracePeriod = 15 * time.Second
	a := newAlloc(t, cfg)
	p := &profiles.Profile{
		ID:         "browser",
		Restart:    profiles.RestartPolicy{Attempts: 1, Delay: 50 * time.Millisecond},
		Containers: []profiles.Container{{Name: "gull", RuntimeType: profiles.RuntimeGull, Capabilities: []string{"browser"}}},
	}
	req := startReq(t, a, p)
	sess := mustStart(t, a, req)
	var out struct {
		Stdout   string `json:"stdout"`
		Stderr   string `json:"stderr"`
		ExitCode int    `json:"exit_code"`
	}
	postJSON(t, sess.Endpoints["gull"].URL+"/exec", map[string]any{"cmd": "open about:blank", "timeout": 60}, &out)
	if out.ExitCode != 0 {
		t.Fatalf("open: %+v", out)
	}
	a.mu.Lock()
	tag := a.sessions[req.SessionID].conts[0].proc.tag
	a.mu.Unlock()
	tagged := taggedProcesses(tag)
	if len(tagged) < 2 {
		t.Fatalf("only %d processes carry the run's tag; expected gull and the browser", len(tagged))
	}
	t.Logf("%d processes carry the run's tag", len(tagged))
	if err := a.Stop(context.Background(), req.SessionID); err != nil {
		t.Fatal(err)
	}
	assertGone(t, tagged...)
}

func taggedProcesses(tag string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || processGone(pid) {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/environ"); err == nil && strings.Contains(string(b), tagEnv+"="+tag+"\x00") {
			out = append(out, pid)
		}
	}
	return out
}
