// Package gc keeps a long-running gateway tidy: it releases idle sessions
// (scale to zero), deletes expired sandboxes, removes managed cargos whose
// sandbox is gone and compute that no sandbox owns. Each task collects its
// per-item errors; one bad item never aborts a cycle.
package gc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/store"
)

// Task names (API.md §1.7).
const (
	TaskIdleSession    = "idle_session"
	TaskExpiredSandbox = "expired_sandbox"
	TaskOrphanCargo    = "orphan_cargo"
	TaskOrphanSession  = "orphan_session"
)

// AllTasks returns the task names in the order a cycle runs them (a fresh
// slice, so no caller can reorder another's).
func AllTasks() []string {
	return []string{TaskIdleSession, TaskExpiredSandbox, TaskOrphanCargo, TaskOrphanSession}
}

// ErrRunning is returned when a cycle is already running.
var ErrRunning = errors.New("a gc cycle is already running")

// Store is what GC reads and removes.
type Store interface {
	ListIdleExpired(ctx context.Context, now time.Time) ([]store.Sandbox, error)
	ListExpired(ctx context.Context, now time.Time) ([]store.Sandbox, error)
	ListOrphanCargosBefore(ctx context.Context, before time.Time) ([]store.Cargo, error)
	ListWithSession(ctx context.Context) ([]store.Sandbox, error)
	DeleteCargo(ctx context.Context, id string) error
	PurgeIdem(ctx context.Context, now time.Time) (int, error)
	PurgeTombstones(ctx context.Context, before time.Time) (int, error)
}

// tombstoneTTL is how long a deleted sandbox's id answers its owner's
// repeated DELETE with 204.
const tombstoneTTL = 24 * time.Hour

// Sessions is the sandbox service as GC uses it.
type Sessions interface {
	ReleaseIfIdle(ctx context.Context, sb store.Sandbox, now time.Time) (bool, error)
	DeleteSandbox(ctx context.Context, sb store.Sandbox) error
	SessionID(sandboxID string) string
}

// Compute is the allocator as GC uses it.
type Compute interface {
	List(ctx context.Context) ([]allocator.SessionInfo, error)
	Destroy(ctx context.Context, sessionID string) error
	DeleteCargo(ctx context.Context, c allocator.Cargo) error
}

// Config tunes the collector.
type Config struct {
	Enabled    bool
	Interval   time.Duration
	Tasks      map[string]bool // task → enabled in the background loop
	InstanceID string
	Now        func() time.Time
}

// TaskResult is one task's outcome.
type TaskResult struct {
	TaskName     string   `json:"task_name"`
	CleanedCount int      `json:"cleaned_count"`
	SkippedCount int      `json:"skipped_count"`
	Errors       []string `json:"errors"`
}

// Report is one cycle's outcome.
type Report struct {
	Results      []TaskResult `json:"results"`
	TotalCleaned int          `json:"total_cleaned"`
	TotalErrors  int          `json:"total_errors"`
	DurationMS   int64        `json:"duration_ms"`
}

// Status is what GET /v1/admin/gc/status shows.
type Status struct {
	Enabled         bool                       `json:"enabled"`
	IsRunning       bool                       `json:"is_running"`
	InstanceID      string                     `json:"instance_id"`
	IntervalSeconds int64                      `json:"interval_seconds"`
	Tasks           map[string]map[string]bool `json:"tasks"`
	LastRunAt       *string                    `json:"last_run_at"`
}

// Collector runs GC cycles.
type Collector struct {
	cfg      Config
	store    Store
	sessions Sessions
	compute  Compute
	log      hclog.Logger

	running sync.Mutex
	mu      sync.Mutex
	busy    bool
	lastRun time.Time
}

// New returns a Collector.
func New(cfg Config, st Store, ss Sessions, c Compute, log hclog.Logger) *Collector {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tasks == nil {
		cfg.Tasks = map[string]bool{}
		for _, t := range AllTasks() {
			cfg.Tasks[t] = true
		}
	}
	return &Collector{cfg: cfg, store: st, sessions: ss, compute: c, log: log.Named("gc")}
}

