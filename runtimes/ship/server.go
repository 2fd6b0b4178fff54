// Package ship is the code runtime of a Bay session: a small HTTP server that
// gives an agent the session's workspace (files), shell commands and a
// stateful Python interpreter, plus the typed Client the gateway uses to talk
// to it. The wire contract is API.md §2.
package ship

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/bay-sandbox/bay/internal/version"
	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/gofiber/fiber/v2"
	"github.com/hashicorp/go-hclog"
)

// Defaults of Config.
const (
	DefaultPort      = 8123
	DefaultWorkspace = "/workspace"
	DefaultPython    = "/usr/bin/python3"

	defaultTimeout      = 30 * time.Second
	maxTimeoutSeconds   = 24 * 60 * 60
	defaultOutputLimit  = 1 << 20
	defaultReadLimit    = 32 << 20
	defaultJSONLimit    = 64 << 20
	defaultGrace        = 3 * time.Second // inside Nomad's default 5 s kill_timeout
	defaultInterrupt    = 2 * time.Second
	defaultPythonLaunch = 60 * time.Second
)

// Config is what Ship needs to run. Zero values take the defaults above.
type Config struct {
	// Host and Port are where the HTTP server listens (default 0.0.0.0:8123;
	// inside a Nomad bridge network the task must listen on all interfaces).
	Host string
	Port int
	// Workspace is the cargo's mount path; every file path is confined to it.
	Workspace string
	// Python is the interpreter for /ipython (default /usr/bin/python3 when
	// it exists, else python3 on PATH).
	Python string
	// RunAs names an unprivileged user (name or uid) that shell commands and
	// Python run as. It needs Ship to run as root; the server stays root.
	RunAs string
	// OutputLimit caps each of stdout/stderr of a foreground command, the
	// text of a Python cell, and the buffer kept per background stream.
	OutputLimit int
	// ReadLimit caps read_file/edit_file on a whole file (download streams).
	ReadLimit int64
	// ShutdownGrace is how long running requests may finish after SIGTERM
	// before their commands are killed.
	ShutdownGrace time.Duration
	// InterruptGrace is how long Python gets to stop after SIGINT on timeout
	// before it is killed and restarted.
	InterruptGrace time.Duration
	// PythonStartTimeout bounds an interpreter's start (import of IPython).
	PythonStartTimeout time.Duration
	// Secret is the session's secret (wire.RequireSecret): every route but
	// /health needs it. Empty serves every caller.
	Secret string
	// SizeLimitMB is the cargo's quota for writes through the API (0: none).
	SizeLimitMB int
	// OOMControl is a cgroup v1 memory.oom_control file counting the
	// container's out-of-memory kills (the sandboxed local allocator shows
	// it); with it an interpreter killed at the memory limit is reported
	// as out of memory.
	OOMControl string
}

func (c *Config) setDefaults() {
	if c.Host == "" {
		c.Host = "0.0.0.0"
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Workspace == "" {
		c.Workspace = DefaultWorkspace
	}
	if c.Python == "" {
		c.Python = defaultPython()
	}
	if c.OutputLimit <= 0 {
		c.OutputLimit = defaultOutputLimit
	}
	if c.ReadLimit <= 0 {
		c.ReadLimit = defaultReadLimit
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = defaultGrace
	}
	if c.InterruptGrace <= 0 {
		c.InterruptGrace = defaultInterrupt
	}
	if c.PythonStartTimeout <= 0 {
		c.PythonStartTimeout = defaultPythonLaunch
	}
}

func defaultPython() string {
	if _, err := os.Stat(DefaultPython); err == nil {
		return DefaultPython
	}
	if p, err := exec.LookPath("python3"); err == nil {
		return p
	}
	return "python3"
}

// Server is one Ship: the Fiber app plus the interpreter and the background
// processes it owns.
type Server struct {
	cfg   Config
	log   hclog.Logger
	ws    *workspace
	owner *credential // nil: children run as Ship itself
	env   []string    // environment of every child
	shell string
	quota quota // the cargo's size limit for API writes

	py    *kernel
	procs *procTable
	app   *fiber.App

	// work is cancelled at shutdown once the grace period is over; every
	// foreground command and Python call runs under it.
	work       context.Context
	cancelWork context.CancelFunc
	stateDir   string
	closeOnce  sync.Once
}

// NewServer validates cfg, opens the workspace and builds the app. It starts
// nothing: the interpreter is started by Run (or lazily by the first call).
func NewServer(cfg Config, log hclog.Logger) (*Server, error) {
	cfg.setDefaults()
	if log == nil {
		log = hclog.NewNullLogger()
	}
	ws, err := openWorkspace(cfg.Workspace)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, ws: ws, shell: findShell()}
	if cfg.RunAs != "" {
		cred, err := lookupCredential(cfg.RunAs)
		if err != nil {
			ws.close()
			return nil, err
		}
		s.owner = cred
	}
	if s.owner != nil {
		// The agent's code must be able to create files at the root of its
		// own workspace.
		if err := os.Chown(ws.real, s.owner.uid, s.owner.gid); err != nil {
			ws.close()
			return nil, fmt.Errorf("hand workspace to %s: %w", s.owner.name, err)
		}
	}
	s.stateDir, err = os.MkdirTemp("", "ship-state-")
	if err != nil {
		ws.close()
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	if s.owner != nil {
		_ = os.Chown(s.stateDir, s.owner.uid, s.owner.gid)
	}
	s.env = childEnv(wire.StripSecret(os.Environ()), s.owner)
	if err := s.writeEnvFile(); err != nil {
		// Scripts sourcing it would miss the profile env; the runtime
		// itself works, so say so and go on.
		log.Warn("write profile env file", "error", err)
	}
	s.work, s.cancelWork = context.WithCancel(context.Background())
	s.quota = quota{limit: int64(cfg.SizeLimitMB) << 20, root: ws.real}
	s.py = newKernel(kernelConfig{
		python:         cfg.Python,
		dir:            ws.real,
		env:            pythonEnv(s.env, s.stateDir),
		cred:           s.owner.sysCredential(),
		interruptGrace: cfg.InterruptGrace,
		startTimeout:   cfg.PythonStartTimeout,
		outputLimit:    cfg.OutputLimit,
		log:            log.Named("python"),
		oom:            oomCounter(cfg.OOMControl),
	})
	s.procs = newProcTable(cfg.OutputLimit, log.Named("shell"))
	s.app = s.newApp()
	return s, nil
}

// App is the Fiber app (tests drive it with app.Test).
func (s *Server) App() *fiber.App { return s.app }

// Addr is the listen address from the config.
func (s *Server) Addr() string { return net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port)) }

