package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/allocator/nomad"
	"github.com/bay-sandbox/bay/allocator/nomad/devagent"
	"github.com/bay-sandbox/bay/jobspecs"
	"github.com/bay-sandbox/bay/profiles"
)

// benchNomad measures the Nomad allocator against a real dev agent with
// raw_exec and the real ship and gull binaries: cold start to a healthy
// session (python-default, browser-python; baseline: the same job
// registered by hand and polled until its tasks run, without health),
// how fast a dead task is noticed, and how cold starts grow with 1, 10 and
// 50 sessions started at once. Skipped when no nomad binary is on PATH.
func benchNomad(ctx context.Context, r *Reporter) error {
	bin, err := exec.LookPath("nomad")
	if err != nil {
		fmt.Println("# skip nomad: no nomad binary on PATH")
		return nil
	}
	ship, err := Binary("ship")
	if err != nil {
		return err
	}
	gull, err := Binary("gull")
	if err != nil {
		return err
	}
	ab, err := filepath.Abs(filepath.Join("node_modules", "agent-browser", "bin", "agent-browser-linux-x64"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(ab); err != nil {
		return fmt.Errorf("agent-browser not installed (npm ci): %w", err)
	}
	agent, err := devagent.Start(bin, 60*time.Second)
	if err != nil {
		return err
	}
	defer agent.Stop()

	opts := jobspecs.Options{
		InstanceID: "bay-bench",
		Binaries:   map[string]string{profiles.RuntimeShip: ship, profiles.RuntimeGull: gull},
		RuntimeEnv: map[string]map[string]string{
			profiles.RuntimeShip: {"BAY_PYTHON": "/usr/bin/python3"},
			profiles.RuntimeGull: {"BAY_AGENT_BROWSER": ab},
		},
		ServiceProvider: nomad.DiscoveryNomad,
		KillTimeout:     2 * time.Second,
	}
	a, err := nomad.New(nomad.Config{
		Address: agent.Addr, Discovery: nomad.DiscoveryNomad, Job: opts,
		StartTimeout: 2 * time.Minute, StopTimeout: 30 * time.Second,
	}, hclog.NewNullLogger())
	if err != nil {
		return err
	}
	defer a.Close()
	// Events must be read: the allocator buffers them for its one reader.
	events := make(chan allocator.Event, 1024)
	go func() {
		for ev := range a.Events() {
			select {
			case events <- ev:
			default:
			}
		}
	}()

	defaults := map[string]*profiles.Profile{}
	for _, p := range profiles.Defaults() {
		defaults[p.ID] = &p
	}
	py, br := defaults["python-default"], defaults["browser-python"]
	if py == nil || br == nil {
		return errors.New("default profiles python-default and browser-python not found")
	}
	cargo, err := a.CreateCargo(ctx, allocator.CargoSpec{ID: "bench"})
	if err != nil {
		return err
	}
	defer func() { _ = a.DeleteCargo(context.Background(), cargo) }()
	n := min(r.N, 10)
	seq := 0
	startStop := func(p *profiles.Profile) (time.Duration, error) {
		seq++
		id := fmt.Sprintf("b%d", seq)
		t0 := time.Now()
		_, err := a.Start(ctx, allocator.StartRequest{SandboxID: "bench", SessionID: id, Profile: p, Cargo: cargo})
		took := time.Since(t0)
		if err != nil {
			return 0, err
		}
		return took, a.Stop(ctx, id)
	}

	// Baseline: Nomad alone (register, poll until every task runs).
	client := a.Client()
	var base []time.Duration
	for i := range n {
		d, err := rawNomadStart(ctx, client, py, opts, fmt.Sprintf("raw%d", i))
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		base = append(base, d)
	}
	sortDurations(base)
	r.ReportLatency("nomad_raw_register_to_running", base)

	for _, p := range []*profiles.Profile{py, br} {
		var lat []time.Duration
		for range n {
			d, err := startStop(p)
			if err != nil {
				return fmt.Errorf("cold start %s: %w", p.ID, err)
			}
			lat = append(lat, d)
		}
		sortDurations(lat)
		r.ReportLatency("nomad_cold_start_"+p.ID, lat)
		if p == py {
			r.Ratio("nomad_cold_start_python-default_vs_raw_p50", Pct(lat, 50), Pct(base, 50))
		}
	}

	// Time to notice a dead task: SIGKILL Gull in a running browser-python
	// session, wait for ContainerDown; let it come back between trials.
	if err := deadTaskNotice(ctx, r, a, br, cargo, events, min(n, 5)); err != nil {
		return err
	}

	// Concurrent cold starts of python-default sessions, with ephemeral
	// workspaces (a cargo volume takes one writer at a time) and tiny
	// resource asks: 50 default Ships (500 MHz each) do not fit a 2-core
	// node, and what is measured here is the allocator, not bin packing.
	small := *py
	small.Containers = append([]profiles.Container(nil), py.Containers...)
	for i := range small.Containers {
		small.Containers[i].Resources = profiles.Resources{CPU: 20, MemoryMB: 128}
	}
	for _, k := range []int{1, 10, 50} {
		if err := concurrentStarts(ctx, r, a, &small, k); err != nil {
			return err
		}
	}
	return nil
}

func deadTaskNotice(ctx context.Context, r *Reporter, a *nomad.Allocator, p *profiles.Profile, cargo allocator.Cargo, events <-chan allocator.Event, trials int) error {
	const id = "bdead"
	if _, err := a.Start(ctx, allocator.StartRequest{SandboxID: "bench", SessionID: id, Profile: p, Cargo: cargo}); err != nil {
		return fmt.Errorf("start for dead-task notice: %w", err)
	}
	defer func() { _ = a.Stop(context.Background(), id) }()
	var lat []time.Duration
	for range trials {
		allocs, _, err := a.Client().Jobs().Allocations(jobspecs.JobID("bench", id), false, nil)
		if err != nil || len(allocs) == 0 {
			return fmt.Errorf("allocation of the dead-task session: %v", err)
		}
		al := &api.Allocation{ID: allocs[0].ID, Namespace: allocs[0].Namespace, NodeID: allocs[0].NodeID}
		t0 := time.Now()
		if err := a.Client().Allocations().Signal(al, nil, "gull", "SIGKILL"); err != nil {
			return fmt.Errorf("kill gull: %w", err)
		}
		at, err := waitEvent(ctx, events, allocator.ContainerDown, id, 10*time.Second)
		if err != nil {
			return err
		}
		lat = append(lat, at.Sub(t0))
		if _, err := waitEvent(ctx, events, allocator.ContainerUp, id, 60*time.Second); err != nil {
			return err
		}
	}
	sortDurations(lat)
	r.ReportLatency("nomad_dead_task_noticed", lat)
	return nil
}

// waitEvent returns when an event of kind for session arrived.
func waitEvent(ctx context.Context, events <-chan allocator.Event, kind allocator.EventKind, session string, within time.Duration) (time.Time, error) {
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-timer.C:
			return time.Time{}, fmt.Errorf("no %s for %s within %s", kind, session, within)
		case ev := <-events:
			if ev.SessionID == session && ev.Kind == kind {
				return time.Now(), nil
			}
		}
	}
}

