// Package local is the embedded default allocator: every container of a
// session is a child process (the ship or gull binary) on a free loopback
// port, and a cargo is a directory under the data dir. It follows the same
// rules as the Nomad allocator: a partial start rolls everything back, a
// container dying later degrades the session and is restarted in place with
// the profile's restart policy, and exhausted restarts end the session.
//
// No child may outlive the gateway: each container runs in a session (and
// process group) of its own with a parent-death signal and a per-run tag in
// its environment; whatever is left of a run when its runtime exits is
// killed, Close stops every session, and New kills what a crashed
// predecessor left behind (recorded under <DataDir>/local-sessions).
//
// When the gateway runs as root on Linux each container also gets a mount
// namespace of its own in which its runtime bind-mounts the cargo at
// /workspace (Config.WorkspaceMount), as on Nomad; otherwise the cargo is
// seen at its own path and New logs why.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/sandbox"
)

// BackendLocalDir is the cargo backend this allocator reports.
const BackendLocalDir = "local_dir"

// Config configures the local allocator. Zero durations take the defaults
// documented on each field.
type Config struct {
	// DataDir holds cargos (cargos/<id>), child logs (logs/<session>/<container>.log)
	// and the crash-safety records (local-sessions/<session>.json).
	DataDir string
	// Binaries maps a runtime type ("ship", "gull") to the binary to run.
	// The caller resolves them (beside bay, or on PATH).
	Binaries map[string]string
	// ExtraEnv adds KEY=VALUE pairs per runtime type, e.g. BAY_PYTHON for ship
	// or AGENT_BROWSER_* for gull. Profile env wins over them.
	ExtraEnv map[string][]string
	// DropEnv names variables of the gateway's own environment that children
	// must not inherit; a trailing "*" matches a prefix. Nil means
	// DefaultDropEnv (the gateway's credentials); an empty non-nil slice drops
	// nothing.
	DropEnv []string
	// GracePeriod is how long Stop and Close wait after SIGTERM before
	// SIGKILL. Default 5s.
	GracePeriod time.Duration
	// DestroyGrace is the same for Destroy and start rollbacks. Default 500ms.
	DestroyGrace time.Duration
	// StartTimeout bounds how long one container may take to answer /health.
	// Default 60s.
	StartTimeout time.Duration
	// HealthInterval is the /health polling period while starting. Default 25ms.
	HealthInterval time.Duration
	// StableAfter is how long a restarted container must stay up for its
	// restart counter to reset. Default max(10s, 5 × the profile's delay).
	StableAfter time.Duration
	// PortAttempts is how many ports are tried when a child fails because its
	// port was taken in the meantime. Default 3.
	PortAttempts int
	// MaxLogBytes: a container log larger than this is rotated to .1 when the
	// container is (re)started. Default 8 MiB.
	MaxLogBytes int64
	// WorkspaceMount is where every container sees its cargo, as the
	// contract promises (default DefaultWorkspaceMount). When the gateway
	// runs as root on Linux each container runs in a mount namespace of its
	// own (CLONE_NEWNS) and its runtime, told by --mount-workspace,
	// bind-mounts the cargo there; its children inherit the namespace.
	// Otherwise the cargo is seen at its own path under DataDir, and New
	// logs why.
	WorkspaceMount string
	// NoWorkspaceMount always shows the cargo at its own path.
	NoWorkspaceMount bool
	// Sandbox, when set, runs every session in a sandbox of its own
	// (package sandbox): its own user, mount, pid, ipc and uts namespaces
	// per container and one network namespace per session, as uid 1000
	// shipyard with the cargo at /workspace, reached through Unix sockets.
	// WorkspaceMount and NoWorkspaceMount are then unused. Nil runs plain
	// child processes on loopback ports (isolation = "none").
	Sandbox *sandbox.Launcher
}

// DefaultDropEnv returns the gateway's secrets no sandbox process should see.
func DefaultDropEnv() []string {
	return []string{"BAY_API_KEY", "NOMAD_*", "CONSUL_*", "VAULT_*"}
}

