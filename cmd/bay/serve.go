package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/allocator/local"
	"github.com/bay-sandbox/bay/config"
	"github.com/bay-sandbox/bay/gateway"
	"github.com/bay-sandbox/bay/gateway/gc"
	"github.com/bay-sandbox/bay/gateway/leader"
	"github.com/bay-sandbox/bay/gateway/service"
	"github.com/bay-sandbox/bay/gateway/sessionsecret"
	"github.com/bay-sandbox/bay/gateway/warmpool"
	"github.com/bay-sandbox/bay/internal/version"
	"github.com/bay-sandbox/bay/reconcile"
)

// serveFlags are the command-line overrides, applied after file and env.
type serveFlags struct {
	config                             pathList
	dataDir, bind, logLevel, allocator string
	port                               int
	anonymous                          bool
}

// pathList is a repeatable -config flag: files or directories of fragments,
// merged in the order given.
type pathList []string

func (p *pathList) String() string { return strings.Join(*p, ",") }

func (p *pathList) Set(v string) error {
	if v == "" {
		return errors.New("empty path")
	}
	*p = append(*p, v)
	return nil
}

// configPaths is what to load: the -config flags, else BAY_CONFIG.
func configPaths(flags pathList) []string {
	if len(flags) > 0 {
		return flags
	}
	if v := os.Getenv("BAY_CONFIG"); v != "" {
		return []string{v}
	}
	return nil
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	fs.Var(&f.config, "config", "config file (.hcl or .json) or directory of them; repeat to merge several in order (default $BAY_CONFIG)")
	fs.StringVar(&f.dataDir, "data-dir", "", "data directory (overrides the config)")
	fs.StringVar(&f.bind, "bind", "", "listen address (overrides the config)")
	fs.IntVar(&f.port, "port", 0, "listen port (overrides the config; 0 keeps it)")
	fs.StringVar(&f.logLevel, "log-level", "", "trace|debug|info|warn|error")
	fs.StringVar(&f.allocator, "allocator", "", "local|nomad (overrides the config)")
	fs.BoolVar(&f.anonymous, "allow-anonymous", false, "accept requests without an API key (owner from X-Owner)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	cfg, err := config.Load(configPaths(f.config)...)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "data-dir":
			cfg.DataDir = f.dataDir
		case "bind":
			cfg.BindAddr = f.bind
		case "port":
			cfg.Port = f.port
		case "log-level":
			cfg.LogLevel = f.logLevel
		case "allocator":
			cfg.Allocator = f.allocator
		case "allow-anonymous":
			cfg.Auth.AllowAnonymous = f.anonymous
		}
	})
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}

	log := hclog.New(&hclog.LoggerOptions{
		Name: "bay", Level: hclog.LevelFromString(cfg.LogLevel), Output: stderr, TimeFormat: "2006-01-02T15:04:05.000Z07:00",
	})
	return runGateway(ctx, cfg, configPaths(f.config), log, stdout)
}

// loadConfig loads and validates config files as serve does.
func loadConfig(paths ...string) (*config.Config, error) {
	cfg, err := config.Load(paths...)
	if err != nil {
		return nil, err
	}
	return cfg, cfg.Validate()
}

