package gull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bay-sandbox/bay/internal/version"
	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/gofiber/fiber/v2"
	"github.com/hashicorp/go-hclog"
)

// Config is what a Gull needs to run. Zero values take the documented
// defaults.
type Config struct {
	// Addr is the listen address for Run (default ":8115").
	Addr string
	// Workspace is the cargo directory; it must exist.
	Workspace string
	// AgentBrowser is the CLI: a path, or a name looked up on PATH (default
	// "agent-browser"). A missing CLI is reported by /health, not fatal.
	AgentBrowser string
	// Session is the agent-browser session name (default "default").
	Session string
	// Env is the environment the CLI starts from (default os.Environ()).
	Env []string
	// ShutdownTimeout bounds Run's graceful shutdown, browser close included
	// (default 10s).
	ShutdownTimeout time.Duration
	// Now is the clock used for reported durations (default time.Now).
	Now func() time.Time
	// Secret is the session's secret (wire.RequireSecret): every route but
	// /health needs it. Empty serves every caller.
	Secret string
}

// ProfileSubdir is where, relative to the workspace, the persistent browser
// profile (cookies, storage) lives.
const ProfileSubdir = ".browser/profile"

// Server is one Gull: an HTTP front for one agent-browser session.
type Server struct {
	cfg        Config
	log        hclog.Logger
	app        *fiber.App
	env        []string
	profileDir string
	daemon     daemonFiles
	now        func() time.Time

	// sem serialises commands: the daemon drives one browser and refs from
	// one snapshot are only meaningful to the next command of that session.
	sem chan struct{}

	baseCtx  context.Context // cancelled at shutdown: kills running commands
	cancel   context.CancelFunc
	closing  atomic.Bool
	shutOnce sync.Once
	shutErr  error

	verMu      sync.Mutex
	cliVersion string
}

// NewServer checks cfg, prepares the profile directory and builds the app.
func NewServer(cfg Config, log hclog.Logger) (*Server, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.Addr == "" {
		cfg.Addr = ":8115"
	}
	if cfg.Session == "" {
		cfg.Session = "default"
	}
	if !validSession(cfg.Session) {
		return nil, fmt.Errorf("invalid session name %q: only letters, digits, '-' and '_' are allowed", cfg.Session)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.Env == nil {
		cfg.Env = os.Environ()
	}
	if cfg.Workspace == "" {
		return nil, errors.New("workspace is required")
	}
	ws, err := filepath.Abs(cfg.Workspace)
	if err != nil {
		return nil, fmt.Errorf("resolve workspace: %w", err)
	}
	if st, err := os.Stat(ws); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("workspace %s is not a directory", ws)
	}
	cfg.Workspace = ws
	s := &Server{
		cfg:        cfg,
		log:        log,
		env:        childEnv(wire.StripSecret(cfg.Env), ws),
		profileDir: filepath.Join(ws, ProfileSubdir),
		now:        cfg.Now,
		sem:        make(chan struct{}, 1),
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.daemon = newDaemonFiles(s.env, cfg.Session)
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	if err := os.MkdirAll(s.profileDir, 0o700); err != nil {
		return nil, fmt.Errorf("create browser profile dir: %w", err)
	}
	if _, alive := s.daemon.pid(); !alive {
		if removed := removeStaleLocks(s.profileDir); len(removed) > 0 {
			log.Info("removed stale browser profile locks", "files", strings.Join(removed, ","))
		}
	}
	if _, err := resolveCLI(cfg.AgentBrowser); err != nil {
		log.Warn("agent-browser not available; gull will report unhealthy", "error", err)
	}
	s.app = fiber.New(fiber.Config{
		AppName:               "gull",
		DisableStartupMessage: true,
		ErrorHandler:          wire.FiberErrorHandler,
	})
	s.app.Use(wire.RequireSecret(cfg.Secret))
	s.app.Get("/health", s.handleHealth)
	s.app.Get("/meta", s.handleMeta)
	s.app.Post("/exec", s.handleExec)
	s.app.Post("/exec_batch", s.handleBatch)
	return s, nil
}

// App returns the Fiber app (for tests and embedding).
func (s *Server) App() *fiber.App { return s.app }

// Run listens on cfg.Addr and serves until ctx ends, then shuts down
// gracefully (see Shutdown). It returns nil after a clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.log.Info("listening", "addr", ln.Addr().String(), "workspace", s.cfg.Workspace, "session", s.cfg.Session)
	errCh := make(chan error, 1)
	go func() { errCh <- s.app.Listener(ln) }()
	select {
	case err := <-errCh:
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		_ = s.Shutdown(sctx)
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	return s.Shutdown(sctx)
}

// Shutdown stops taking commands, kills the ones running, stops the HTTP
// server and closes the browser so Chromium writes its cookies and storage
// to the profile in the cargo (design rule 6). If close does not finish in
// time the daemon is terminated, then killed. Safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() {
		s.closing.Store(true)
		s.cancel()
		if err := s.app.ShutdownWithContext(ctx); err != nil {
			s.shutErr = fmt.Errorf("stop http server: %w", err)
		}
		s.closeBrowser(ctx)
	})
	return s.shutErr
}

