// Package reconcile makes what runs match what the store says should: it
// carries out every recorded stop and delete until done (they survive
// Nomad outages and gateway restarts because they are recorded first),
// stops sessions no sandbox owns, and deletes cargo volumes no stored cargo
// owns. Nothing an owner still has is touched: a session is stopped only
// when its sandbox is gone or records another session, a volume deleted
// only when no cargo row names it and it is older than a grace period (a
// cargo being created has its volume before its row).
//
// One loop per deployment: with several gateways on one store only the
// leader runs Run.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/store"
)

// Store is what the loop reads.
type Store interface {
	ListIntents(ctx context.Context) ([]store.Sandbox, error)
	GetSandbox(ctx context.Context, owner, id string) (store.Sandbox, error)
	GetCargo(ctx context.Context, owner, id string) (store.Cargo, error)
}

// Sessions is the sandbox service: it carries out intents under the
// sandbox's lock and knows the sessions being started right now.
type Sessions interface {
	CarryOut(ctx context.Context, sb store.Sandbox) error
	SessionID(sandboxID string) string
}

// Compute is the allocator as the loop uses it.
type Compute interface {
	List(ctx context.Context) ([]allocator.SessionInfo, error)
	Stop(ctx context.Context, sessionID string) error
	DeleteCargo(ctx context.Context, c allocator.Cargo) error
}

// VolumeLister is implemented by allocators whose cargo storage can be
// listed (Nomad's host volumes); without it the volume pass is skipped.
type VolumeLister interface {
	ListCargoVolumes(ctx context.Context) ([]allocator.CargoVolume, error)
}

// Config tunes the loop.
type Config struct {
	// Interval between passes; default 15 s.
	Interval time.Duration
	// ItemTimeout bounds one intent, stop or delete; default 2 min.
	ItemTimeout time.Duration
	// VolumeGrace is how old an unowned volume must be before it is
	// deleted; default 10 min.
	VolumeGrace time.Duration
	Now         func() time.Time
}

// Report is one pass's outcome.
type Report struct {
	Intents, Sessions, Volumes int // carried out / stopped / deleted
	Errors                     []string
}

// Loop is the reconcile loop.
type Loop struct {
	cfg      Config
	store    Store
	sessions Sessions
	compute  Compute
	log      hclog.Logger
}

// New returns a loop; Run runs it.
func New(cfg Config, st Store, ss Sessions, c Compute, log hclog.Logger) *Loop {
	if cfg.Interval <= 0 {
		cfg.Interval = 15 * time.Second
	}
	if cfg.ItemTimeout <= 0 {
		cfg.ItemTimeout = 2 * time.Minute
	}
	if cfg.VolumeGrace <= 0 {
		cfg.VolumeGrace = 10 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Loop{cfg: cfg, store: st, sessions: ss, compute: c, log: log.Named("reconcile")}
}

// Run passes every Interval until ctx ends.
func (l *Loop) Run(ctx context.Context) {
	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
	for {
		r := l.Once(ctx)
		if r.Intents+r.Sessions+r.Volumes > 0 || len(r.Errors) > 0 {
			l.log.Info("reconciled", "intents", r.Intents, "sessions_stopped", r.Sessions, "volumes_deleted", r.Volumes, "errors", len(r.Errors))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once runs one pass: intents, then sessions, then volumes. An error on one
// item is recorded and the pass goes on.
func (l *Loop) Once(ctx context.Context) Report {
	var r Report
	fail := func(what string, err error) {
		if ctx.Err() == nil {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", what, err))
			l.log.Warn("reconcile", "item", what, "error", err)
		}
	}
	item := func(fn func(context.Context) error) error {
		ictx, cancel := context.WithTimeout(ctx, l.cfg.ItemTimeout)
		defer cancel()
		return fn(ictx)
	}

	pending, err := l.store.ListIntents(ctx)
	if err != nil {
		fail("list intents", err)
	}
	for _, sb := range pending {
		if err := item(func(ctx context.Context) error { return l.sessions.CarryOut(ctx, sb) }); err != nil {
			fail(sb.Intent+" "+sb.ID, err)
			continue
		}
		r.Intents++
	}

	running, err := l.compute.List(ctx)
	if err != nil {
		fail("list sessions", err)
	}
	for _, s := range running {
		owned, err := l.sessionOwned(ctx, s)
		if err != nil {
			fail("check session "+s.SessionID, err)
			continue
		}
		if owned {
			continue
		}
		l.log.Info("stopping a session no sandbox owns", "sandbox_id", s.SandboxID, "session_id", s.SessionID)
		if err := item(func(ctx context.Context) error { return l.compute.Stop(ctx, s.SessionID) }); err != nil {
			fail("stop session "+s.SessionID, err)
			continue
		}
		r.Sessions++
	}

	vl, ok := l.compute.(VolumeLister)
	if !ok {
		return r
	}
	vols, err := vl.ListCargoVolumes(ctx)
	if err != nil {
		fail("list cargo volumes", err)
		return r
	}
	cutoff := l.cfg.Now().Add(-l.cfg.VolumeGrace)
	for _, v := range vols {
		if !v.CreatedAt.Before(cutoff) {
			continue
		}
		_, err := l.store.GetCargo(ctx, "", v.Cargo.ID)
		if err == nil {
			continue
		}
		if !errors.Is(err, store.ErrNotFound) {
			fail("check cargo "+v.Cargo.ID, err)
			continue
		}
		l.log.Info("deleting a cargo volume no cargo owns", "cargo_id", v.Cargo.ID)
		if err := item(func(ctx context.Context) error { return l.compute.DeleteCargo(ctx, v.Cargo) }); err != nil {
			fail("delete volume of cargo "+v.Cargo.ID, err)
			continue
		}
		r.Volumes++
	}
	return r
}

// sessionOwned says whether a running session belongs to a sandbox: its
// sandbox exists and records it (or is starting it right now). A sandbox
// being deleted still owns its session: the delete intent stops it.
func (l *Loop) sessionOwned(ctx context.Context, s allocator.SessionInfo) (bool, error) {
	sb, err := l.store.GetSandbox(ctx, "", s.SandboxID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return sb.SessionID == s.SessionID || l.sessions.SessionID(sb.ID) == s.SessionID, nil
}