func runGateway(ctx context.Context, cfg *config.Config, configFiles []string, log hclog.Logger, stdout io.Writer) error {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("resolve data dir: %w", err)
	}
	st, err := openStore(ctx, cfg, dataDir)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	if cfg.Store.Driver == config.StorePostgres {
		if err := claimInstance(ctx, st, cfg.InstanceID); err != nil {
			return err
		}
		if cfg.Allocator == config.AllocatorLocal {
			log.Warn("the local allocator's sessions live in this process: with a shared database run one gateway, or use the nomad allocator so every gateway reaches every session")
		}
	}

	alloc, err := newAllocator(cfg, dataDir, configFiles, log)
	if err != nil {
		return err
	}
	// Closing the allocator last stops local sessions (Nomad jobs stay for
	// re-adoption by the next gateway).
	defer alloc.Close()
	if err := checkNomadToken(ctx, cfg, alloc, log); err != nil {
		return err
	}

	// The key behind every session's runtime secret lives in the store, so a
	// restarted gateway (or another one on the same store) can still call
	// the sessions it re-adopts.
	secrets, err := sessionsecret.Load(ctx, st)
	if err != nil {
		return err
	}
	// holder names this gateway process in the store's leases.
	holder := leader.HolderID()
	cargoPool, poolBackend := newCargoPool(cfg, st, alloc, log)
	svc := service.New(service.Config{
		StartTimeout: startTimeout(cfg), StartWait: cfg.Server.StartTimeout, MaxSessions: cfg.Server.MaxSessions,
		Shared: cfg.Store.Driver == config.StorePostgres, Holder: holder, LeaseTTL: cfg.Store.LeaseTTL,
		PoolBackend: poolBackend, OnPoolClaim: cargoPool.Claimed,
		Secrets: secrets,
	}, st, alloc, cfg.Profiles, log)
	// Carries out recorded stops and deletes until done and removes what no
	// one owns; leader-only, like GC.
	reconciler := reconcile.New(reconcile.Config{}, st, svc, alloc, log)
	if cfg.Store.Driver == config.StorePostgres {
		// Other gateways may be starting sessions right now: adopt what
		// runs, clear nothing (the leader's GC removes what is gone).
		if n, err := svc.Adopt(ctx); err != nil {
			log.Warn("adopt sessions", "error", err)
		} else if n > 0 {
			log.Info("sessions adopted", "count", n)
		}
	} else {
		orphans, err := svc.Reconcile(ctx)
		if err != nil {
			log.Warn("reconcile sessions", "error", err)
		} else if len(orphans) > 0 {
			log.Info("sessions without a sandbox found; the orphan_session gc task will remove them", "count", len(orphans))
		}
	}

	named, err := loadKeys(cfg.Auth)
	if err != nil {
		return fmt.Errorf("load keys: %w", err)
	}
	hashes, generated, err := gateway.Credentials(ctx, st, dataDir, cfg.Auth.APIKeys, cfg.Auth.AllowAnonymous,
		len(named) > 0 || cfg.Auth.KeysFile != "")
	if err != nil {
		return fmt.Errorf("set up credentials: %w", err)
	}
	gwCfg := gateway.Config{
		APIKeyHashes: hashes, Keys: named, AllowAnonymous: cfg.Auth.AllowAnonymous,
		MaxSandboxesPerOwner: cfg.Server.MaxSandboxesPerOwner, IdempotencyTTL: cfg.Idempotency.TTL,
		NoWarmup: !cfg.Server.WarmupOnCreate,
	}
	applyLimits(&gwCfg, cfg.Limits, log)
	srv := gateway.New(gwCfg, st, svc, alloc, cfg.Profiles, log)

	collector := gc.New(gc.Config{
		Enabled: cfg.GC.Enabled, Interval: cfg.GC.Interval, InstanceID: cfg.InstanceID,
		Tasks: map[string]bool{
			gc.TaskIdleSession: cfg.GC.IdleSession, gc.TaskExpiredSandbox: cfg.GC.ExpiredSandbox,
			gc.TaskOrphanCargo: cfg.GC.OrphanCargo, gc.TaskOrphanSession: cfg.GC.OrphanSession,
		},
	}, st, svc, alloc, log)
	srv.SetGC(collector)

	pool := warmpool.New(cfg.Profiles.All(), st, svc, log)
	if cfg.WarmPool.Enabled && pool.Enabled() {
		srv.SetWarmPool(pool)
	}

	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr(), err)
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "bay %s listening on %s (allocator: %s, data: %s)\n", version.String(), url, cfg.Allocator, dataDir)
	switch {
	case generated != "":
		fmt.Fprintf(stdout, "generated API key (shown once, also in %s): %s\n", filepath.Join(dataDir, "credentials.json"), generated)
	case cfg.Auth.AllowAnonymous && len(hashes) == 0:
		fmt.Fprintln(stdout, "anonymous mode: no API key needed (owner from X-Owner)")
	case len(cfg.Auth.APIKeys) == 0 && len(hashes) > 0:
		fmt.Fprintf(stdout, "API key: see %s\n", filepath.Join(dataDir, "credentials.json"))
	case len(hashes) == 0:
		fmt.Fprintf(stdout, "API keys: %d named key(s) bound to owners\n", len(named))
	}

	// Every gateway follows the allocator's events; the cluster-wide loops
	// run on the leader only (with SQLite's single gateway, that is it).
	elector := leader.New(leader.Config{Holder: holder, TTL: cfg.Store.LeaseTTL}, st, log)
	leaderWork := []func(context.Context){collector.Run, reconciler.Run, cargoPool.Run}
	if cfg.WarmPool.Enabled && pool.Enabled() {
		leaderWork = append(leaderWork, pool.Run)
	}
	srv.SetLeader(elector)
	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	watch := func(ctx context.Context) { watchKeys(ctx, cfg.Auth, srv, log) }
	wg.Add(3)
	go func() { defer wg.Done(); svc.Run(bg) }()
	go func() { defer wg.Done(); watch(bg) }()
	go func() { defer wg.Done(); elector.Run(bg, leaderWork...) }()

	serveErr := srv.Serve(ctx, ln)
	log.Info("shutting down")
	wasLeader := elector.Leading()
	stopBG()
	wg.Wait()
	// The warm pool belongs to the leader: a follower leaving must not
	// empty the pool the leader keeps.
	if cfg.WarmPool.Enabled && pool.Enabled() && wasLeader {
		drainCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		pool.Drain(drainCtx)
		cancel()
	}
	// Only a stop signal (not a failed listener) can be a deliberate stop.
	if cfg.Shutdown.DrainSessions && ctx.Err() != nil {
		drainOnShutdown(cfg, st, svc, alloc, log)
	}
	svc.Wait()
	return serveErr
}