func (c *Config) setDefaults() {
	if c.GracePeriod <= 0 {
		c.GracePeriod = 5 * time.Second
	}
	if c.DestroyGrace <= 0 {
		c.DestroyGrace = 500 * time.Millisecond
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 60 * time.Second
	}
	if c.HealthInterval <= 0 {
		c.HealthInterval = 25 * time.Millisecond
	}
	if c.PortAttempts <= 0 {
		c.PortAttempts = 3
	}
	if c.MaxLogBytes <= 0 {
		c.MaxLogBytes = 8 << 20
	}
	if c.DropEnv == nil {
		c.DropEnv = DefaultDropEnv()
	}
}

// Allocator runs sessions as local child processes. It implements
// allocator.Allocator and is safe for concurrent use.
type Allocator struct {
	cfg    Config
	log    hclog.Logger
	http   *http.Client
	ports  *portSet
	events *eventQueue
	self   owner // this gateway process, written into every record
	// instance makes the tags of this allocator's processes unique.
	instance string
	// mountAt is where containers see their cargo in namespaces of their
	// own; "" when they see it at its own path.
	mountAt string
	spawns  atomic.Int64
	// box runs sessions in sandboxes (nil: unisolated); runBase holds the
	// sessions' host directories.
	box     *sandbox.Launcher
	runBase string

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool

	wg sync.WaitGroup // supervisors and reapers
}

var _ allocator.Allocator = (*Allocator)(nil)

// session states.
const (
	stateStarting = iota
	stateRunning
)

type session struct {
	req      allocator.StartRequest
	cargoDir string
	logDir   string
	conts    []*container

	// ctx is cancelled when the session ends for any reason; supervisors and
	// in-flight starts and restarts watch it.
	ctx    context.Context
	cancel context.CancelFunc

	startDone chan struct{} // closed when Start returns

	// guarded by Allocator.mu
	state int
	ended bool
	grace time.Duration // grace of the ending that won

	wg sync.WaitGroup // this session's supervisors

	box *sandbox.Session // its network namespace (isolated only)

	recMu sync.Mutex
	live  map[*proc]string // live processes → container name, for the record file
}

type container struct {
	spec *profiles.Container
	bin  string
	env  []string

	// guarded by Allocator.mu
	proc     *proc
	up       bool
	endpoint allocator.Endpoint
}

// New makes a local allocator, first killing whatever a crashed earlier
// gateway left running from DataDir's records.
func New(cfg Config, log hclog.Logger) (*Allocator, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("local allocator: data dir is required")
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	cfg.setDefaults()
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("local allocator: data dir: %w", err)
	}
	cfg.DataDir = dir
	for _, d := range []string{cfg.DataDir, cargosDir(cfg.DataDir), recordsDir(cfg.DataDir), filepath.Join(cfg.DataDir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("local allocator: create %s: %w", d, err)
		}
	}
	a := &Allocator{
		cfg: cfg,
		log: log.Named("local"),
		http: &http.Client{
			Timeout:   2 * time.Second,
			Transport: &http.Transport{DisableKeepAlives: true},
		},
		ports:    newPortSet(),
		events:   newEventQueue(),
		sessions: map[string]*session{},
	}
	a.self, err = currentOwner()
	if err != nil {
		return nil, fmt.Errorf("local allocator: %w", err)
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("local allocator: %w", err)
	}
	a.instance = hex.EncodeToString(rnd[:])
	if cfg.Sandbox != nil {
		a.box = cfg.Sandbox
		if a.runBase, err = a.runDir(); err != nil {
			return nil, fmt.Errorf("local allocator: session directories: %w", err)
		}
		uid, _ := a.box.HostIDs()
		a.log.Info("sessions run in sandboxes", "host_uid", uid, "cgroups", a.box.Cgroups(), "egress", a.box.Egress())
	} else if a.mountAt, err = a.workspaceMount(); err != nil {
		return nil, fmt.Errorf("local allocator: %w", err)
	}
	a.cleanupLeftovers()
	return a, nil
}

func cargosDir(dataDir string) string  { return filepath.Join(dataDir, "cargos") }
func recordsDir(dataDir string) string { return filepath.Join(dataDir, "local-sessions") }

