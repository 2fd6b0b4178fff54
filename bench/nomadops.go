package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/bay-sandbox/bay/allocator/nomad/devagent"
)

// benchNomadColdStart measures, through the gateway's HTTP API (bay serve
// on examples/nomad-dev.hcl, raw_exec, real ship and gull), POST
// /v1/sandboxes → first Python result for python-default and
// browser-python on two agent shapes: a dev agent (1 s node updates) and a
// normal server + client agent with a persistent data dir (5–10 s node
// updates, as operators run it). On the normal agent it runs twice: with
// the cargo pool (nomad { cargo_pool_size = 2 }, the default; each sample
// waits for the pool to refill, as a gateway not under a create burst sees
// it) and without it (every create makes a volume, the baseline: the wait
// for the node update the pool takes off the request path). Skipped
// without nomad on PATH.
func benchNomadColdStart(ctx context.Context, r *Reporter) error {
	bin, err := exec.LookPath("nomad")
	if err != nil {
		fmt.Println("# skip nomad-coldstart: no nomad binary on PATH")
		return nil
	}
	bayBin, err := Binary("bay")
	if err != nil {
		return err
	}
	n := min(r.N, 5)
	p50 := map[string]float64{}
	runs := []struct {
		name string
		dev  bool
		pool int
	}{{"dev", true, 2}, {"normal", false, 2}, {"normal_nopool", false, 0}}
	for _, run := range runs {
		agent, err := devagent.StartWith(bin, devagent.Options{Dev: run.dev, Within: 90 * time.Second})
		if err != nil {
			return fmt.Errorf("%s agent: %w", run.name, err)
		}
		err = func() error {
			defer agent.Stop()
			b, err := startNomadBay(ctx, bayBin, agent, run.pool)
			if err != nil {
				return err
			}
			defer b.stop()
			nc, err := agent.Client()
			if err != nil {
				return err
			}
			for _, profile := range []string{"python-default", "browser-python"} {
				var lat, creates []time.Duration
				for range n {
					if run.pool > 0 {
						if err := waitPool(ctx, nc, run.pool); err != nil {
							return err
						}
					}
					d, c, err := createToFirstPython(b, profile)
					if err != nil {
						return fmt.Errorf("%s %s: %w", run.name, profile, err)
					}
					lat, creates = append(lat, d), append(creates, c)
				}
				sortDurations(lat)
				r.ReportLatency(fmt.Sprintf("nomad_%s_create_to_first_python_%s", run.name, profile), lat)
				p50[run.name+"/"+profile] = Pct(lat, 50)
				sortDurations(creates)
				r.ReportLatency(fmt.Sprintf("nomad_%s_create_request_%s", run.name, profile), creates)
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	// The ratios tell the fingerprint wait from the machine's speed: with
	// the pool a normal agent should be as fast as a dev agent.
	for _, profile := range []string{"python-default", "browser-python"} {
		r.Ratio("nomad_normal_vs_dev_create_to_first_python_"+profile+"_p50", p50["normal/"+profile], p50["dev/"+profile])
		r.Ratio("nomad_normal_nopool_vs_dev_create_to_first_python_"+profile+"_p50", p50["normal_nopool/"+profile], p50["dev/"+profile])
	}
	r.Value("nomad_normal_create_to_first_python_python-default_p50_budget", 1500, "ms")
	r.Value("nomad_normal_create_to_first_python_browser-python_p50_budget", 2500, "ms")
	return nil
}

// createToFirstPython creates a sandbox, runs 1+1, and deletes it; it
// returns create → result and how long the create request itself took.
func createToFirstPython(b *bayProc, profile string) (time.Duration, time.Duration, error) {
	t0 := time.Now()
	var sb struct {
		ID string `json:"id"`
	}
	if err := b.call("POST", "/v1/sandboxes", map[string]any{"profile": profile}, &sb); err != nil {
		return 0, 0, err
	}
	created := time.Since(t0)
	var out struct {
		Success bool   `json:"success"`
		Output  string `json:"output"`
	}
	for {
		err := b.call("POST", "/v1/sandboxes/"+sb.ID+"/python/exec", map[string]any{"code": "1+1", "timeout": 60}, &out)
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "503") || time.Since(t0) > 2*time.Minute {
			return 0, 0, err
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(t0)
	if !out.Success || !strings.Contains(out.Output, "2") {
		return 0, 0, fmt.Errorf("python answered %+v", out)
	}
	if err := b.call("DELETE", "/v1/sandboxes/"+sb.ID, nil, nil); err != nil {
		return 0, 0, fmt.Errorf("delete: %w", err)
	}
	return took, created, nil
}

// waitPool waits until the agent holds at least n ready volumes and no
// other: with the previous sandbox deleted, those are the pool's.
func waitPool(ctx context.Context, nc *api.Client, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		vols, _, err := nc.HostVolumes().List(nil, (&api.QueryOptions{}).WithContext(ctx))
		if err == nil {
			ready := 0
			for _, v := range vols {
				if v.State == api.HostVolumeStateReady {
					ready++
				}
			}
			if ready >= n && ready == len(vols) {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("cargo pool did not refill to %d within 60s", n)
}

// startNomadBay runs bay serve against the agent with the example config.
func startNomadBay(ctx context.Context, bin string, agent *devagent.Agent, pool int) (*bayProc, error) {
	example, err := os.ReadFile(filepath.Join("examples", "nomad-dev.hcl"))
	if err != nil {
		return nil, err
	}
	cfg := strings.Replace(string(example), `"http://127.0.0.1:4646"`, strconv.Quote(agent.Addr)+"\n  cargo_pool_size = "+strconv.Itoa(pool), 1)
	dir, err := os.MkdirTemp("", "bay-bench-nomad-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "bay.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	ship, _ := Binary("ship")
	gull, _ := Binary("gull")
	ab, _ := filepath.Abs(filepath.Join("node_modules", "agent-browser", "bin", "agent-browser-linux-x64"))
	b := &bayProc{url: fmt.Sprintf("http://127.0.0.1:%d", port), hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	b.cmd = exec.CommandContext(ctx, bin, "serve", "--config", cfgPath)
	b.cmd.Env = append(os.Environ(), "BAY_DATA_DIR="+filepath.Join(dir, "data"), "BAY_PORT="+strconv.Itoa(port),
		"BAY_SHIP_BIN="+ship, "BAY_GULL_BIN="+gull, "BAY_AGENT_BROWSER="+ab, "BAY_GC_ENABLED=false")
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, _ := os.Create(filepath.Join(dir, "bay.log"))
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	if err := b.cmd.Start(); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 20*time.Second, 10*time.Millisecond, getOK(b.hc, b.url+"/health")); err != nil {
		b.stop()
		return nil, fmt.Errorf("bay did not answer /health (log %s): %w", filepath.Join(dir, "bay.log"), err)
	}
	return b, nil
}