func startTimeout(cfg *config.Config) time.Duration {
	if cfg.Allocator == config.AllocatorNomad && cfg.Nomad.StartTimeout > 0 {
		return cfg.Nomad.StartTimeout + 10*time.Second
	}
	return 2 * time.Minute
}

func newAllocator(cfg *config.Config, dataDir string, configFiles []string, log hclog.Logger) (allocator.Allocator, error) {
	bins, err := runtimeBinaries(cfg)
	if err != nil {
		return nil, err
	}
	env := runtimeEnv(cfg)
	switch cfg.Allocator {
	case config.AllocatorNomad:
		return newNomadAllocator(cfg, bins, env, log)
	default:
		extra := map[string][]string{}
		for rt, kv := range env {
			for k, v := range kv {
				extra[rt] = append(extra[rt], k+"="+v)
			}
		}
		box, err := newSandbox(cfg, dataDir, configFiles, extra)
		if err != nil {
			return nil, err
		}
		a, err := local.New(local.Config{
			DataDir: dataDir, Binaries: bins, ExtraEnv: extra, GracePeriod: cfg.Local.GracePeriod,
			NoWorkspaceMount: !cfg.Local.MountWorkspace, Sandbox: box,
		}, log)
		if err != nil {
			return nil, fmt.Errorf("start local allocator: %w", err)
		}
		return a, nil
	}
}

// runtimeBinaries finds ship and gull: the config, then beside bay, then PATH.
func runtimeBinaries(cfg *config.Config) (map[string]string, error) {
	self, _ := os.Executable()
	find := func(configured, name string) (string, error) {
		if configured != "" {
			return configured, nil
		}
		if self != "" {
			p := filepath.Join(filepath.Dir(self), name)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		if p, err := exec.LookPath(name); err == nil {
			return filepath.Abs(p)
		}
		return "", fmt.Errorf("runtime binary %q not found beside bay or on PATH (set runtimes { %s = ... })", name, name)
	}
	var errs []error
	out := map[string]string{}
	for name, configured := range map[string]string{"ship": cfg.Runtimes.Ship, "gull": cfg.Runtimes.Gull} {
		p, err := find(configured, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[name] = p
	}
	// With Nomad, binaries are paths on the client nodes: not finding them
	// here is not an error when every profile uses docker images.
	if len(errs) > 0 && cfg.Allocator != config.AllocatorNomad {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// runtimeEnv is the extra environment each runtime type needs.
func runtimeEnv(cfg *config.Config) map[string]map[string]string {
	ship := map[string]string{}
	if cfg.Runtimes.Python != "" {
		ship["BAY_PYTHON"] = cfg.Runtimes.Python
	}
	gull := map[string]string{}
	ab := cfg.Runtimes.AgentBrowser
	if ab == "" {
		ab = findAgentBrowser()
	}
	if ab != "" {
		gull["BAY_AGENT_BROWSER"] = ab
	}
	return map[string]map[string]string{"ship": ship, "gull": gull}
}

// findAgentBrowser looks for the npm-installed CLI next to the binaries and
// in the working directory (a source checkout), before PATH (gull's own).
func findAgentBrowser() string {
	rel := filepath.Join("node_modules", "agent-browser", "bin", "agent-browser-linux-x64")
	var dirs []string
	if self, err := os.Executable(); err == nil {
		d := filepath.Dir(self)
		dirs = append(dirs, d, filepath.Dir(d))
	}
	if wd, err := os.Getwd(); err == nil {
		dirs = append(dirs, wd)
	}
	for _, d := range dirs {
		p := filepath.Join(d, rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("agent-browser"); err == nil && !strings.HasSuffix(p, ".js") {
		return p
	}
	return ""
}
