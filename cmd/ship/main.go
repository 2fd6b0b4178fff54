// Command ship is Bay's code runtime: it serves a session's workspace, shell
// and stateful Python over HTTP (API.md §2). It is started by Nomad or by the
// local allocator with the cargo as its workspace.
//
//	ship [--host 0.0.0.0] [--port 8123] [--workspace /workspace] [--python /usr/bin/python3] [--run-as user] [--shutdown-grace 3s] [--mount-workspace /workspace] [--socket /run/bay/ship.sock]
//
// Every flag but --mount-workspace falls back to an environment variable:
// PORT, BAY_SHIP_HOST, BAY_WORKSPACE_PATH, BAY_PYTHON, BAY_RUN_AS,
// BAY_SHUTDOWN_GRACE, BAY_LOG_LEVEL; BAY_CARGO_SIZE_LIMIT_MB (the cargo's
// quota for API writes) and BAY_OOM_CONTROL (a cgroup's memory.oom_control,
// to report out-of-memory kills) have no flag. --mount-workspace needs a mount
// namespace of ship's own (the local allocator starts it with CLONE_NEWNS):
// the --workspace directory is bind-mounted there and served from there.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/bay-sandbox/bay/internal/version"
	"github.com/bay-sandbox/bay/runtimes/nsmount"
	"github.com/bay-sandbox/bay/runtimes/ship"
	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/hashicorp/go-hclog"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("ship", flag.ContinueOnError)
	port := fs.Int("port", envInt("PORT", ship.DefaultPort), "listen port (env PORT)")
	host := fs.String("host", envStr("BAY_SHIP_HOST", "0.0.0.0"), "listen address (env BAY_SHIP_HOST)")
	workspace := fs.String("workspace", envStr("BAY_WORKSPACE_PATH", ship.DefaultWorkspace), "workspace root (env BAY_WORKSPACE_PATH)")
	python := fs.String("python", os.Getenv("BAY_PYTHON"), "python interpreter (env BAY_PYTHON; default /usr/bin/python3 if present, else python3 on PATH)")
	runAs := fs.String("run-as", os.Getenv("BAY_RUN_AS"), "run shell and python as this user when started as root (env BAY_RUN_AS)")
	grace := fs.Duration("shutdown-grace", envDuration("BAY_SHUTDOWN_GRACE", 3*time.Second), "how long running requests may finish after SIGTERM (env BAY_SHUTDOWN_GRACE)")
	mountAt := fs.String("mount-workspace", "", "bind-mount the workspace here first and serve it from here; needs root in a mount namespace of ship's own")
	socket := fs.String("socket", os.Getenv("BAY_RUNTIME_SOCKET"), "also serve on this Unix socket (env BAY_RUNTIME_SOCKET); the sandboxed local allocator reaches ship through it")
	noAuth := fs.Bool("no-auth", false, "serve every caller without the session secret ("+wire.SecretEnv+" or "+wire.SecretFileEnv+"); for running ship by hand only")
	logLevel := fs.String("log-level", envStr("BAY_LOG_LEVEL", "info"), "log level (env BAY_LOG_LEVEL)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Println(version.String())
		return 0
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "ship", Level: hclog.LevelFromString(*logLevel), Output: os.Stderr})
	secret, err := wire.SecretFromEnv()
	if err != nil {
		log.Error("start ship", "error", err)
		return 1
	}
	if secret == "" && !*noAuth {
		log.Error("no session secret: set " + wire.SecretEnv + " or " + wire.SecretFileEnv + " (or pass --no-auth to serve every caller)")
		return 1
	}
	if *mountAt != "" {
		*workspace = nsmount.Workspace(*workspace, *mountAt, log)
	}
	srv, err := ship.NewServer(ship.Config{
		Secret:        secret,
		Host:          *host,
		Port:          *port,
		Workspace:     *workspace,
		Python:        *python,
		RunAs:         *runAs,
		ShutdownGrace: *grace,
		SizeLimitMB:   envInt("BAY_CARGO_SIZE_LIMIT_MB", 0),
		OOMControl:    os.Getenv("BAY_OOM_CONTROL"),
	}, log)
	if err != nil {
		log.Error("start ship", "error", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ln, err := wire.Listen(srv.Addr(), *socket)
	if err != nil {
		srv.Close()
		log.Error("start ship", "error", err)
		return 1
	}
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("ship stopped", "error", err)
		return 1
	}
	log.Info("ship stopped")
	return 0
}

func envStr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envInt(key string, def int) int {
	if v := os.Getenv(key); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

func envDuration(key string, def time.Duration) time.Duration {
	if v := os.Getenv(key); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}
