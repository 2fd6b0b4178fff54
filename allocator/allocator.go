// Package allocator defines how the gateway gets compute for a session: start
// and stop the containers of a profile on a cargo, resolve their endpoints, and
// learn when a container dies or comes back. Implementations: local (child
// processes, the embedded default) and nomad.
package allocator

import (
	"context"
	"errors"
	"time"

	"github.com/bay-sandbox/bay/profiles"
)

// Allocator runs sessions. Every method that waits takes a context.
type Allocator interface {
	// Start runs every container of req.Profile and returns once all of them
	// answer /health. Any container failing to start rolls back the others
	// (DESIGN rule 1) and the error wraps ErrStartFailed.
	Start(ctx context.Context, req StartRequest) (*Session, error)
	// Stop releases a session gracefully (SIGTERM first). Unknown ids are not
	// an error: stop is idempotent.
	Stop(ctx context.Context, sessionID string) error
	// Destroy releases a session at once and purges what is left of it.
	Destroy(ctx context.Context, sessionID string) error
	// Resolve returns the current endpoint of one container of a live session.
	// It fails with ErrSessionGone or ErrContainerDown.
	Resolve(ctx context.Context, sessionID, container string) (Endpoint, error)
	// List reports the sessions this allocator can see running, including
	// ones started by an earlier gateway process (re-adoption, orphan GC).
	List(ctx context.Context) ([]SessionInfo, error)
	// CreateCargo makes the persistent workspace for a cargo id.
	CreateCargo(ctx context.Context, spec CargoSpec) (Cargo, error)
	// DeleteCargo removes a cargo's storage. Missing storage is not an error.
	DeleteCargo(ctx context.Context, cargo Cargo) error
	// Events delivers container and session health changes. There is one
	// reader (the gateway); implementations buffer and must not drop events.
	Events() <-chan Event
	// Close stops every watcher; sessions of the local allocator are stopped,
	// Nomad jobs are left running for re-adoption.
	Close() error
}

// Sentinel errors the gateway maps to HTTP statuses.
var (
	ErrStartFailed   = errors.New("session start failed")
	ErrSessionGone   = errors.New("session is gone")
	ErrContainerDown = errors.New("container is down")
	ErrCargoInUse    = errors.New("cargo is in use")
	// ErrUnavailable: the compute backend (e.g. the Nomad API) could not be
	// reached at all; retrying later may work.
	ErrUnavailable = errors.New("compute backend unavailable")
)

// StartRequest is everything needed to start a session.
type StartRequest struct {
	SandboxID string
	SessionID string
	Owner     string
	Profile   *profiles.Profile
	Cargo     Cargo
	// Progress, when set, is told each start phase as the start enters it
	// (PhasePlacing, PhaseStartingContainers, PhaseHealthCheck), so a
	// client watching a cold start can see what it waits for.
	Progress func(phase string)
	// Secret is the session's secret, handed to every container in
	// SecretEnv (or, on Nomad, through a Nomad variable); the runtimes
	// refuse every call but /health without it. Never log it.
	Secret string
}

// Start phases, in order.
const (
	PhasePlacing            = "placing"
	PhaseStartingContainers = "starting_containers"
	PhaseHealthCheck        = "health_check"
)

// Report tells req.Progress the phase, if anyone listens.
func (req StartRequest) Report(phase string) {
	if req.Progress != nil {
		req.Progress(phase)
	}
}

// SecretEnv is the variable the runtimes read the session secret from (the
// same name as runtimes/wire.SecretEnv; allocators import nothing of the
// runtimes).
const SecretEnv = "BAY_RUNTIME_SECRET"

// CargoSpec describes a cargo to create.
type CargoSpec struct {
	ID          string
	SizeLimitMB int
	// Ready asks CreateCargo to return only once a session can be placed on
	// the cargo at once (a pool making cargos ahead of demand). Without it
	// a backend may return earlier and make the first start wait.
	Ready bool
}

// Cargo is a created cargo as the allocator knows it. Backend is what the
// API reports ("local_dir", "nomad_host_volume"); Locator is opaque to the
// gateway (a directory, a volume id) and is persisted with the cargo.
type Cargo struct {
	ID      string
	Backend string
	Locator string
	// SizeLimitMB is the cargo's quota (0: none), enforced where the
	// allocator can (the local allocator hands it to Ship, which refuses
	// API writes past it).
	SizeLimitMB int
}

// Endpoint is where one container of a session is served.
type Endpoint struct {
	Container   string
	RuntimeType string
	// URL is the base URL of the runtime, e.g. "http://127.0.0.1:41234".
	URL string
}

// Session is a started session.
type Session struct {
	ID        string
	SandboxID string
	Endpoints map[string]Endpoint // by container name
}

// SessionInfo is a running session as List sees it.
type SessionInfo struct {
	SandboxID string
	SessionID string
	Owner     string
	Profile   string
	CargoID   string
	// Down names the containers currently not running.
	Down []string
}

// EventKind says what happened.
type EventKind int

const (
	// ContainerDown: a container of a running session died (session DEGRADED).
	ContainerDown EventKind = iota + 1
	// ContainerUp: a container that was down is healthy again; Endpoint is its
	// (possibly new) address.
	ContainerUp
	// SessionGone: the session cannot come back (restarts exhausted,
	// allocation lost, stopped outside Bay). The next call cold-starts.
	SessionGone
)

func (k EventKind) String() string {
	switch k {
	case ContainerDown:
		return "container_down"
	case ContainerUp:
		return "container_up"
	case SessionGone:
		return "session_gone"
	}
	return "unknown"
}

// Event is a health change of a session.
type Event struct {
	Kind      EventKind
	SandboxID string
	SessionID string
	Container string // empty for SessionGone
	Reason    string
	Endpoint  *Endpoint // set on ContainerUp
}

// CargoVolume is a cargo's storage as the backend lists it, for the
// reconcile loop's "is anyone still owning this" check.
type CargoVolume struct {
	Cargo     Cargo
	CreatedAt time.Time
}
