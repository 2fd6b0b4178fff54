// Package testutil finds (or builds) what Bay's tests run for real: the bay,
// ship and gull binaries, Debian's Python, Chromium, agent-browser and nomad.
// When CI=true a missing prerequisite fails the test instead of skipping it,
// so a broken install step cannot turn into a silently green run.
package testutil

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var (
	buildMu   sync.Mutex
	buildDir  string
	buildDone = map[string]string{}
)

// RepoRoot is the module's root directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate testutil source")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binary returns the path of cmd/<name> (bay, ship, gull): from $BAY_BIN_DIR
// when it holds one (the Makefile builds there first), else built once per
// test process into a temporary directory.
func Binary(t testing.TB, name string) string {
	t.Helper()
	if dir := os.Getenv("BAY_BIN_DIR"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := buildDone[name]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "bay-test-bin-")
		if err != nil {
			t.Fatalf("temp dir: %v", err)
		}
		buildDir = d
	}
	out := filepath.Join(buildDir, name)
	cmd := exec.Command("go", "build", "-o", out, "./cmd/"+name)
	cmd.Dir = RepoRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	buildDone[name] = out
	return out
}

// need skips the test with reason, or fails it under CI.
func need(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("prerequisite missing in CI: %s", reason)
	}
	t.Skip(reason)
}

// DebianPython returns /usr/bin/python3 when it can import IPython.
func DebianPython(t testing.TB) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import IPython, matplotlib, numpy").Run(); err != nil {
		need(t, "no Debian python3 with IPython/matplotlib/numpy (apt-get install python3-ipython python3-matplotlib python3-numpy)")
	}
	return py
}

// Chromium returns Debian's Chromium binary.
func Chromium(t testing.TB) string {
	t.Helper()
	const p = "/usr/bin/chromium"
	if _, err := os.Stat(p); err != nil {
		need(t, "no /usr/bin/chromium (apt-get install chromium)")
	}
	return p
}

// AgentBrowser returns the native agent-browser binary installed by npm in
// the repository's node_modules.
func AgentBrowser(t testing.TB) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), "node_modules", "agent-browser", "bin", "agent-browser-linux-x64")
	if _, err := os.Stat(p); err != nil {
		need(t, "no agent-browser in node_modules (npm ci)")
	}
	return p
}

// BrowserEnv is the environment agent-browser needs on this machine to drive
// Debian's Chromium without touching the network.
func BrowserEnv() []string {
	return []string{
		"AGENT_BROWSER_EXECUTABLE_PATH=/usr/bin/chromium",
		"AGENT_BROWSER_ARGS=--no-sandbox,--disable-gpu,--disable-background-networking,--disable-component-update,--disable-sync,--no-first-run",
	}
}

// Nomad returns the nomad binary on PATH, or skips: a real Nomad is never
// faked and is not installed by CI.
func Nomad(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("nomad")
	if err != nil {
		t.Skip("no nomad binary on PATH")
	}
	return p
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Env returns os.Environ with extra KEY=VALUE pairs replacing existing keys.
func Env(extra ...string) []string {
	keys := map[string]bool{}
	for _, kv := range extra {
		keys[strings.SplitN(kv, "=", 2)[0]] = true
	}
	var out []string
	for _, kv := range os.Environ() {
		if !keys[strings.SplitN(kv, "=", 2)[0]] {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}