// closeBrowser runs `close` for our session when its daemon is up, and makes
// sure the daemon is gone afterwards.
func (s *Server) closeBrowser(ctx context.Context) {
	pid, alive := s.daemon.pid()
	if !alive {
		return
	}
	// Commands were just killed; their daemon-side work may still hold the
	// daemon, and close queues behind it. Keep part of the budget for the
	// signals below.
	budget := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl) * 2 / 3
	}
	cctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	if cli, err := resolveCLI(s.cfg.AgentBrowser); err == nil {
		res, err := runCLI(cctx, cli, s.cfg.Workspace, s.env, cliArgs(s.cfg.Session, s.profileDir, []string{"close"}),
			func() string { return "gull: close timed out" })
		switch {
		case err != nil:
			s.log.Warn("close browser", "error", err)
		case res.ExitCode != 0:
			s.log.Warn("close browser failed", "exit_code", res.ExitCode, "stderr", strings.TrimSpace(res.Stderr))
		default:
			s.log.Info("browser closed", "session", s.cfg.Session)
		}
	}
	if waitGone(ctx, pid, 3*time.Second) {
		return
	}
	s.log.Warn("browser daemon still running after close; terminating", "pid", pid)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if waitGone(ctx, pid, 3*time.Second) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	s.log.Warn("browser daemon killed", "pid", pid)
}

