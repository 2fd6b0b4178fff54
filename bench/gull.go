package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bay-sandbox/bay/runtimes/gull"
	"github.com/bay-sandbox/bay/runtimes/wire"
)

// benchGull measures Gull's cost over calling agent-browser directly, in the
// same run against the same browser daemon: `get title` latency through Gull's
// HTTP API vs a direct CLI call (calls interleaved so both see the same
// machine state), and cold time from process start to the first successful
// `open` for Gull vs the bare CLI (each with a fresh profile).
func benchGull(ctx context.Context, r *Reporter) error {
	bin, err := Binary("gull")
	if err != nil {
		return err
	}
	ab, err := gullAgentBrowser()
	if err != nil {
		return err
	}
	site, err := gullSite()
	if err != nil {
		return err
	}
	defer site.Close()
	url := "http://" + site.Addr + "/"

	tmp, err := os.MkdirTemp("", "bgull-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ws := filepath.Join(tmp, "ws")
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return err
	}
	session := fmt.Sprintf("bench-gull-%d", os.Getpid())
	env := gullBrowserEnv("AGENT_BROWSER_SOCKET_DIR="+tmp, "BAY_SANDBOX_ID="+session)

	port, err := freePort()
	if err != nil {
		return err
	}
	start := time.Now()
	// stop's SIGTERM makes Gull close the browser before it exits.
	const secret = "bench-gull-secret"
	stop, err := startProcess(ctx, bin, append(env, wire.SecretEnv+"="+secret), os.Stderr,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--workspace", ws, "--agent-browser", ab, "--log-level", "warn")
	if err != nil {
		return fmt.Errorf("start gull: %w", err)
	}
	defer stop()
	c := gull.NewClient(fmt.Sprintf("http://127.0.0.1:%d", port), wire.WithSecret(nil, secret))
	if err := waitFor(ctx, 15*time.Second, 10*time.Millisecond, func(ctx context.Context) error {
		h, err := c.Health(ctx)
		if err == nil && h.Status != gull.StatusHealthy {
			err = fmt.Errorf("health %+v", h)
		}
		return err
	}); err != nil {
		return fmt.Errorf("gull not healthy: %w", err)
	}
	r.Value("gull_cold_healthy", ms(time.Since(start)), "ms")
	if _, err := gullExec(ctx, c, "open "+url); err != nil {
		return fmt.Errorf("first open: %w", err)
	}
	r.Value("gull_cold_first_open", ms(time.Since(start)), "ms")

	// Baseline cold start: the bare CLI with a fresh session and profile.
	baseSession := session + "-direct"
	baseProfile := filepath.Join(tmp, "direct-profile")
	start = time.Now()
	if out, err := gullDirect(ctx, ab, ws, env, baseSession, baseProfile, "open", url); err != nil {
		return fmt.Errorf("direct open: %w: %s", err, out)
	}
	r.Value("agent_browser_cold_first_open", ms(time.Since(start)), "ms")
	_, _ = gullDirect(ctx, ab, ws, env, baseSession, baseProfile, "close")

	// The HTTP round trip alone, for reading the overhead below.
	health, err := Latencies(r.N, func() error {
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := c.Health(hctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	r.ReportLatency("gull_http_health", health)

	// Warm: the same command through Gull and directly, interleaved, against
	// the daemon Gull started (same session, same profile flags).
	profile := filepath.Join(ws, gull.ProfileSubdir)
	viaGull := make([]time.Duration, 0, r.N)
	direct := make([]time.Duration, 0, r.N)
	for i := 0; i < r.N; i++ {
		t0 := time.Now()
		out, err := gullExec(ctx, c, "get title")
		if err != nil {
			return fmt.Errorf("gull get title: %w", err)
		}
		viaGull = append(viaGull, time.Since(t0))
		if strings.TrimSpace(out) != "Bench Page" {
			return fmt.Errorf("gull get title printed %q", out)
		}
		t0 = time.Now()
		dout, err := gullDirect(ctx, ab, ws, env, session, profile, "get", "title")
		if err != nil {
			return fmt.Errorf("direct get title: %w: %s", err, dout)
		}
		direct = append(direct, time.Since(t0))
	}
	sortDurations(viaGull)
	sortDurations(direct)
	r.ReportLatency("gull_get_title", viaGull)
	r.ReportLatency("agent_browser_get_title", direct)
	r.Ratio("gull_get_title_overhead_p50", Pct(viaGull, 50), Pct(direct, 50))
	return nil
}

func gullExec(ctx context.Context, c *gull.Client, cmd string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	res, err := c.Exec(cctx, gull.ExecRequest{Cmd: cmd, Timeout: 60})
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("exit %d: %s", res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	return res.Stdout, nil
}

// gullDirect runs the CLI the way Gull does (cwd = workspace, same flags).
func gullDirect(ctx context.Context, ab, ws string, env []string, session, profile string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, ab, append([]string{"--session", session, "--profile", profile}, args...)...)
	cmd.Dir = ws
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// gullAgentBrowser finds the CLI: BAY_AGENT_BROWSER, the repository's
// node_modules, then PATH.
func gullAgentBrowser() (string, error) {
	if p := os.Getenv("BAY_AGENT_BROWSER"); p != "" {
		return p, nil
	}
	if p, err := filepath.Abs(filepath.Join("node_modules", "agent-browser", "bin", "agent-browser-linux-x64")); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("agent-browser")
	if err != nil {
		return "", fmt.Errorf("agent-browser not found (npm ci, or set BAY_AGENT_BROWSER)")
	}
	return p, nil
}

// gullBrowserEnv is the environment with Debian's Chromium settings (unless
// the operator set them) and extra pairs.
func gullBrowserEnv(extra ...string) []string {
	env := os.Environ()
	if os.Getenv("AGENT_BROWSER_EXECUTABLE_PATH") == "" {
		env = append(env, "AGENT_BROWSER_EXECUTABLE_PATH=/usr/bin/chromium")
	}
	if os.Getenv("AGENT_BROWSER_ARGS") == "" {
		env = append(env, "AGENT_BROWSER_ARGS=--no-sandbox,--disable-gpu,--disable-background-networking,--disable-component-update,--disable-sync,--no-first-run")
	}
	return append(env, extra...)
}

func gullSite() (*http.Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Addr: ln.Addr().String(), Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!doctype html><title>Bench Page</title><h1>bench</h1>")
	})}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}
