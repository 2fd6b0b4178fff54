package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/allocator/local"
	"github.com/bay-sandbox/bay/profiles"
)

// benchLocal measures the local allocator with the real ship binary: cold
// start of a one-container session (baseline: exec ship by hand and poll
// /health), how fast a dead container is reported, and how fast it is back.
func benchLocal(ctx context.Context, r *Reporter) error {
	ship, err := Binary("ship")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bay-bench-local-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	py := []string{}
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		py = append(py, "BAY_PYTHON=/usr/bin/python3")
	}
	a, err := local.New(local.Config{
		DataDir:     dir,
		Binaries:    map[string]string{profiles.RuntimeShip: ship},
		ExtraEnv:    map[string][]string{profiles.RuntimeShip: py},
		GracePeriod: 2 * time.Second,
	}, hclog.NewNullLogger())
	if err != nil {
		return err
	}
	defer a.Close()
	prof := &profiles.Profile{
		ID:         "python-default",
		Restart:    profiles.RestartPolicy{Attempts: 1000, Delay: 0},
		Containers: []profiles.Container{{Name: "ship", RuntimeType: profiles.RuntimeShip}},
	}
	cargo, err := a.CreateCargo(ctx, allocator.CargoSpec{ID: "ws-bench"})
	if err != nil {
		return err
	}
	n := min(r.N, 30)

	// Baseline: the same binary started by hand, /health polled every 5 ms.
	base, err := Latencies(n, func() error { return rawShipStart(ctx, ship, cargo.Locator, py) })
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	r.ReportLatency("local_raw_ship_start", base)

	var starts, stops []time.Duration
	for i := range n {
		id := fmt.Sprintf("sess-bench%d", i)
		t0 := time.Now()
		if _, err := a.Start(ctx, allocator.StartRequest{SandboxID: "sandbox-bench", SessionID: id, Profile: prof, Cargo: cargo, Secret: "bench-" + id}); err != nil {
			return fmt.Errorf("cold start: %w", err)
		}
		t1 := time.Now()
		if err := a.Stop(ctx, id); err != nil {
			return err
		}
		starts = append(starts, t1.Sub(t0))
		stops = append(stops, time.Since(t1))
	}
	slices.Sort(starts)
	slices.Sort(stops)
	r.ReportLatency("local_session_start", starts)
	r.Ratio("local_session_start_vs_raw_p50", Pct(starts, 50), Pct(base, 50))
	r.ReportLatency("local_session_stop", stops)

	sess, err := a.Start(ctx, allocator.StartRequest{SandboxID: "sandbox-bench", SessionID: "sess-bench-restart", Profile: prof, Cargo: cargo, Secret: "bench-restart"})
	if err != nil {
		return err
	}
	var down, up []time.Duration
	for range min(n, 10) {
		pid, err := shipPID(sess.Endpoints["ship"].URL)
		if err != nil {
			return err
		}
		t0 := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return err
		}
		for _, want := range []allocator.EventKind{allocator.ContainerDown, allocator.ContainerUp} {
			select {
			case ev := <-a.Events():
				if ev.Kind != want {
					return fmt.Errorf("event %s, want %s", ev.Kind, want)
				}
				if want == allocator.ContainerDown {
					down = append(down, time.Since(t0))
				} else {
					up = append(up, time.Since(t0))
					sess.Endpoints["ship"] = *ev.Endpoint
				}
			case <-time.After(30 * time.Second):
				return fmt.Errorf("no %s event", want)
			}
		}
	}
	slices.Sort(down)
	slices.Sort(up)
	r.ReportLatency("local_container_down_event", down)
	r.ReportLatency("local_container_back_up", up)
	return nil
}

// shipPID finds the ship serving url: the session leader (the allocator
// starts every runtime in a session of its own) whose environment has its PORT.
func shipPID(url string) (int, error) {
	_, port, err := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !slices.Contains(strings.Split(string(env), "\x00"), "PORT="+port) {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name: state ppid pgrp session ...
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 3 && f[3] == e.Name() {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process serves %s", url)
}

func rawShipStart(ctx context.Context, ship, workspace string, env []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	stop, err := startProcess(ctx, ship, append(os.Environ(), append(env, "BAY_WORKSPACE_PATH="+workspace, allocator.SecretEnv+"=bench-raw")...), nil,
		"--port", strconv.Itoa(port), "--workspace", workspace)
	if err != nil {
		return err
	}
	defer stop()
	url := fmt.Sprintf("http://127.0.0.1:%d/health", port)
	if err := waitFor(ctx, 30*time.Second, 5*time.Millisecond, getOK(http.DefaultClient, url)); err != nil {
		return fmt.Errorf("raw ship not healthy: %w", err)
	}
	return nil
}