// waitGone polls until pid has exited, for at most d or until ctx ends.
func waitGone(ctx context.Context, pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if !processAlive(pid) {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// HealthResponse is the body of GET /health: wire.Health plus the reasons
// when Gull is not healthy.
type HealthResponse struct {
	wire.Health
	Problems []string `json:"problems,omitempty"`
}

// health never waits for a running command: it reads files and dials the
// daemon's socket, which accepts while a command runs.
func (s *Server) health() HealthResponse {
	h := HealthResponse{Health: wire.Health{Status: StatusHealthy, Version: version.String(), Session: s.cfg.Session}}
	active, ready := false, false
	if _, alive := s.daemon.pid(); alive {
		active = true
		ready = s.daemon.ready(250 * time.Millisecond)
	}
	h.BrowserActive, h.BrowserReady = &active, &ready
	if s.closing.Load() {
		h.Status = StatusUnhealthy
		h.Problems = append(h.Problems, "shutting down")
	}
	if _, err := resolveCLI(s.cfg.AgentBrowser); err != nil {
		h.Status = StatusUnhealthy
		h.Problems = append(h.Problems, err.Error())
	}
	if st, err := os.Stat(s.cfg.Workspace); err != nil || !st.IsDir() {
		h.Status = StatusUnhealthy
		h.Problems = append(h.Problems, "workspace "+s.cfg.Workspace+" is missing")
	}
	if exe, ok := lookupEnv(s.env, "AGENT_BROWSER_EXECUTABLE_PATH"); ok && exe != "" {
		if _, err := os.Stat(exe); err != nil && h.Status == StatusHealthy {
			h.Status = StatusDegraded
			h.Problems = append(h.Problems, "browser executable "+exe+" is missing: commands that need a browser will fail")
		}
	}
	return h
}

func (s *Server) handleHealth(c *fiber.Ctx) error {
	h := s.health()
	status := http.StatusOK
	if h.Status == StatusUnhealthy {
		status = http.StatusServiceUnavailable
	}
	return c.Status(status).JSON(h)
}

// CLIVersion returns the agent-browser version ("0.41.2"), asking the CLI
// once and caching the answer.
func (s *Server) CLIVersion(ctx context.Context) (string, error) {
	s.verMu.Lock()
	defer s.verMu.Unlock()
	if s.cliVersion != "" {
		return s.cliVersion, nil
	}
	cli, err := resolveCLI(s.cfg.AgentBrowser)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := runCLI(ctx, cli, s.cfg.Workspace, s.env, []string{"--version"}, func() string { return "timed out" })
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("agent-browser --version exited %d: %s", res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	fields := strings.Fields(res.Stdout)
	if len(fields) == 0 {
		return "", errors.New("agent-browser --version printed nothing")
	}
	s.cliVersion = fields[len(fields)-1]
	return s.cliVersion, nil
}

func (s *Server) handleMeta(c *fiber.Ctx) error {
	browser := map[string]any{
		"cli":               "agent-browser",
		"session":           s.cfg.Session,
		"profile_dir":       ProfileSubdir,
		"passthrough":       true,
		"max_exec_timeout":  MaxExecTimeout,
		"max_batch_timeout": MaxBatchTimeout,
		"operations":        []string{"exec", "exec_batch"},
	}
	if v, err := s.CLIVersion(s.baseCtx); err == nil {
		browser["cli_version"] = v
	} else {
		browser["cli_error"] = err.Error()
	}
	return c.JSON(wire.Meta{
		Runtime:      wire.RuntimeInfo{Name: "gull", Version: version.String(), APIVersion: "v1"},
		Workspace:    wire.WorkspaceInfo{MountPath: s.cfg.Workspace},
		Capabilities: map[string]any{"browser": browser},
	})
}

// execBody and batchBody are the request bodies as decoded by the server:
// pointers tell an absent field (default) from an explicit bad value.
type execBody struct {
	Cmd     *string      `json:"cmd"`
	Timeout *json.Number `json:"timeout"`
}

type batchBody struct {
	Commands    []string     `json:"commands"`
	Timeout     *json.Number `json:"timeout"`
	StopOnError *bool        `json:"stop_on_error"`
}

func (s *Server) handleExec(c *fiber.Ctx) error {
	var b execBody
	if err := decodeJSON(c.Body(), &b); err != nil {
		return err
	}
	timeout, err := timeoutSeconds(b.Timeout, DefaultExecTimeout, MaxExecTimeout)
	if err != nil {
		return err
	}
	cmd := ""
	if b.Cmd != nil {
		cmd = *b.Cmd
	}
	words, err := parseCommand(cmd, "cmd")
	if err != nil {
		return err
	}
	if err := s.available(); err != nil {
		return err
	}
	// The caller's deadline bounds the call too: a command queued behind
	// another whose caller has gone never runs, a running one is killed.
	callCtx, callCancel := wire.CallContext(s.baseCtx, c.Get(wire.DeadlineHeader))
	defer callCancel()
	ctx, cancel := context.WithTimeout(callCtx, time.Duration(timeout)*time.Second)
	defer cancel()
	if !s.acquire(ctx) {
		return c.JSON(ExecResponse{ExitCode: -1, Stderr: s.killReason(timeout, true)})
	}
	defer s.release()
	start := s.now()
	res, err := s.run(ctx, words, timeout)
	if err != nil {
		return unavailable(err)
	}
	s.log.Debug("exec", "words", len(words), "exit_code", res.ExitCode, "duration", s.now().Sub(start))
	return c.JSON(res)
}

func (s *Server) handleBatch(c *fiber.Ctx) error {
	var b batchBody
	if err := decodeJSON(c.Body(), &b); err != nil {
		return err
	}
	timeout, err := timeoutSeconds(b.Timeout, DefaultBatchTimeout, MaxBatchTimeout)
	if err != nil {
		return err
	}
	if len(b.Commands) == 0 {
		return wire.ValidationError(map[string]any{"field": "commands"}, "commands must hold at least one command")
	}
	steps := make([][]string, len(b.Commands))
	for i, cmd := range b.Commands {
		w, err := parseCommand(cmd, fmt.Sprintf("commands[%d]", i))
		if err != nil {
			return err
		}
		steps[i] = w
	}
	if err := s.available(); err != nil {
		return err
	}
	stopOnError := b.StopOnError == nil || *b.StopOnError
	start := s.now()
	// One deadline for the whole batch: the budget is shared, and waiting
	// for a previous command counts against it too.
	callCtx, callCancel := wire.CallContext(s.baseCtx, c.Get(wire.DeadlineHeader))
	defer callCancel()
	ctx, cancel := context.WithTimeout(callCtx, time.Duration(timeout)*time.Second)
	defer cancel()
	resp := BatchResponse{Results: []StepResult{}, TotalSteps: len(steps)}
	if !s.acquire(ctx) {
		resp.Results = append(resp.Results, StepResult{Cmd: b.Commands[0], ExitCode: -1, Stderr: s.killReason(timeout, true)})
		resp.CompletedSteps = 1
		resp.DurationMS = s.now().Sub(start).Milliseconds()
		return c.JSON(resp)
	}
	defer s.release()
	for i, words := range steps {
		if ctx.Err() != nil {
			break // budget spent: the remaining steps do not run
		}
		stepStart := s.now()
		res, err := s.run(ctx, words, timeout)
		if err != nil {
			return unavailable(err)
		}
		resp.Results = append(resp.Results, StepResult{
			Cmd: b.Commands[i], Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode,
			StepIndex: i, DurationMS: s.now().Sub(stepStart).Milliseconds(),
		})
		resp.CompletedSteps++
		if res.ExitCode != 0 && (stopOnError || res.ExitCode == -1) {
			break
		}
	}
	resp.Success = resp.CompletedSteps == resp.TotalSteps
	for _, r := range resp.Results {
		if r.ExitCode != 0 {
			resp.Success = false
		}
	}
	resp.DurationMS = s.now().Sub(start).Milliseconds()
	s.log.Debug("exec batch", "steps", resp.TotalSteps, "completed", resp.CompletedSteps, "success", resp.Success)
	return c.JSON(resp)
}

// run executes one command; the caller holds the session lock.
func (s *Server) run(ctx context.Context, words []string, timeout int) (ExecResponse, error) {
	cli, err := resolveCLI(s.cfg.AgentBrowser)
	if err != nil {
		return ExecResponse{}, err
	}
	return runCLI(ctx, cli, s.cfg.Workspace, s.env, cliArgs(s.cfg.Session, s.profileDir, words),
		func() string { return s.killReason(timeout, false) })
}

func (s *Server) killReason(timeout int, waiting bool) string {
	switch {
	case s.baseCtx.Err() != nil:
		return "gull: shutting down; command killed"
	case waiting:
		return fmt.Sprintf("gull: timed out after %ds waiting for the previous command of this session to finish", timeout)
	default:
		return fmt.Sprintf("gull: command timed out after %ds; process killed (the browser may still be finishing it, and the next command waits for that)", timeout)
	}
}

func (s *Server) acquire(ctx context.Context) bool {
	select {
	case s.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Server) release() { <-s.sem }

// available refuses work while shutting down or without a CLI.
func (s *Server) available() error {
	if s.closing.Load() {
		return &wire.APIError{Status: http.StatusServiceUnavailable, Code: wire.CodeUnavailable, Message: "gull is shutting down"}
	}
	if _, err := resolveCLI(s.cfg.AgentBrowser); err != nil {
		return unavailable(err)
	}
	return nil
}

func decodeJSON(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return wire.ValidationError(nil, "request body is empty; a JSON object is required")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return wire.ValidationError(nil, "invalid JSON body: %v", err)
	}
	return nil
}

// timeoutSeconds validates an optional timeout in whole seconds.
func timeoutSeconds(n *json.Number, def, maxSec int) (int, error) {
	if n == nil {
		return def, nil
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || f < 1 || f > float64(maxSec) {
		return 0, wire.ValidationError(map[string]any{"field": "timeout"}, "timeout must be a whole number of seconds in 1..%d, got %s", maxSec, n.String())
	}
	return int(f), nil
}

// parseCommand splits cmd into the CLI's words or says why it cannot.
func parseCommand(cmd, field string) ([]string, error) {
	if strings.TrimSpace(cmd) == "" {
		return nil, wire.ValidationError(map[string]any{"field": field}, "%s is empty", field)
	}
	if strings.ContainsRune(cmd, 0) {
		// No argument of a process can hold one.
		return nil, wire.ValidationError(map[string]any{"field": field}, "%s must not contain a NUL byte", field)
	}
	words, err := SplitWords(cmd)
	if err != nil {
		return nil, wire.ValidationError(map[string]any{"field": field}, "%s: %v", field, err)
	}
	if len(words) == 0 || (len(words) == 1 && words[0] == "agent-browser") {
		return nil, wire.ValidationError(map[string]any{"field": field}, "%s names no agent-browser command", field)
	}
	return words, nil
}
