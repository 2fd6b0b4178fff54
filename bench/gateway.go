package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchGateway measures the gateway on the embedded default: start-up,
// memory, cold start, and the overhead of forwarding against calling a Ship
// started the same way directly (the baseline, same run, same machine).
func benchGateway(ctx context.Context, r *Reporter) error {
	bay, err := Binary("bay")
	if err != nil {
		return err
	}
	shipBin, err := Binary("ship")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bay-bench-gw-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	g, err := startBay(ctx, bay, dir, "gw", true)
	if err != nil {
		return err
	}
	defer g.stop()
	r.Value("gateway_startup_to_health", ms(g.startup), "ms")
	r.Value("gateway_rss_idle", g.rssMB(), "MB")

	// Cold start: create → first Python result, fresh sandbox each time.
	var cold []time.Duration
	for i := 0; i < 10; i++ {
		start := time.Now()
		var sb map[string]any
		if err := g.call("POST", "/v1/sandboxes", map[string]any{"profile": "python-default"}, &sb); err != nil {
			return err
		}
		id := sb["id"].(string)
		if err := g.call("POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "1+1"}, nil); err != nil {
			return err
		}
		cold = append(cold, time.Since(start))
		_ = g.call("DELETE", "/v1/sandboxes/"+id, nil, nil)
	}
	sortDurations(cold)
	r.ReportLatency("gateway_cold_start_python_default", cold)

	// Forwarding overhead: one warm sandbox vs a directly started Ship.
	var sb map[string]any
	if err := g.call("POST", "/v1/sandboxes", map[string]any{"profile": "python-default"}, &sb); err != nil {
		return err
	}
	id := sb["id"].(string)
	content := strings.Repeat("x", 4096)
	if err := g.call("PUT", "/v1/sandboxes/"+id+"/filesystem/files", map[string]any{"path": "f4k.txt", "content": content}, nil); err != nil {
		return err
	}
	// Warm both paths (connections, interpreter caches) before measuring.
	for i := 0; i < 50; i++ {
		_ = g.call("POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "1+1"}, nil)
		_ = g.call("GET", "/v1/sandboxes/"+id+"/filesystem/files?path=f4k.txt", nil, nil)
	}
	viaPy, err := Latencies(r.N, func() error {
		return g.call("POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "1+1"}, nil)
	})
	if err != nil {
		return err
	}
	viaRead, err := Latencies(r.N, func() error {
		return g.call("GET", "/v1/sandboxes/"+id+"/filesystem/files?path=f4k.txt", nil, nil)
	})
	if err != nil {
		return err
	}

	direct, stopShip, err := startShip(ctx, shipBin, filepath.Join(dir, "direct-ws"))
	if err != nil {
		return err
	}
	defer stopShip()
	if err := postJSON(direct+"/fs/write_file", map[string]any{"path": "f4k.txt", "content": content}); err != nil {
		return err
	}
	for i := 0; i < 50; i++ {
		_ = postJSON(direct+"/ipython/exec", map[string]any{"code": "1+1"})
		_ = postJSON(direct+"/fs/read_file", map[string]any{"path": "f4k.txt"})
	}
	dirPy, err := Latencies(r.N, func() error { return postJSON(direct+"/ipython/exec", map[string]any{"code": "1+1", "timeout": 30}) })
	if err != nil {
		return err
	}
	dirRead, err := Latencies(r.N, func() error { return postJSON(direct+"/fs/read_file", map[string]any{"path": "f4k.txt"}) })
	if err != nil {
		return err
	}
	r.ReportLatency("gateway_python_exec", viaPy)
	r.ReportLatency("direct_ship_python_exec", dirPy)
	r.Value("gateway_python_exec_overhead_p50", Pct(viaPy, 50)-Pct(dirPy, 50), "ms")
	r.Value("gateway_python_exec_overhead_p99", Pct(viaPy, 99)-Pct(dirPy, 99), "ms")
	r.Ratio("gateway_vs_direct_python_exec_p50", Pct(viaPy, 50), Pct(dirPy, 50))
	r.ReportLatency("gateway_file_read_4k", viaRead)
	r.ReportLatency("direct_ship_file_read_4k", dirRead)
	r.Value("gateway_file_read_overhead_p50", Pct(viaRead, 50)-Pct(dirRead, 50), "ms")
	r.Value("gateway_file_read_overhead_p99", Pct(viaRead, 99)-Pct(dirRead, 99), "ms")
	r.Ratio("gateway_vs_direct_file_read_p50", Pct(viaRead, 50), Pct(dirRead, 50))

	// Memory with 1,000 idle sandboxes (no compute: warm-up off).
	g2, err := startBay(ctx, bay, dir, "gw-idle", false)
	if err != nil {
		return err
	}
	defer g2.stop()
	base := g2.rssMB()
	for i := 0; i < 1000; i++ {
		if err := g2.call("POST", "/v1/sandboxes", map[string]any{"profile": "python-default"}, nil); err != nil {
			return err
		}
	}
	if err := g2.call("GET", "/v1/sandboxes?limit=200", nil, nil); err != nil {
		return err
	}
	r.Value("gateway_rss_idle_baseline", base, "MB")
	r.Value("gateway_rss_1000_idle_sandboxes", g2.rssMB(), "MB")
	return nil
}

type bayProc struct {
	cmd     *exec.Cmd
	url     string
	startup time.Duration
	hc      *http.Client
}

func startBay(ctx context.Context, bin, dir, name string, warmup bool) (*bayProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`data_dir = %q
port = %d
auth { allow_anonymous = true }
gc { enabled = false }
server { warmup_on_create = %v }
runtimes { python = "/usr/bin/python3" }
`, filepath.Join(dir, name), port, warmup)
	cfgPath := filepath.Join(dir, name+".hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	b := &bayProc{url: fmt.Sprintf("http://127.0.0.1:%d", port), hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	b.cmd = exec.CommandContext(ctx, bin, "serve", "--config", cfgPath)
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, _ := os.Create(filepath.Join(dir, name+".log"))
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	start := time.Now()
	if err := b.cmd.Start(); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 10*time.Second, time.Millisecond, getOK(b.hc, b.url+"/health")); err != nil {
		b.stop()
		return nil, fmt.Errorf("bay did not answer /health within 10s (log: %s): %w", filepath.Join(dir, name+".log"), err)
	}
	b.startup = time.Since(start)
	return b, nil
}

func (b *bayProc) stop() {
	if b.cmd.Process == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// rssMB reads the gateway's resident set size from /proc.
func (b *bayProc) rssMB() float64 { return rssMB(b.cmd.Process.Pid) }

func rssMB(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func (b *bayProc) call(method, path string, in, out any) error {
	status, raw, err := doJSON(b.hc, method, b.url+path, in)
	if err != nil {
		return err
	}
	if status >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, status, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// startShip runs a Ship directly, the baseline for forwarding overhead.
func startShip(ctx context.Context, bin, ws string) (string, func(), error) {
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return "", nil, err
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	stop, err := startProcess(ctx, bin, append(os.Environ(), "BAY_PYTHON=/usr/bin/python3"), nil, "--port", strconv.Itoa(port), "--workspace", ws)
	if err != nil {
		return "", nil, err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitFor(ctx, 10*time.Second, 10*time.Millisecond, getOK(directClient, url+"/health")); err != nil {
		stop()
		return "", nil, fmt.Errorf("ship did not start: %w", err)
	}
	return url, stop, nil
}
