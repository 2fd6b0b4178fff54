package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/allocator/local"
	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/runtimes/ship"
	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/bay-sandbox/bay/sandbox"
)

// benchSandbox measures the cold start the embedded default's isolation
// costs: session start → first Python result, sandboxed and unisolated,
// alternating in the same run so both see the same machine load. Goals
// (issue 10): sandboxed p50 ≤ 300 ms and ≤ 1.3× unisolated.
func benchSandbox(ctx context.Context, r *Reporter) error {
	shipBin, err := Binary("ship")
	if err != nil {
		return err
	}
	box, err := sandbox.New(sandbox.Config{})
	if errors.Is(err, sandbox.ErrUnavailable) {
		fmt.Printf("# sandbox suite skipped: %v\n", err)
		return nil
	}
	if err != nil {
		return err
	}
	py := []string{}
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		py = append(py, "BAY_PYTHON=/usr/bin/python3")
	}
	mk := func(box *sandbox.Launcher) (*local.Allocator, func(), error) {
		dir, err := os.MkdirTemp("", "bay-bench-sbx-")
		if err != nil {
			return nil, nil, err
		}
		_ = os.Chmod(dir, 0o755)
		a, err := local.New(local.Config{
			DataDir:     dir,
			Binaries:    map[string]string{profiles.RuntimeShip: shipBin},
			ExtraEnv:    map[string][]string{profiles.RuntimeShip: py},
			GracePeriod: 2 * time.Second,
			Sandbox:     box,
		}, hclog.NewNullLogger())
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, err
		}
		return a, func() { a.Close(); os.RemoveAll(dir) }, nil
	}
	isolated, closeI, err := mk(box)
	if err != nil {
		return err
	}
	defer closeI()
	plain, closeP, err := mk(nil)
	if err != nil {
		return err
	}
	defer closeP()
	prof := &profiles.Profile{
		ID:      "python-default",
		Restart: profiles.RestartPolicy{Attempts: 3, Delay: time.Second},
		Containers: []profiles.Container{{Name: "ship", RuntimeType: profiles.RuntimeShip, RuntimePort: profiles.DefaultShipPort,
			Resources: profiles.Resources{CPU: 500, MemoryMB: 512}}},
	}
	firstResult := func(a *local.Allocator, i int) (time.Duration, time.Duration, error) {
		cargo, err := a.CreateCargo(ctx, allocator.CargoSpec{ID: fmt.Sprintf("ws-bench%d", i)})
		if err != nil {
			return 0, 0, err
		}
		id := fmt.Sprintf("sess-bench%d", i)
		t0 := time.Now()
		secret := fmt.Sprintf("bench-secret-%d", i)
		sess, err := a.Start(ctx, allocator.StartRequest{SandboxID: "sandbox-bench", SessionID: id, Profile: prof, Cargo: cargo, Secret: secret})
		if err != nil {
			return 0, 0, fmt.Errorf("start: %w", err)
		}
		up := time.Since(t0)
		res, err := ship.NewClient(sess.Endpoints["ship"].URL, wire.WithSecret(nil, secret)).PythonExec(ctx, ship.PythonExecRequest{Code: "6*7", Timeout: 30})
		d := time.Since(t0)
		_ = a.Destroy(ctx, id)
		_ = a.DeleteCargo(ctx, cargo)
		if err != nil {
			return 0, 0, fmt.Errorf("python: %w", err)
		}
		if !strings.Contains(res.Output.Text, "42") {
			return 0, 0, fmt.Errorf("python answered %q", res.Output.Text)
		}
		return up, d, nil
	}
	n := min(r.N, 20)
	var iso, base, isoUp, baseUp []time.Duration
	for i := range n {
		up, d, err := firstResult(plain, i)
		if err != nil {
			return fmt.Errorf("unisolated: %w", err)
		}
		base, baseUp = append(base, d), append(baseUp, up)
		if up, d, err = firstResult(isolated, i); err != nil {
			return fmt.Errorf("sandboxed: %w", err)
		}
		iso, isoUp = append(iso, d), append(isoUp, up)
	}
	for _, d := range [][]time.Duration{iso, base, isoUp, baseUp} {
		sortDurations(d)
	}
	// Start = until /health answers (the sandbox's own cost shows here);
	// first Python adds the interpreter's start, the same in both.
	r.ReportLatency("sandbox_session_start_unisolated", baseUp)
	r.ReportLatency("sandbox_session_start_isolated", isoUp)
	r.Ratio("sandbox_session_start_isolated_vs_unisolated_p50", Pct(isoUp, 50), Pct(baseUp, 50))
	r.ReportLatency("sandbox_first_python_unisolated", base)
	r.ReportLatency("sandbox_first_python_isolated", iso)
	r.Ratio("sandbox_first_python_isolated_vs_unisolated_p50", Pct(iso, 50), Pct(base, 50))
	return nil
}
