// Command gull is Bay's browser runtime: an HTTP server that passes
// agent-browser commands through to the CLI for one browser session whose
// profile lives in the workspace.
//
//	gull [--host 0.0.0.0] [--port 8115] [--workspace /workspace] [--agent-browser PATH] [--session NAME] [--mount-workspace /workspace] [--socket /run/bay/gull.sock]
//
// --mount-workspace needs a mount namespace of gull's own (the local
// allocator starts it with CLONE_NEWNS): the --workspace directory is
// bind-mounted there, and the CLI, its daemon and Chromium see it there.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/bay-sandbox/bay/internal/version"
	"github.com/bay-sandbox/bay/runtimes/gull"
	"github.com/bay-sandbox/bay/runtimes/nsmount"
	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/hashicorp/go-hclog"
)

func main() {
	os.Exit(run())
}

func run() int {
	// Gull is a thin proxy that runs one command at a time and mostly waits
	// in wait4 and the netpoller. With more Ps its idle threads spin for work
	// on the cores the CLI, the daemon and Chromium need; one P measured
	// ~10% faster end to end on 2 cores (bench: gull_get_title_overhead_p50).
	// Blocking syscalls hand the P off, so /health stays responsive.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	host := flag.String("host", envOr("BAY_GULL_HOST", "0.0.0.0"), "listen host")
	port := flag.Int("port", envInt("BAY_GULL_PORT", envInt("PORT", 8115)), "listen port (env BAY_GULL_PORT, then PORT)")
	workspace := flag.String("workspace", envOr("BAY_WORKSPACE_PATH", "/workspace"), "workspace (cargo) directory")
	cli := flag.String("agent-browser", os.Getenv("BAY_AGENT_BROWSER"), "agent-browser CLI path (default: BAY_AGENT_BROWSER, then PATH)")
	session := flag.String("session", envOr("BAY_SANDBOX_ID", "default"), "agent-browser session name")
	shutdown := flag.Duration("shutdown-timeout", 10*time.Second, "graceful shutdown budget (browser close included)")
	mountAt := flag.String("mount-workspace", "", "bind-mount the workspace here first and use it from here; needs root in a mount namespace of gull's own")
	socket := flag.String("socket", os.Getenv("BAY_RUNTIME_SOCKET"), "also serve on this Unix socket (env BAY_RUNTIME_SOCKET); the sandboxed local allocator reaches gull through it")
	noAuth := flag.Bool("no-auth", false, "serve every caller without the session secret ("+wire.SecretEnv+" or "+wire.SecretFileEnv+"); for running gull by hand only")
	logLevel := flag.String("log-level", envOr("BAY_LOG_LEVEL", "info"), "log level")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.String())
		return 0
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "gull", Level: hclog.LevelFromString(*logLevel), Output: os.Stderr})
	secret, err := wire.SecretFromEnv()
	if err != nil {
		log.Error("start gull", "error", err)
		return 1
	}
	if secret == "" && !*noAuth {
		log.Error("no session secret: set " + wire.SecretEnv + " or " + wire.SecretFileEnv + " (or pass --no-auth to serve every caller)")
		return 1
	}
	if *mountAt != "" {
		*workspace = nsmount.Workspace(*workspace, *mountAt, log)
	}
	srv, err := gull.NewServer(gull.Config{
		Secret:          secret,
		Addr:            net.JoinHostPort(*host, strconv.Itoa(*port)),
		Workspace:       *workspace,
		AgentBrowser:    *cli,
		Session:         *session,
		ShutdownTimeout: *shutdown,
	}, log)
	if err != nil {
		log.Error("start gull", "error", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ln, err := wire.Listen(net.JoinHostPort(*host, strconv.Itoa(*port)), *socket)
	if err != nil {
		log.Error("start gull", "error", err)
		return 1
	}
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("gull stopped", "error", err)
		return 1
	}
	return 0
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil {
		return v
	}
	return def
}