// Run listens on the configured address, warms the interpreter up and serves
// until ctx is done, then shuts down gracefully. It returns nil after a clean
// shutdown.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.Addr())
	if err != nil {
		s.Close()
		return fmt.Errorf("listen on %s: %w", s.Addr(), err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.log.Info("ship listening", "addr", ln.Addr().String(), "workspace", s.ws.mount, "python", s.cfg.Python, "version", version.String())
	s.py.warm()
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(ln) }()
	select {
	case err := <-errc:
		s.Close()
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "grace", s.cfg.ShutdownGrace)
	return s.Shutdown()
}

// Shutdown stops accepting requests, lets running ones finish for the grace
// period, then kills what is left (foreground commands, background
// processes, the interpreter) and releases the workspace.
func (s *Server) Shutdown() error {
	done := make(chan error, 1)
	go func() { done <- s.app.ShutdownWithTimeout(s.cfg.ShutdownGrace) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(s.cfg.ShutdownGrace + time.Second):
	}
	s.Close()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown http: %w", err)
	}
	return nil
}

// Close kills all work and releases resources without touching the HTTP
// side. It is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.cancelWork()
		s.procs.killAll()
		s.py.close()
		_ = s.ws.close()
		_ = os.RemoveAll(s.stateDir)
	})
}

func (s *Server) newApp() *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:               "ship",
		DisableStartupMessage: true,
		ErrorHandler:          wire.FiberErrorHandler,
		// Upload bodies are streamed: fasthttp hands the handler a reader
		// after at most a small prefix, and never pre-parses a multipart form
		// into memory or temp files.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		BodyLimit:                    defaultJSONLimit,
		ReadBufferSize:               16 << 10,
	})
	app.Use(wire.RequireSecret(s.cfg.Secret))
	app.Get("/health", s.health)
	app.Get("/meta", s.meta)

	app.Post("/fs/read_file", s.readFile)
	app.Post("/fs/write_file", s.writeFile)
	app.Post("/fs/edit_file", s.editFile)
	app.Post("/fs/delete_file", s.deleteFile)
	app.Post("/fs/list_dir", s.listDir)
	app.Post("/fs/upload", s.upload)
	app.Get("/fs/download", s.download)

	app.Post("/ipython/exec", s.pythonExec)
	app.Post("/ipython/kernel/restart", s.pythonRestart)
	app.Get("/ipython/kernel/status", s.pythonStatus)

	app.Post("/shell/exec", s.shellExec)
	app.Get("/shell/processes", s.listProcesses)
	app.Get("/shell/processes/:id", s.getProcess)
	app.Post("/shell/processes/:id/kill", s.killProcess)

	app.Use(func(c *fiber.Ctx) error {
		return wire.NewAPIError(fiber.StatusNotFound, "not_found", "no route %s %s", c.Method(), c.Path())
	})
	return app
}

func (s *Server) health(c *fiber.Ctx) error {
	return c.JSON(wire.Health{Status: "healthy", Version: version.String()})
}

func (s *Server) meta(c *fiber.Ctx) error {
	st := s.py.status()
	return c.JSON(wire.Meta{
		Runtime:   wire.RuntimeInfo{Name: "ship", Version: version.String(), APIVersion: "v1"},
		Workspace: wire.WorkspaceInfo{MountPath: s.ws.mount},
		Capabilities: map[string]any{
			"filesystem": map[string]any{
				"operations": []string{"read_file", "write_file", "edit_file", "delete_file", "list_dir", "upload", "download"},
				"streaming":  true,
			},
			"shell": map[string]any{
				"shell":      s.shell,
				"background": true,
				"run_as":     s.owner.describe(),
			},
			"python": map[string]any{
				"python":               s.cfg.Python,
				"engine":               st.Engine,
				"stateful":             true,
				"images":               true,
				"interrupt_on_timeout": true,
			},
		},
	})
}

// timeoutOf turns a request's timeout in seconds into a duration.
func timeoutOf(sec int) (time.Duration, error) {
	switch {
	case sec == 0:
		return defaultTimeout, nil
	case sec < 0 || sec > maxTimeoutSeconds:
		return 0, validationErr("timeout must be between 1 and %d seconds", maxTimeoutSeconds)
	}
	return time.Duration(sec) * time.Second, nil
}