func concurrentStarts(ctx context.Context, r *Reporter, a *nomad.Allocator, p *profiles.Profile, k int) error {
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs []error
		wg   sync.WaitGroup
	)
	t0 := time.Now()
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := time.Now()
			_, err := a.Start(ctx, allocator.StartRequest{SandboxID: "benchc", SessionID: fmt.Sprintf("c%d-%d", k, i), Profile: p})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			lat = append(lat, time.Since(s))
		}()
	}
	wg.Wait()
	wall := time.Since(t0)
	for i := range k {
		wg.Add(1)
		go func() { defer wg.Done(); _ = a.Destroy(context.Background(), fmt.Sprintf("c%d-%d", k, i)) }()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d concurrent starts failed, first: %w", len(errs), k, errs[0])
	}
	sortDurations(lat)
	name := fmt.Sprintf("nomad_concurrent_%d_cold_start", k)
	r.ReportLatency(name, lat)
	r.Value(name+"_max", Pct(lat, 100), "ms")
	r.Value(name+"_wall", ms(wall), "ms")
	// Let the destroyed allocations finish before the next round.
	waitNoLiveAllocs(ctx, a.Client(), time.Minute)
	return nil
}

// rawNomadStart registers the rendered job directly and polls until every
// task runs: Nomad's own floor for a cold start, without health checks.
func rawNomadStart(ctx context.Context, c *api.Client, p *profiles.Profile, opts jobspecs.Options, session string) (time.Duration, error) {
	job, err := jobspecs.Render(jobspecs.Input{Profile: p, SandboxID: "raw", SessionID: session}, opts)
	if err != nil {
		return 0, err
	}
	// Not a Bay job: the allocator's watcher must not see it.
	id := "raw-" + session
	job.ID, job.Name = &id, &id
	t0 := time.Now()
	if _, _, err := c.Jobs().Register(job, nil); err != nil {
		return 0, err
	}
	defer func() {
		_, _, _ = c.Jobs().Deregister(id, true, nil)
		waitNoLiveAllocs(ctx, c, 30*time.Second)
	}()
	for ctx.Err() == nil {
		allocs, _, err := c.Jobs().Allocations(id, false, nil)
		if err != nil {
			return 0, err
		}
		if len(allocs) == 1 && len(allocs[0].TaskStates) == len(p.Containers) {
			all := true
			for _, ts := range allocs[0].TaskStates {
				all = all && ts.State == "running"
			}
			if all {
				return time.Since(t0), nil
			}
		}
		if time.Since(t0) > time.Minute {
			return 0, errors.New("raw job never ran")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, ctx.Err()
}

func waitNoLiveAllocs(ctx context.Context, c *api.Client, within time.Duration) {
	deadline := time.Now().Add(within)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		allocs, _, err := c.Allocations().List(nil)
		if err != nil {
			return
		}
		live := 0
		for _, al := range allocs {
			if al.ClientStatus == api.AllocClientStatusPending || al.ClientStatus == api.AllocClientStatusRunning {
				live++
			}
		}
		if live == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
