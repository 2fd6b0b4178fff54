package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bay-sandbox/bay/runtimes/ship"
	"github.com/bay-sandbox/bay/runtimes/wire"
)

// benchShip measures the latency of Ship's three hot paths through its real
// binary and HTTP client: python exec (1+1), shell exec (true) and a 4 KiB
// file read. Baselines in the same run: an HTTP round trip (/health), a
// direct fork/exec of the shell, and a direct os.ReadFile.
func benchShip(ctx context.Context, r *Reporter) error {
	bin, err := Binary("ship")
	if err != nil {
		return err
	}
	ws, err := os.MkdirTemp("", "bench-ship-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ws)
	port, err := freePort()
	if err != nil {
		return err
	}
	const secret = "bench-ship-secret"
	stop, err := startProcess(ctx, bin, append(os.Environ(), "BAY_PYTHON=/usr/bin/python3", wire.SecretEnv+"="+secret), os.Stderr,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--workspace", ws, "--log-level", "warn")
	if err != nil {
		return fmt.Errorf("start ship: %w", err)
	}
	defer stop()
	c := ship.NewClient(fmt.Sprintf("http://127.0.0.1:%d", port), wire.WithSecret(nil, secret))
	if err := waitFor(ctx, 15*time.Second, 20*time.Millisecond, func(ctx context.Context) error { _, err := c.Health(ctx); return err }); err != nil {
		return fmt.Errorf("ship not healthy: %w", err)
	}
	call := func(fn func(ctx context.Context) error) func() error {
		return func() error {
			cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			return fn(cctx)
		}
	}

	// Warm up: the first python call waits for the interpreter to start.
	start := time.Now()
	if _, err := c.PythonExec(ctx, ship.PythonExecRequest{Code: "1+1"}); err != nil {
		return fmt.Errorf("warm python: %w", err)
	}
	r.Value("ship_python_first_exec", ms(time.Since(start)), "ms")

	health, err := Latencies(r.N, call(func(ctx context.Context) error { _, err := c.Health(ctx); return err }))
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	r.ReportLatency("ship_http_health", health)

	py, err := Latencies(r.N, call(func(ctx context.Context) error {
		res, err := c.PythonExec(ctx, ship.PythonExecRequest{Code: "1+1"})
		if err == nil && (!res.Success || res.Output.Text != "2\n") {
			err = fmt.Errorf("unexpected result %+v", res)
		}
		return err
	}))
	if err != nil {
		return fmt.Errorf("python exec: %w", err)
	}
	r.ReportLatency("ship_python_exec", py)

	direct, err := Latencies(r.N, func() error { return exec.CommandContext(ctx, "/bin/bash", "-c", "true").Run() })
	if err != nil {
		return fmt.Errorf("direct shell: %w", err)
	}
	r.ReportLatency("ship_shell_direct_baseline", direct)
	sh, err := Latencies(r.N, call(func(ctx context.Context) error {
		res, err := c.ShellExec(ctx, ship.ShellExecRequest{Command: "true"})
		if err == nil && !res.Success {
			err = fmt.Errorf("unexpected result %+v", res)
		}
		return err
	}))
	if err != nil {
		return fmt.Errorf("shell exec: %w", err)
	}
	r.ReportLatency("ship_shell_exec", sh)
	r.Ratio("ship_shell_exec_vs_direct_p50", Pct(sh, 50), Pct(direct, 50))

	content := strings.Repeat("0123456789abcde\n", 256) // 4 KiB
	if err := os.WriteFile(filepath.Join(ws, "bench.txt"), []byte(content), 0o644); err != nil {
		return err
	}
	local, err := Latencies(r.N, func() error { _, err := os.ReadFile(filepath.Join(ws, "bench.txt")); return err })
	if err != nil {
		return err
	}
	r.ReportLatency("ship_file_read_direct_baseline", local)
	rd, err := Latencies(r.N, call(func(ctx context.Context) error {
		res, err := c.ReadFile(ctx, ship.ReadFileRequest{Path: "bench.txt"})
		if err == nil && len(res.Content) != len(content) {
			err = fmt.Errorf("read %d bytes", len(res.Content))
		}
		return err
	}))
	if err != nil {
		return fmt.Errorf("file read: %w", err)
	}
	r.ReportLatency("ship_file_read_4k", rd)
	r.Ratio("ship_file_read_vs_health_p50", Pct(rd, 50), Pct(health, 50))
	return nil
}
