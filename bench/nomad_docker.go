package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/allocator/nomad"
	"github.com/bay-sandbox/bay/allocator/nomad/devagent"
	"github.com/bay-sandbox/bay/jobspecs"
	"github.com/bay-sandbox/bay/profiles"
)

// benchNomadDocker measures the docker driver's cold start (register →
// every container answering /health) of the default profiles with the
// bay-ship and bay-gull images (`make images`), beside the same profiles as
// raw_exec tasks on the same dev agent in the same run (the baseline).
// Skipped when nomad, a Docker engine or the images are missing.
func benchNomadDocker(ctx context.Context, r *Reporter) error {
	bin, err := exec.LookPath("nomad")
	if err != nil {
		fmt.Println("# skip nomad-docker: no nomad binary on PATH")
		return nil
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		fmt.Println("# skip nomad-docker: no Docker engine reachable")
		return nil
	}
	for _, img := range []string{"bay-ship:dev", "bay-gull:dev", "bay-pause:dev"} {
		if err := exec.Command("docker", "image", "inspect", img).Run(); err != nil {
			fmt.Printf("# skip nomad-docker: no image %s (make images)\n", img)
			return nil
		}
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
	agent, err := devagent.StartWith(bin, devagent.Options{Dev: true, Within: 90 * time.Second,
		ExtraConfig: "plugin \"docker\" {\n  config {\n    infra_image = \"bay-pause:dev\"\n  }\n}\n"})
	if err != nil {
		return err
	}
	defer agent.Stop()
	if err := waitDriver(ctx, agent, "docker", time.Minute); err != nil {
		return err
	}

	// Runtime env only for raw_exec: the images carry their own paths, and
	// the same env is given to every driver's tasks.
	opts := jobspecs.Options{
		InstanceID: "bay-bench",
		Binaries:   map[string]string{profiles.RuntimeShip: ship, profiles.RuntimeGull: gull},
		RuntimeEnv: map[string]map[string]string{
			profiles.RuntimeShip: {"BAY_PYTHON": "/usr/bin/python3"},
		},
		ServiceProvider: nomad.DiscoveryNomad,
		KillTimeout:     2 * time.Second,
	}
	a, err := nomad.New(nomad.Config{
		Address: agent.Addr, Discovery: nomad.DiscoveryNomad, Job: opts,
		StartTimeout: 3 * time.Minute, StopTimeout: 30 * time.Second,
	}, hclog.NewNullLogger())
	if err != nil {
		return err
	}
	defer a.Close()
	go func() {
		for range a.Events() {
		}
	}()
	// One cargo per driver: a docker Ship hands its cargo to uid 1000.
	cargos := map[string]allocator.Cargo{}
	for _, d := range []string{jobspecs.DriverDocker, jobspecs.DriverRawExec} {
		cargo, err := a.CreateCargo(ctx, allocator.CargoSpec{ID: "bench-" + strings.ReplaceAll(d, "_", "-")})
		if err != nil {
			return err
		}
		defer func() { _ = a.DeleteCargo(context.Background(), cargo) }()
		cargos[d] = cargo
	}

	variants := func(driver string) map[string]*profiles.Profile {
		out := map[string]*profiles.Profile{}
		for _, p := range profiles.Defaults() {
			p.Containers = append([]profiles.Container(nil), p.Containers...)
			for i := range p.Containers {
				c := &p.Containers[i]
				c.Driver = driver
				if driver == jobspecs.DriverDocker {
					c.Image = "bay-" + c.RuntimeType + ":dev"
				} else if c.RuntimeType == profiles.RuntimeGull {
					c.Env = map[string]string{"BAY_AGENT_BROWSER": ab}
				}
			}
			out[p.ID] = &p
		}
		return out
	}
	n := min(r.N, 5)
	seq := 0
	measure := func(p *profiles.Profile, cargo allocator.Cargo) ([]time.Duration, error) {
		var lat []time.Duration
		for range n {
			seq++
			id := fmt.Sprintf("d%d", seq)
			t0 := time.Now()
			if _, err := a.Start(ctx, allocator.StartRequest{SandboxID: "bench-docker", SessionID: id, Profile: p, Cargo: cargo}); err != nil {
				return nil, err
			}
			lat = append(lat, time.Since(t0))
			if err := a.Stop(ctx, id); err != nil {
				return nil, err
			}
		}
		sortDurations(lat)
		return lat, nil
	}
	raw, docker := variants(jobspecs.DriverRawExec), variants(jobspecs.DriverDocker)
	for _, id := range []string{profiles.PythonDefault, profiles.BrowserPython} {
		lat, err := measure(docker[id], cargos[jobspecs.DriverDocker])
		if err != nil {
			return fmt.Errorf("docker cold start %s: %w", id, err)
		}
		r.ReportLatency("nomad_docker_cold_start_"+id, lat)
		base, err := measure(raw[id], cargos[jobspecs.DriverRawExec])
		if err != nil {
			return fmt.Errorf("raw_exec cold start %s: %w", id, err)
		}
		r.ReportLatency("nomad_raw_exec_cold_start_"+id, base)
		r.Ratio("nomad_docker_vs_raw_exec_cold_start_"+id+"_p50", Pct(lat, 50), Pct(base, 50))
	}
	return nil
}

// waitDriver waits for the agent's node to report driver healthy.
func waitDriver(ctx context.Context, agent *devagent.Agent, driver string, within time.Duration) error {
	c, err := agent.Client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		nodes, _, err := c.Nodes().List((&api.QueryOptions{}).WithContext(ctx))
		if err == nil {
			for _, n := range nodes {
				if d := n.Drivers[driver]; d != nil && d.Healthy {
					return nil
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("nomad's %s driver not healthy within %s", driver, within)
}