// validName reports whether s can be used as one path element.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00") && len(s) <= 200
}

// Start runs every container of req.Profile and returns once all of them
// answer /health; any failure kills the ones started and wraps
// allocator.ErrStartFailed.
func (a *Allocator) Start(ctx context.Context, req allocator.StartRequest) (*allocator.Session, error) {
	s, err := a.newSession(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", allocator.ErrStartFailed, err)
	}
	defer close(s.startDone)

	a.mu.Lock()
	switch {
	case a.closed:
		a.mu.Unlock()
		s.cancel()
		return nil, fmt.Errorf("%w: allocator is closed", allocator.ErrStartFailed)
	case a.sessions[req.SessionID] != nil:
		a.mu.Unlock()
		s.cancel()
		return nil, fmt.Errorf("%w: session %s already exists", allocator.ErrStartFailed, req.SessionID)
	}
	a.sessions[req.SessionID] = s
	a.mu.Unlock()

	startCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopAfter := context.AfterFunc(s.ctx, cancel) // Stop/Close during start
	defer stopAfter()

	a.log.Debug("starting session", "session", req.SessionID, "sandbox", req.SandboxID, "containers", len(s.conts))
	req.Report(allocator.PhaseStartingContainers)
	procs := make([]*proc, len(s.conts))
	errs := make([]error, len(s.conts))
	if err := a.startSandbox(startCtx, s); err != nil {
		for i := range errs {
			errs[i] = err
		}
	}
	var wg sync.WaitGroup
	for i, c := range s.conts {
		if errs[i] != nil {
			break
		}
		wg.Go(func() {
			procs[i], errs[i] = a.launch(startCtx, s, c, 0, true)
			if errs[i] != nil {
				cancel() // all or nothing: stop waiting for the others
			}
		})
	}
	wg.Wait()

	failure := firstFailure(errs, ctx, s.ctx)
	a.mu.Lock()
	if failure == nil && s.ended {
		failure = errors.New("session was stopped while starting")
	}
	if failure != nil {
		if a.sessions[req.SessionID] == s {
			delete(a.sessions, req.SessionID)
		}
		s.ended = true
		a.mu.Unlock()
		s.cancel()
		a.terminateAll(context.Background(), procs, a.cfg.DestroyGrace)
		s.closeSandbox()
		a.log.Warn("session start failed", "session", req.SessionID, "error", failure)
		return nil, fmt.Errorf("%w: %v", allocator.ErrStartFailed, failure)
	}
	out := &allocator.Session{ID: req.SessionID, SandboxID: req.SandboxID, Endpoints: map[string]allocator.Endpoint{}}
	for i, c := range s.conts {
		c.proc = procs[i]
		c.up = true
		c.endpoint = endpointOf(c, procs[i])
		out.Endpoints[c.spec.Name] = c.endpoint
	}
	s.state = stateRunning
	for _, c := range s.conts {
		s.wg.Add(1)
		a.wg.Add(1)
		go a.supervise(s, c)
	}
	a.mu.Unlock()
	a.log.Info("session started", "session", req.SessionID, "sandbox", req.SandboxID)
	return out, nil
}

// firstFailure picks the error that explains a failed start: a container's
// own failure rather than the cancellation it caused in the others.
func firstFailure(errs []error, callerCtx, sessCtx context.Context) error {
	var cancelled error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if errors.Is(err, context.Canceled) {
			if cancelled == nil {
				cancelled = err
			}
			continue
		}
		return err
	}
	if cancelled != nil {
		switch {
		case callerCtx.Err() != nil:
			return fmt.Errorf("start cancelled: %w", callerCtx.Err())
		case sessCtx.Err() != nil:
			return errors.New("session was stopped while starting")
		}
	}
	return cancelled
}