// Run runs a cycle at start-up and then every interval until ctx ends.
func (g *Collector) Run(ctx context.Context) {
	if !g.cfg.Enabled {
		return
	}
	var tasks []string
	for _, t := range AllTasks() {
		if g.cfg.Tasks[t] {
			tasks = append(tasks, t)
		}
	}
	tick := time.NewTicker(g.cfg.Interval)
	defer tick.Stop()
	for {
		if r, err := g.RunOnce(ctx, tasks); err == nil && (r.TotalCleaned > 0 || r.TotalErrors > 0) {
			g.log.Info("gc cycle", "cleaned", r.TotalCleaned, "errors", r.TotalErrors, "duration_ms", r.DurationMS)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Validate checks task names.
func Validate(tasks []string) error {
	for _, t := range tasks {
		known := false
		for _, a := range AllTasks() {
			known = known || a == t
		}
		if !known {
			return fmt.Errorf("unknown gc task %q", t)
		}
	}
	return nil
}

// RunOnce runs the named tasks (all when empty), in the canonical order.
func (g *Collector) RunOnce(ctx context.Context, tasks []string) (Report, error) {
	if err := Validate(tasks); err != nil {
		return Report{}, err
	}
	if !g.running.TryLock() {
		return Report{}, ErrRunning
	}
	defer g.running.Unlock()
	g.setBusy(true)
	defer g.setBusy(false)

	if len(tasks) == 0 {
		tasks = AllTasks()
	}
	want := map[string]bool{}
	for _, t := range tasks {
		want[t] = true
	}
	start := time.Now()
	now := g.cfg.Now().UTC()
	rep := Report{Results: []TaskResult{}}
	for _, t := range AllTasks() {
		if !want[t] {
			continue
		}
		var r TaskResult
		switch t {
		case TaskIdleSession:
			r = g.idleSessions(ctx, now)
		case TaskExpiredSandbox:
			r = g.expiredSandboxes(ctx, now)
		case TaskOrphanCargo:
			r = g.orphanCargos(ctx, now)
		case TaskOrphanSession:
			r = g.orphanSessions(ctx)
		}
		r.TaskName = t
		if r.Errors == nil {
			r.Errors = []string{}
		}
		rep.Results = append(rep.Results, r)
		rep.TotalCleaned += r.CleanedCount
		rep.TotalErrors += len(r.Errors)
	}
	if _, err := g.store.PurgeIdem(ctx, now); err != nil {
		g.log.Warn("purge idempotency keys", "error", err)
	}
	if _, err := g.store.PurgeTombstones(ctx, now.Add(-tombstoneTTL)); err != nil {
		g.log.Warn("purge sandbox tombstones", "error", err)
	}
	rep.DurationMS = time.Since(start).Milliseconds()
	g.mu.Lock()
	g.lastRun = now
	g.mu.Unlock()
	return rep, nil
}

func (g *Collector) setBusy(b bool) {
	g.mu.Lock()
	g.busy = b
	g.mu.Unlock()
}

// Status reports the collector's configuration and state.
func (g *Collector) Status() Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := Status{
		Enabled: g.cfg.Enabled, IsRunning: g.busy, InstanceID: g.cfg.InstanceID,
		IntervalSeconds: int64(g.cfg.Interval.Seconds()), Tasks: map[string]map[string]bool{},
	}
	for _, t := range AllTasks() {
		st.Tasks[t] = map[string]bool{"enabled": g.cfg.Tasks[t]}
	}
	if !g.lastRun.IsZero() {
		s := g.lastRun.Format("2006-01-02T15:04:05.000Z")
		st.LastRunAt = &s
	}
	return st
}

func (g *Collector) idleSessions(ctx context.Context, now time.Time) TaskResult {
	var r TaskResult
	sbs, err := g.store.ListIdleExpired(ctx, now)
	if err != nil {
		r.Errors = append(r.Errors, fmt.Sprintf("list idle sandboxes: %v", err))
		return r
	}
	for _, sb := range sbs {
		released, err := g.sessions.ReleaseIfIdle(ctx, sb, now)
		switch {
		case err != nil:
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", sb.ID, err))
		case released:
			r.CleanedCount++
			g.log.Info("idle session stopped", "sandbox_id", sb.ID, "session_id", sb.SessionID)
		default:
			r.SkippedCount++
		}
	}
	return r
}

func (g *Collector) expiredSandboxes(ctx context.Context, now time.Time) TaskResult {
	var r TaskResult
	sbs, err := g.store.ListExpired(ctx, now)
	if err != nil {
		r.Errors = append(r.Errors, fmt.Sprintf("list expired sandboxes: %v", err))
		return r
	}
	for _, sb := range sbs {
		if err := g.sessions.DeleteSandbox(ctx, sb); err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", sb.ID, err))
			continue
		}
		r.CleanedCount++
	}
	return r
}

// orphanGrace keeps GC away from a managed cargo whose sandbox row is being
// written right now (the cargo is recorded first).
const orphanGrace = 5 * time.Minute

func (g *Collector) orphanCargos(ctx context.Context, now time.Time) TaskResult {
	var r TaskResult
	cgs, err := g.store.ListOrphanCargosBefore(ctx, now.Add(-orphanGrace))
	if err != nil {
		r.Errors = append(r.Errors, fmt.Sprintf("list orphan cargos: %v", err))
		return r
	}
	for _, cg := range cgs {
		err := g.compute.DeleteCargo(ctx, allocator.Cargo{ID: cg.ID, Backend: cg.Backend, Locator: cg.Locator})
		if errors.Is(err, allocator.ErrCargoInUse) {
			r.SkippedCount++
			continue
		}
		if err == nil {
			err = g.store.DeleteCargo(ctx, cg.ID)
		}
		if err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", cg.ID, err))
			continue
		}
		r.CleanedCount++
	}
	return r
}

func (g *Collector) orphanSessions(ctx context.Context) TaskResult {
	var r TaskResult
	running, err := g.compute.List(ctx)
	if err != nil {
		r.Errors = append(r.Errors, fmt.Sprintf("list sessions: %v", err))
		return r
	}
	if len(running) == 0 {
		return r
	}
	owned := map[string]bool{}
	sbs, err := g.store.ListWithSession(ctx)
	if err != nil {
		r.Errors = append(r.Errors, fmt.Sprintf("list sandboxes: %v", err))
		return r
	}
	for _, sb := range sbs {
		owned[sb.SessionID] = true
	}
	for _, s := range running {
		if owned[s.SessionID] || g.sessions.SessionID(s.SandboxID) == s.SessionID {
			r.SkippedCount++
			continue
		}
		if err := g.compute.Destroy(ctx, s.SessionID); err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", s.SessionID, err))
			continue
		}
		r.CleanedCount++
	}
	return r
}
