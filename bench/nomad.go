package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
// 50 sessions started at once (baseline: as many equivalent jobs registered
// at once by hand, followed through the event stream until /health answers;
// each round starts on a quiet machine). Every concurrent round also reports
// the CPU the whole machine and this process (the allocator) spent, which
// tells Nomad's share of the growth from Bay's. Skipped when no nomad binary
// is on PATH.
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
		_, err := a.Start(ctx, allocator.StartRequest{SandboxID: "bench", SessionID: id, Profile: p, Cargo: cargo, Secret: "bench-" + id})
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
		raw, err := rawConcurrent(ctx, r, client, &small, opts, k)
		if err != nil {
			return fmt.Errorf("baseline of %d concurrent starts: %w", k, err)
		}
		bay, err := concurrentStarts(ctx, r, a, &small, k)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("nomad_concurrent_%d_cold_start", k)
		r.Ratio(name+"_vs_raw_healthy_p50", Pct(bay, 50), Pct(raw, 50))
		r.Ratio(name+"_vs_raw_healthy_max", Pct(bay, 100), Pct(raw, 100))
	}
	return nil
}

func deadTaskNotice(ctx context.Context, r *Reporter, a *nomad.Allocator, p *profiles.Profile, cargo allocator.Cargo, events <-chan allocator.Event, trials int) error {
	const id = "bdead"
	if _, err := a.Start(ctx, allocator.StartRequest{SandboxID: "bench", SessionID: id, Profile: p, Cargo: cargo, Secret: "bench-" + id}); err != nil {
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

// concurrentStarts starts k sessions at once through the allocator and
// reports their cold starts (Start call to every container healthy).
func concurrentStarts(ctx context.Context, r *Reporter, a *nomad.Allocator, p *profiles.Profile, k int) ([]time.Duration, error) {
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs []error
		wg   sync.WaitGroup
	)
	cpu := startCPU()
	t0 := time.Now()
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := time.Now()
			_, err := a.Start(ctx, allocator.StartRequest{SandboxID: "benchc", SessionID: fmt.Sprintf("c%d-%d", k, i), Profile: p, Secret: "bench-concurrent"})
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
	name := fmt.Sprintf("nomad_concurrent_%d_cold_start", k)
	cpu.report(r, name)
	for i := range k {
		wg.Add(1)
		go func() { defer wg.Done(); _ = a.Destroy(context.Background(), fmt.Sprintf("c%d-%d", k, i)) }()
	}
	wg.Wait()
	settle(ctx, a.Client())
	if len(errs) > 0 {
		return nil, fmt.Errorf("%d of %d concurrent starts failed, first: %w", len(errs), k, errs[0])
	}
	sortDurations(lat)
	r.ReportLatency(name, lat)
	r.Value(name+"_max", Pct(lat, 100), "ms")
	r.Value(name+"_wall", ms(wall), "ms")
	return lat, nil
}

// rawNomadStart registers the rendered job directly and polls until every
// task runs: Nomad's own floor for a cold start, without health checks.
func rawNomadStart(ctx context.Context, c *api.Client, p *profiles.Profile, opts jobspecs.Options, session string) (time.Duration, error) {
	job, err := jobspecs.Render(jobspecs.Input{Profile: p, SandboxID: "raw", SessionID: session, Secret: "bench-raw"}, opts)
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

// rawJob is one job of the concurrent baseline, as the event stream saw it.
type rawJob struct {
	registered time.Time // Register call made
	running    time.Duration
	services   map[string]string // service name -> base URL
	listed     time.Duration     // every service registered
	healthy    time.Duration
	done       chan struct{} // closed once healthy
}

// rawConcurrent is the baseline of concurrentStarts: k equivalent jobs (the
// same rendered profile, no volume, job ids outside Bay's prefix so the
// allocator ignores them) registered at once straight through the API. One
// event-stream subscription follows them all. Per job it reports register →
// every task running (the allocation as the servers know it, which lags:
// clients batch task updates), register → every service registered (the
// client registers a native service when its task starts) and register →
// every container's /health answering (asked every 10 ms at the registered
// address): Nomad's own floor for what a Bay start waits for. It returns
// the healthy latencies, sorted.
func rawConcurrent(ctx context.Context, r *Reporter, c *api.Client, p *profiles.Profile, opts jobspecs.Options, k int) ([]time.Duration, error) {
	jobs := map[string]*rawJob{}
	specs := make([]*api.Job, 0, k)
	for i := range k {
		job, err := jobspecs.Render(jobspecs.Input{Profile: p, SandboxID: "raw", SessionID: fmt.Sprintf("c%d-%d", k, i)}, opts)
		if err != nil {
			return nil, err
		}
		id := fmt.Sprintf("raw-c%d-%d", k, i)
		job.ID, job.Name = &id, &id
		specs = append(specs, job)
		jobs[id] = &rawJob{services: map[string]string{}, done: make(chan struct{})}
	}
	_, meta, err := c.Jobs().List(nil)
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.EventStream().Stream(sctx, map[api.Topic][]string{
		api.TopicAllocation: {"*"}, api.TopicService: {"*"},
	}, meta.LastIndex+1, nil)
	if err != nil {
		return nil, fmt.Errorf("event stream: %w", err)
	}
	defer func() {
		var wg sync.WaitGroup
		for _, job := range specs {
			wg.Go(func() { _, _, _ = c.Jobs().Deregister(*job.ID, true, nil) })
		}
		wg.Wait()
		settle(ctx, c)
	}()

	var mu sync.Mutex // guards jobs' fields
	hc := &http.Client{Timeout: 2 * time.Second}
	probe := func(j *rawJob, urls []string) {
		for _, u := range urls {
			for sctx.Err() == nil {
				req, err := http.NewRequestWithContext(sctx, http.MethodGet, u+jobspecs.HealthPath, nil)
				if err != nil {
					return
				}
				if resp, err := hc.Do(req); err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		mu.Lock()
		j.healthy = time.Since(j.registered)
		mu.Unlock()
		close(j.done)
	}
	go func() {
		for evs := range stream {
			if evs.Err != nil {
				return
			}
			for i := range evs.Events {
				e := &evs.Events[i]
				switch e.Topic {
				case api.TopicAllocation:
					al, err := e.Allocation()
					if err != nil || al == nil {
						continue
					}
					mu.Lock()
					if j := jobs[al.JobID]; j != nil && j.running == 0 && len(al.TaskStates) == len(p.Containers) {
						all := true
						for _, ts := range al.TaskStates {
							all = all && ts.State == "running"
						}
						if all {
							j.running = time.Since(j.registered)
						}
					}
					mu.Unlock()
				case api.TopicService:
					s, err := e.Service()
					if err != nil || s == nil || e.Type != "ServiceRegistration" {
						continue
					}
					mu.Lock()
					j := jobs[s.JobID]
					if j != nil && j.listed == 0 {
						j.services[s.ServiceName] = fmt.Sprintf("http://%s:%d", s.Address, s.Port)
						if len(j.services) == len(p.Containers) {
							j.listed = time.Since(j.registered)
							var urls []string
							for _, u := range j.services {
								urls = append(urls, u)
							}
							go probe(j, urls)
						}
					}
					mu.Unlock()
				}
			}
		}
	}()

	cpu := startCPU()
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, k)
	for _, job := range specs {
		j := jobs[*job.ID]
		wg.Go(func() {
			mu.Lock()
			j.registered = time.Now()
			mu.Unlock()
			if _, _, err := c.Jobs().Register(job, nil); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	timeout := time.NewTimer(2 * time.Minute)
	defer timeout.Stop()
	for id, j := range jobs {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout.C:
			return nil, fmt.Errorf("raw job %s not healthy within 2m", id)
		case <-j.done:
		}
	}
	wall := time.Since(t0)
	cpu.report(r, fmt.Sprintf("nomad_raw_concurrent_%d", k))
	// The servers learn that tasks run from batched client updates, often
	// after /health already answers: give them a moment.
	for wait := time.Now().Add(5 * time.Second); time.Now().Before(wait); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		all := true
		for _, j := range jobs {
			all = all && j.running > 0
		}
		mu.Unlock()
		if all {
			break
		}
	}

	mu.Lock()
	defer mu.Unlock()
	var running, listed, healthy []time.Duration
	for _, j := range jobs {
		if j.running > 0 {
			running = append(running, j.running)
		}
		listed = append(listed, j.listed)
		healthy = append(healthy, j.healthy)
	}
	for _, m := range []struct {
		what string
		lat  []time.Duration
	}{{"running", running}, {"registered", listed}, {"healthy", healthy}} {
		sortDurations(m.lat)
		name := fmt.Sprintf("nomad_raw_concurrent_%d_%s", k, m.what)
		r.ReportLatency(name, m.lat)
		r.Value(name+"_max", Pct(m.lat, 100), "ms")
	}
	r.Value(fmt.Sprintf("nomad_raw_concurrent_%d_wall", k), ms(wall), "ms")
	return healthy, nil
}

// settle waits until no allocation is live and the machine is quiet again:
// a client reports an allocation complete before it has torn down its
// network (CNI DEL, iptables), and a round that overlapped the previous
// round's teardown would be charged for it.
func settle(ctx context.Context, c *api.Client) {
	waitNoLiveAllocs(ctx, c, time.Minute)
	deadline := time.Now().Add(time.Minute)
	prevBusy, prevTotal, err := machineCPU()
	if err != nil {
		return
	}
	for ctx.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		busy, total, err := machineCPU()
		if err != nil {
			return
		}
		if total > prevTotal && float64(busy-prevBusy)/float64(total-prevTotal) < 0.15 {
			return
		}
		prevBusy, prevTotal = busy, total
	}
}

// machineCPU reads the busy and total jiffies of all CPUs from /proc/stat.
func machineCPU() (busy, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	for i, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, nil
}

// cpuMeter measures, over a span, the CPU time of the whole machine and of
// this process (the allocator runs in it), in seconds.
type cpuMeter struct {
	busy uint64
	self time.Duration
}

func startCPU() cpuMeter {
	busy, _, _ := machineCPU()
	return cpuMeter{busy: busy, self: selfCPU()}
}

func (m cpuMeter) report(r *Reporter, name string) {
	busy, _, _ := machineCPU()
	// USER_HZ is 100 on Linux.
	r.Value(name+"_machine_cpu", float64(busy-m.busy)/100, "s")
	r.Value(name+"_bench_cpu", (selfCPU() - m.self).Seconds(), "s")
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