func (a *Allocator) newSession(req allocator.StartRequest) (*session, error) {
	if !validName(req.SessionID) {
		return nil, fmt.Errorf("invalid session id %q", req.SessionID)
	}
	if req.Profile == nil || len(req.Profile.Containers) == 0 {
		return nil, errors.New("profile has no containers")
	}
	cargoDir := req.Cargo.Locator
	if cargoDir == "" {
		if !validName(req.Cargo.ID) {
			return nil, fmt.Errorf("invalid cargo id %q", req.Cargo.ID)
		}
		cargoDir = filepath.Join(cargosDir(a.cfg.DataDir), req.Cargo.ID)
	}
	if !filepath.IsAbs(cargoDir) {
		return nil, fmt.Errorf("cargo locator %q is not an absolute directory", cargoDir)
	}
	if err := os.MkdirAll(cargoDir, 0o755); err != nil {
		return nil, fmt.Errorf("cargo directory: %w", err)
	}
	s := &session{
		req:       req,
		cargoDir:  cargoDir,
		logDir:    filepath.Join(a.cfg.DataDir, "logs", req.SessionID),
		startDone: make(chan struct{}),
		live:      map[*proc]string{},
	}
	if err := os.MkdirAll(s.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("log directory: %w", err)
	}
	seen := map[string]bool{}
	for i := range req.Profile.Containers {
		spec := &req.Profile.Containers[i]
		if !validName(spec.Name) || seen[spec.Name] {
			return nil, fmt.Errorf("invalid or duplicate container name %q", spec.Name)
		}
		seen[spec.Name] = true
		bin := a.cfg.Binaries[spec.RuntimeType]
		if bin == "" {
			return nil, fmt.Errorf("container %q: no binary configured for runtime type %q", spec.Name, spec.RuntimeType)
		}
		s.conts = append(s.conts, &container{spec: spec, bin: bin, env: a.containerEnv(req, spec, cargoDir)})
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

func endpointOf(c *container, p *proc) allocator.Endpoint {
	return allocator.Endpoint{
		Container:   c.spec.Name,
		RuntimeType: c.spec.RuntimeType,
		URL:         p.url,
	}
}

// Stop ends a session: SIGTERM to every process group, SIGKILL after the
// grace period (or at once when ctx ends). Unknown ids are not an error.
func (a *Allocator) Stop(ctx context.Context, sessionID string) error {
	a.release(ctx, sessionID, a.cfg.GracePeriod)
	return nil
}

// Destroy ends a session with a short grace and removes its logs.
func (a *Allocator) Destroy(ctx context.Context, sessionID string) error {
	a.release(ctx, sessionID, a.cfg.DestroyGrace)
	if !validName(sessionID) {
		return nil
	}
	if err := os.RemoveAll(filepath.Join(a.cfg.DataDir, "logs", sessionID)); err != nil {
		return fmt.Errorf("remove session logs: %w", err)
	}
	return nil
}

func (a *Allocator) release(ctx context.Context, sessionID string, grace time.Duration) {
	a.mu.Lock()
	s := a.sessions[sessionID]
	if s == nil {
		a.mu.Unlock()
		return
	}
	delete(a.sessions, sessionID)
	a.mu.Unlock()
	a.endSession(ctx, s, grace)
}

// endSession stops a session the gateway asked to stop; no events are sent.
func (a *Allocator) endSession(ctx context.Context, s *session, grace time.Duration) {
	a.mu.Lock()
	if s.ended {
		// Someone else (a give-up) is already ending it; just wait for it.
		a.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.ended = true
	s.grace = grace
	starting := s.state == stateStarting
	var procs []*proc
	for _, c := range s.conts {
		procs = append(procs, c.proc)
		c.up = false
	}
	a.mu.Unlock()
	s.cancel()
	if starting {
		<-s.startDone // Start rolls back what it launched
		return
	}
	a.terminateAll(ctx, procs, grace)
	s.wg.Wait() // a restart in flight kills what it launched
	s.closeSandbox()
	a.log.Info("session stopped", "session", s.req.SessionID)
}

// Resolve returns the current endpoint of a container of a live session.
func (a *Allocator) Resolve(ctx context.Context, sessionID, name string) (allocator.Endpoint, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[sessionID]
	if s == nil {
		return allocator.Endpoint{}, fmt.Errorf("session %s: %w", sessionID, allocator.ErrSessionGone)
	}
	for _, c := range s.conts {
		if c.spec.Name != name {
			continue
		}
		if s.state != stateRunning || !c.up {
			return allocator.Endpoint{}, fmt.Errorf("container %q: %w", name, allocator.ErrContainerDown)
		}
		return c.endpoint, nil
	}
	return allocator.Endpoint{}, fmt.Errorf("session %s has no container %q", sessionID, name)
}

// List reports the running sessions (not the ones still starting).
func (a *Allocator) List(ctx context.Context) ([]allocator.SessionInfo, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]allocator.SessionInfo, 0, len(a.sessions))
	for _, s := range a.sessions {
		if s.state != stateRunning {
			continue
		}
		info := allocator.SessionInfo{
			SandboxID: s.req.SandboxID,
			SessionID: s.req.SessionID,
			Owner:     s.req.Owner,
			Profile:   s.req.Profile.ID,
			CargoID:   s.req.Cargo.ID,
		}
		for _, c := range s.conts {
			if !c.up {
				info.Down = append(info.Down, c.spec.Name)
			}
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(x, y allocator.SessionInfo) int { return strings.Compare(x.SessionID, y.SessionID) })
	return out, nil
}

// CreateCargo makes <DataDir>/cargos/<id>; an existing one is kept as is.
func (a *Allocator) CreateCargo(ctx context.Context, spec allocator.CargoSpec) (allocator.Cargo, error) {
	if !validName(spec.ID) {
		return allocator.Cargo{}, fmt.Errorf("create cargo: invalid cargo id %q", spec.ID)
	}
	dir := filepath.Join(cargosDir(a.cfg.DataDir), spec.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return allocator.Cargo{}, fmt.Errorf("create cargo: %w", err)
	}
	return allocator.Cargo{ID: spec.ID, Backend: BackendLocalDir, Locator: dir}, nil
}

// DeleteCargo removes a cargo's directory. It refuses while a session uses
// the cargo, and refuses any directory outside <DataDir>/cargos.
func (a *Allocator) DeleteCargo(ctx context.Context, cargo allocator.Cargo) error {
	dir := cargo.Locator
	if dir == "" {
		if !validName(cargo.ID) {
			return fmt.Errorf("delete cargo: invalid cargo id %q", cargo.ID)
		}
		dir = filepath.Join(cargosDir(a.cfg.DataDir), cargo.ID)
	}
	dir = filepath.Clean(dir)
	root := cargosDir(a.cfg.DataDir)
	if rel, err := filepath.Rel(root, dir); err != nil || rel == "." || strings.HasPrefix(rel, "..") || strings.Contains(rel, string(filepath.Separator)) {
		return fmt.Errorf("delete cargo: %s is not a cargo directory of this allocator", dir)
	}
	a.mu.Lock()
	var users []string
	for _, s := range a.sessions {
		if (cargo.ID != "" && s.req.Cargo.ID == cargo.ID) || filepath.Clean(s.cargoDir) == dir {
			users = append(users, s.req.SessionID)
		}
	}
	a.mu.Unlock()
	if len(users) > 0 {
		slices.Sort(users)
		return fmt.Errorf("delete cargo %s (sessions %s): %w", cargo.ID, strings.Join(users, ", "), allocator.ErrCargoInUse)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete cargo: %w", err)
	}
	return nil
}

// Events delivers ContainerDown, ContainerUp and SessionGone. It is closed by
// Close.
func (a *Allocator) Events() <-chan allocator.Event { return a.events.out }

func (a *Allocator) emit(ev allocator.Event) {
	a.log.Debug("event", "kind", ev.Kind, "session", ev.SessionID, "container", ev.Container, "reason", ev.Reason)
	a.events.push(ev)
}

// Close stops every session (SIGTERM, grace, SIGKILL), waits for every
// process and watcher, and closes the events channel.
func (a *Allocator) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	all := make([]*session, 0, len(a.sessions))
	for id, s := range a.sessions {
		all = append(all, s)
		delete(a.sessions, id)
	}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() { a.endSession(context.Background(), s, a.cfg.GracePeriod) })
	}
	wg.Wait()
	a.wg.Wait()
	a.events.close()
	return nil
}
