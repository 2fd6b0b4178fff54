// Package service is the sandbox service behind the gateway's handlers: it
// ensures a session runs for a sandbox (single-flight cold start), routes a
// capability to its container's endpoint, follows the allocator's health
// events (DEGRADED and back), and computes a sandbox's status from facts.
package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/gateway/apierr"
	"github.com/bay-sandbox/bay/gateway/sessionsecret"
	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/store"
)

// Statuses a sandbox can be in (API.md §1.2).
const (
	StatusIdle     = "idle"
	StatusStarting = "starting"
	StatusReady    = "ready"
	StatusDegraded = "degraded"
	StatusFailed   = "failed"
	StatusExpired  = "expired"
	// StatusStopping and StatusDeleting: a stop or delete is recorded and
	// not finished yet (the backend may be unreachable); the reconcile loop
	// carries it out.
	StatusStopping = "stopping"
	StatusDeleting = "deleting"
)

// Store is what the service needs of the state store.
type Store interface {
	GetSandbox(ctx context.Context, owner, id string) (store.Sandbox, error)
	GetCargo(ctx context.Context, owner, id string) (store.Cargo, error)
	SetSession(ctx context.Context, id, sessionID string) error
	SetIdleExpiry(ctx context.Context, id string, t *time.Time) error
	ListWithSession(ctx context.Context) ([]store.Sandbox, error)
	DeleteSandbox(ctx context.Context, id string) error
	DeleteCargo(ctx context.Context, id string) error
	DeleteExecutions(ctx context.Context, sandboxID string) error
	CreateCargo(ctx context.Context, c store.Cargo) error
	TouchCargo(ctx context.Context, id string, t time.Time) error
	Leases
	SetIntent(ctx context.Context, id, intent string, at time.Time) error
	ClearIntent(ctx context.Context, id, intent string) error
	ClaimPooledCargo(ctx context.Context, backend, owner, sandboxID string, now time.Time) (store.Cargo, bool, error)
}

// Profiles looks profiles up by id.
type Profiles interface {
	Get(id string) (*profiles.Profile, bool)
}

// Config tunes the service.
type Config struct {
	// StartTimeout bounds one session start.
	StartTimeout time.Duration
	// StartWait bounds how long a request waits for a cold start before it
	// gets 503 session_not_ready (the start goes on in the background).
	StartWait time.Duration
	// IdlePersistEvery limits how often a capability call writes the idle
	// deadline to the store; the in-memory deadline is always exact.
	IdlePersistEvery time.Duration
	// MaxSessions caps the sessions running at once (0 = unlimited); a cold
	// start beyond it is refused with 429 quota_exceeded.
	MaxSessions int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Shared: other gateways use the same store and allocator, so a
	// session this gateway has not met may run elsewhere (see cluster.go).
	Shared bool
	// Holder names this gateway in the store's leases; default random.
	Holder string
	// LeaseTTL is the cold-start lease's lifetime without renewal (a
	// dead gateway's start is taken over after it). Default 15s.
	LeaseTTL time.Duration
	// PoolBackend, when set, makes a new sandbox's managed cargo come from
	// the cargo pool of that backend first (store.ClaimPooledCargo);
	// OnPoolClaim is told after each claim (the pool refills).
	PoolBackend string
	OnPoolClaim func()
	// QuickIntent bounds how long Stop and Delete carry out what they
	// recorded before answering with the pending state; default 20 s.
	QuickIntent time.Duration
	// Secrets makes each session's runtime secret; nil means a key that
	// lives only in this process (sessions it started cannot be called
	// after a restart).
	Secrets *sessionsecret.Keyring
}

// phase of a session as the gateway sees it.
type phase int

const (
	phaseStarting phase = iota
	phaseRunning
	phaseFailed
)

// live is the gateway's view of one sandbox's current session.
type live struct {
	sessionID string
	phase     phase
	err       error         // start error when phaseFailed
	progress  string        // the allocator's start phase while phaseStarting
	done      chan struct{} // closed when the start finished
	session   *allocator.Session
	down      map[string]string // container → reason
}

// Manager is the sandbox service.
type Manager struct {
	cfg      Config
	store    Store
	alloc    allocator.Allocator
	profiles Profiles
	log      hclog.Logger

	mu       sync.Mutex
	sessions map[string]*live // by sandbox id
	idle     map[string]idleMark
	locks    map[string]*lockRef
	inflight map[string]int // calls using a sandbox's session right now
	starts   startStats

	wg sync.WaitGroup
}

// startStats counts session starts for the metrics endpoint.
type startStats struct {
	ok, failed int64
	seconds    float64 // total duration of successful starts
}

// Stats is a snapshot of the sessions the gateway knows.
type Stats struct {
	Starting, Running, Degraded int
	StartsOK, StartsFailed      int64
	StartSeconds                float64
}

// Stats returns a snapshot for metrics.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Stats{StartsOK: m.starts.ok, StartsFailed: m.starts.failed, StartSeconds: m.starts.seconds}
	for _, l := range m.sessions {
		switch {
		case l.phase == phaseStarting:
			st.Starting++
		case l.phase == phaseRunning && len(l.down) > 0:
			st.Degraded++
		case l.phase == phaseRunning:
			st.Running++
		}
	}
	return st
}

type idleMark struct {
	deadline  time.Time
	persisted time.Time // deadline last written to the store
}

// New returns a Manager; call Run to follow allocator events.
func New(cfg Config, st Store, alloc allocator.Allocator, ps Profiles, log hclog.Logger) *Manager {
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 2 * time.Minute
	}
	if cfg.StartWait <= 0 {
		cfg.StartWait = cfg.StartTimeout
	}
	if cfg.IdlePersistEvery <= 0 {
		cfg.IdlePersistEvery = time.Second
	}
	if cfg.QuickIntent <= 0 {
		cfg.QuickIntent = 20 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Holder == "" {
		cfg.Holder = NewID("gw-")
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 15 * time.Second
	}
	if cfg.Secrets == nil {
		cfg.Secrets = sessionsecret.Random()
	}
	return &Manager{
		cfg: cfg, store: st, alloc: alloc, profiles: ps, log: log.Named("service"),
		sessions: map[string]*live{}, idle: map[string]idleMark{}, locks: map[string]*lockRef{},
		inflight: map[string]int{},
	}
}

// RuntimeSecret is the secret the runtimes of session sessionID require;
// runtime clients send it (wire.WithSecret). Never log or return it.
func (m *Manager) RuntimeSecret(sessionID string) string { return m.cfg.Secrets.For(sessionID) }

// Now returns the service clock's time.
func (m *Manager) Now() time.Time { return m.cfg.Now().UTC() }

// NewID returns prefix + 12 random hex digits.
func NewID(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return prefix + hex.EncodeToString(b[:])
}

// Profile returns the profile of sb or a validation error.
func (m *Manager) Profile(sb store.Sandbox) (*profiles.Profile, error) {
	p, ok := m.profiles.Get(sb.ProfileID)
	if !ok {
		return nil, apierr.New(http.StatusServiceUnavailable, apierr.CodeInternal,
			"profile %q of sandbox %s is no longer configured", sb.ProfileID, sb.ID)
	}
	return p, nil
}

// Status computes the status of sb now.
func (m *Manager) Status(sb store.Sandbox) string {
	switch sb.Intent {
	case store.IntentDelete:
		return StatusDeleting
	case store.IntentStop:
		return StatusStopping
	}
	if sb.ExpiresAt != nil && !m.Now().Before(*sb.ExpiresAt) {
		return StatusExpired
	}
	l := m.cached(sb)
	m.mu.Lock()
	defer m.mu.Unlock()
	if l == nil {
		return StatusIdle
	}
	switch l.phase {
	case phaseStarting:
		return StatusStarting
	case phaseFailed:
		return StatusFailed
	}
	if len(l.down) > 0 {
		return StatusDegraded
	}
	return StatusReady
}

// StartPhase says what sb's cold start waits for (allocator.Phase*), or ""
// when no start is under way. A start the allocator has not reported on yet
// is placing.
func (m *Manager) StartPhase(sandboxID string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.sessions[sandboxID]
	if l == nil || l.phase != phaseStarting {
		return ""
	}
	if l.progress == "" {
		return allocator.PhasePlacing
	}
	return l.progress
}

// SessionID returns the id of sb's current session, "" when none.
func (m *Manager) SessionID(sandboxID string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.sessions[sandboxID]; l != nil && l.phase != phaseFailed {
		return l.sessionID
	}
	return ""
}

// IdleDeadline returns the in-memory idle deadline of sb, if any.
func (m *Manager) IdleDeadline(sandboxID string) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	im, ok := m.idle[sandboxID]
	return im.deadline, ok
}

// activeLocked counts sessions starting or running; m.mu must be held.
func (m *Manager) activeLocked() int {
	n := 0
	for _, l := range m.sessions {
		if l.phase != phaseFailed {
			n++
		}
	}
	return n
}

// Warmup starts sb's session in the background (right after create).
func (m *Manager) Warmup(sb store.Sandbox) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StartTimeout)
		defer cancel()
		if _, err := m.ensure(ctx, sb); err != nil {
			m.log.Debug("warm-up failed", "sandbox_id", sb.ID, "error", err)
		}
	}()
}

// Route returns the endpoint of the container serving capability for sb,
// starting a session first when none runs.
func (m *Manager) Route(ctx context.Context, sb store.Sandbox, capability string) (allocator.Endpoint, string, error) {
	if m.Status(sb) == StatusExpired {
		return allocator.Endpoint{}, "", apierr.New(http.StatusConflict, apierr.CodeExpired, "sandbox %s has expired", sb.ID)
	}
	p, err := m.Profile(sb)
	if err != nil {
		return allocator.Endpoint{}, "", err
	}
	c, ok := p.Route(capability)
	if !ok {
		return allocator.Endpoint{}, "", CapabilityError(p, capability)
	}
	// Touch before ensuring too: an idle reap deciding concurrently either
	// sees the fresh deadline, or released first and ensure starts anew.
	m.Touch(ctx, sb, p)
	for attempt := 0; ; attempt++ {
		l, err := m.ensure(ctx, sb)
		if err != nil {
			return allocator.Endpoint{}, "", err
		}
		// Touch before resolving, so an idle reap deciding concurrently
		// sees the fresh deadline and keeps the session.
		m.Touch(ctx, sb, p)
		ep, err := m.alloc.Resolve(ctx, l.sessionID, c.Name)
		switch {
		case err == nil:
			return ep, l.sessionID, nil
		case errors.Is(err, allocator.ErrContainerDown):
			retry := m.retryAfter(p)
			e := apierr.NotReady(sb.ID, retry, fmt.Sprintf("container %q of sandbox %s is down and being restarted", c.Name, sb.ID))
			e.Details["container"] = c.Name
			e.Details["capability"] = capability
			return allocator.Endpoint{}, "", e
		case errors.Is(err, allocator.ErrSessionGone) && attempt == 0:
			m.forget(ctx, sb.ID, l.sessionID)
			continue
		default:
			return allocator.Endpoint{}, "", fmt.Errorf("resolve %s: %w", c.Name, err)
		}
	}
}

// Acquire is Route for a call about to use the endpoint: until release is
// called the idle reaper leaves the session alone, so a call running longer
// than the idle timeout is not cut off. release also refreshes the idle
// deadline (it counts from the end of the call); it is safe to call twice.
func (m *Manager) Acquire(ctx context.Context, sb store.Sandbox, capability string) (allocator.Endpoint, string, func(), error) {
	m.mu.Lock()
	m.inflight[sb.ID]++
	m.mu.Unlock()
	var once sync.Once
	release := func() {
		once.Do(func() {
			m.mu.Lock()
			if m.inflight[sb.ID]--; m.inflight[sb.ID] <= 0 {
				delete(m.inflight, sb.ID)
			}
			m.mu.Unlock()
		})
	}
	ep, sessionID, err := m.Route(ctx, sb, capability)
	if err != nil {
		release()
		return allocator.Endpoint{}, "", func() {}, err
	}
	p, _ := m.Profile(sb)
	stopKeepalive := m.keepalive(sb, p)
	return ep, sessionID, func() {
		stopKeepalive()
		release()
		if p != nil && m.SessionID(sb.ID) == sessionID {
			m.Touch(context.WithoutCancel(ctx), sb, p)
		}
	}, nil
}

// CapabilityError is the 400 for a capability the profile does not offer.
func CapabilityError(p *profiles.Profile, capability string) error {
	return apierr.New(http.StatusBadRequest, apierr.CodeCapability,
		"profile %q does not offer capability %q", p.ID, capability).
		With(map[string]any{"capability": capability, "available": p.Capabilities()})
}

func (m *Manager) retryAfter(p *profiles.Profile) int64 {
	ms := p.Restart.Delay.Milliseconds() + 500
	if ms < 1000 {
		ms = 1000
	}
	return ms
}

// Touch pushes sb's idle deadline to now + the profile's idle timeout.
func (m *Manager) Touch(ctx context.Context, sb store.Sandbox, p *profiles.Profile) time.Time {
	deadline := m.Now().Add(p.IdleTimeout)
	m.mu.Lock()
	im := m.idle[sb.ID]
	im.deadline = deadline
	persist := deadline.Sub(im.persisted) >= m.cfg.IdlePersistEvery
	if persist {
		im.persisted = deadline
	}
	m.idle[sb.ID] = im
	m.mu.Unlock()
	if persist {
		if err := m.store.SetIdleExpiry(ctx, sb.ID, &deadline); err != nil {
			m.log.Warn("persist idle deadline", "sandbox_id", sb.ID, "error", err)
		}
	}
	return deadline
}

// ensure returns sb's running session, starting one (single-flight) if needed.
func (m *Manager) ensure(ctx context.Context, sb store.Sandbox) (*live, error) {
	if err := m.settleIntent(ctx, sb); err != nil {
		return nil, err
	}
	m.mu.Lock()
	l := m.sessions[sb.ID]
	if l == nil || l.phase == phaseFailed {
		if m.cfg.MaxSessions > 0 && m.activeLocked() >= m.cfg.MaxSessions {
			m.mu.Unlock()
			return nil, apierr.New(http.StatusTooManyRequests, apierr.CodeQuota,
				"the gateway already runs %d sessions (limit %d)", m.cfg.MaxSessions, m.cfg.MaxSessions)
		}
		l = &live{sessionID: NewID("sess-"), phase: phaseStarting, done: make(chan struct{}), down: map[string]string{}}
		m.sessions[sb.ID] = l
		m.wg.Add(1)
		go m.start(sb, l)
	}
	m.mu.Unlock()

	select {
	case <-l.done:
	default:
		wait := time.NewTimer(m.cfg.StartWait)
		defer wait.Stop()
		select {
		case <-l.done:
		case <-wait.C:
			return nil, apierr.NotReady(sb.ID, 1000, fmt.Sprintf("sandbox %s is still starting", sb.ID))
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, apierr.NotReady(sb.ID, 1000, fmt.Sprintf("sandbox %s is still starting", sb.ID))
			}
			return nil, ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if l.phase == phaseFailed {
		return nil, l.err
	}
	return l, nil
}

// start runs one session start; it never uses a request's context, so a
// client giving up does not abort a start others may be waiting on.
func (m *Manager) start(sb store.Sandbox, l *live) {
	defer m.wg.Done()
	defer close(l.done)
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.StartTimeout)
	defer cancel()

	unlock := m.lock(sb.ID)
	defer unlock()

	adopted, releaseLease, err := m.claimStart(ctx, sb)
	if err == nil && adopted != nil {
		m.mu.Lock()
		defer m.mu.Unlock()
		l.sessionID, l.session, l.down = adopted.sessionID, adopted.session, adopted.down
		if m.sessions[sb.ID] != l {
			// Stopped while we waited: it was asked to stop, stop it.
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				_ = m.alloc.Destroy(context.Background(), adopted.sessionID)
			}()
			l.phase = phaseFailed
			l.err = apierr.NotReady(sb.ID, 1000, "sandbox was stopped while starting")
			return
		}
		l.phase = phaseRunning
		return
	}
	if err != nil {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.starts.failed++
		l.phase = phaseFailed
		l.err = err
		return
	}
	defer releaseLease()

	began := time.Now()
	sess, err := m.startSession(ctx, sb, l.sessionID, func(ph string) {
		m.mu.Lock()
		l.progress = ph
		m.mu.Unlock()
	})
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.starts.failed++
	} else {
		m.starts.ok++
		m.starts.seconds += time.Since(began).Seconds()
	}
	if err != nil {
		l.phase = phaseFailed
		l.err = err
		m.log.Warn("session start failed", "sandbox_id", sb.ID, "session_id", l.sessionID, "error", err)
		return
	}
	if m.sessions[sb.ID] != l {
		// The sandbox was stopped or deleted while it started: release it.
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			_ = m.alloc.Destroy(context.Background(), sess.ID)
		}()
		l.phase = phaseFailed
		l.err = apierr.NotReady(sb.ID, 1000, "sandbox was stopped while starting")
		return
	}
	l.session = sess
	l.phase = phaseRunning
	m.log.Info("session running", "sandbox_id", sb.ID, "session_id", sess.ID)
}

func (m *Manager) startSession(ctx context.Context, sb store.Sandbox, sessionID string, progress func(phase string)) (*allocator.Session, error) {
	p, err := m.Profile(sb)
	if err != nil {
		return nil, err
	}
	cargo, err := m.store.GetCargo(ctx, "", sb.CargoID)
	if err != nil {
		return nil, fmt.Errorf("load cargo %s: %w", sb.CargoID, err)
	}
	if err := m.store.SetSession(ctx, sb.ID, sessionID); err != nil {
		return nil, fmt.Errorf("record session: %w", err)
	}
	// A cargo is "accessed" when compute is put on it; per-call touches
	// would add a write to every request for no reader's benefit.
	if err := m.store.TouchCargo(ctx, cargo.ID, m.Now()); err != nil {
		m.log.Warn("touch cargo", "cargo_id", cargo.ID, "error", err)
	}
	sess, err := m.alloc.Start(ctx, allocator.StartRequest{
		SandboxID: sb.ID,
		SessionID: sessionID,
		Owner:     sb.Owner,
		Profile:   p,
		Cargo:     allocator.Cargo{ID: cargo.ID, Backend: cargo.Backend, Locator: cargo.Locator, SizeLimitMB: cargo.SizeLimitMB},
		Progress:  progress,
		Secret:    m.RuntimeSecret(sessionID),
	})
	if err != nil {
		_ = m.store.SetSession(context.Background(), sb.ID, "")
		return nil, fmt.Errorf("start session: %w", err)
	}
	if !sb.Warm {
		m.Touch(ctx, sb, p)
	}
	return sess, nil
}

// ReleaseIfIdle stops sb's session when its idle deadline has passed. The
// check and the hand-over happen under one lock, so a capability call either
// refreshed the deadline first (the session stays) or starts a new session.
func (m *Manager) ReleaseIfIdle(ctx context.Context, sb store.Sandbox, now time.Time) (bool, error) {
	return m.releaseIf(ctx, sb, false, func(l *live) bool {
		if (l != nil && l.phase == phaseStarting) || m.inflight[sb.ID] > 0 {
			return false
		}
		// The later of this gateway's deadline and the stored one: calls
		// served by other gateways only reach the store.
		deadline := m.idle[sb.ID].deadline
		if sb.IdleExpiresAt != nil && sb.IdleExpiresAt.After(deadline) {
			deadline = *sb.IdleExpiresAt
		}
		return !deadline.IsZero() && !now.Before(deadline)
	})
}

// Destroy releases sb's session at once.
func (m *Manager) Destroy(ctx context.Context, sb store.Sandbox) error {
	return m.release(ctx, sb, true)
}

func (m *Manager) release(ctx context.Context, sb store.Sandbox, destroy bool) error {
	_, err := m.releaseIf(ctx, sb, destroy, nil)
	return err
}

// releaseIf releases the session when cond (checked under the state lock,
// atomically with the hand-over) holds; nil cond always holds.
// With a shared store, a session this gateway never met (started on another
// gateway, named by sb's row) is released through the allocator all the same.
func (m *Manager) releaseIf(ctx context.Context, sb store.Sandbox, destroy bool, cond func(l *live) bool) (bool, error) {
	sandboxID := sb.ID
	m.mu.Lock()
	l := m.sessions[sandboxID]
	if cond != nil && !cond(l) {
		m.mu.Unlock()
		return false, nil
	}
	delete(m.sessions, sandboxID)
	delete(m.idle, sandboxID)
	m.mu.Unlock()
	if l != nil {
		// Wait for an in-flight start so its compute is released too.
		select {
		case <-l.done:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	unlock := m.lock(sandboxID)
	defer unlock()
	sessionID := ""
	switch {
	case l != nil && l.session != nil:
		sessionID = l.session.ID
	case l == nil:
		// Not in memory: a session another gateway started (shared
		// store), or one whose release failed before (an outage) or that
		// a restart forgot: sb's row names it, and it is released by that.
		sessionID = sb.SessionID
	}
	if sessionID != "" {
		var err error
		if destroy {
			err = m.alloc.Destroy(ctx, sessionID)
		} else {
			err = m.alloc.Stop(ctx, sessionID)
		}
		if err != nil {
			return true, fmt.Errorf("release session %s: %w", sessionID, err)
		}
	}
	if err := m.store.SetSession(ctx, sandboxID, ""); err != nil && !errors.Is(err, store.ErrNotFound) {
		return true, fmt.Errorf("clear session: %w", err)
	}
	if err := m.store.SetIdleExpiry(ctx, sandboxID, nil); err != nil && !errors.Is(err, store.ErrNotFound) {
		return true, fmt.Errorf("clear idle deadline: %w", err)
	}
	return true, nil
}

// forget drops a session the allocator reported gone.
func (m *Manager) forget(ctx context.Context, sandboxID, sessionID string) {
	m.mu.Lock()
	l := m.sessions[sandboxID]
	if l == nil || l.sessionID != sessionID {
		m.mu.Unlock()
		return
	}
	delete(m.sessions, sandboxID)
	m.mu.Unlock()
	if err := m.store.SetSession(ctx, sandboxID, ""); err != nil {
		m.log.Warn("clear gone session", "sandbox_id", sandboxID, "error", err)
	}
}

// ContainerState is one container of a running session.
type ContainerState struct {
	Name        string
	RuntimeType string
	Status      string // running | failed | starting
	Endpoint    string // "" when down
}

// Containers describes sb's session containers, or nil when no session runs.
func (m *Manager) Containers(ctx context.Context, sb store.Sandbox) []ContainerState {
	p, err := m.Profile(sb)
	if err != nil {
		return nil
	}
	l := m.cached(sb)
	m.mu.Lock()
	if l == nil || l.phase == phaseFailed {
		m.mu.Unlock()
		return nil
	}
	ph := l.phase
	sessID := l.sessionID
	down := map[string]bool{}
	for c := range l.down {
		down[c] = true
	}
	m.mu.Unlock()
	out := make([]ContainerState, 0, len(p.Containers))
	for _, c := range p.Containers {
		cs := ContainerState{Name: c.Name, RuntimeType: c.RuntimeType, Status: "running"}
		switch {
		case ph == phaseStarting:
			cs.Status = "starting"
		case down[c.Name]:
			cs.Status = "failed"
		default:
			if ep, err := m.alloc.Resolve(ctx, sessID, c.Name); err == nil {
				cs.Endpoint = ep.URL
			} else {
				cs.Status = "failed"
			}
		}
		out = append(out, cs)
	}
	return out
}

// Run follows the allocator's health events until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	events := m.alloc.Events()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			m.apply(ctx, ev)
		}
	}
}

func (m *Manager) apply(ctx context.Context, ev allocator.Event) {
	m.mu.Lock()
	l := m.sessions[ev.SandboxID]
	if l == nil || l.sessionID != ev.SessionID {
		m.mu.Unlock()
		return
	}
	switch ev.Kind {
	case allocator.ContainerDown:
		l.down[ev.Container] = ev.Reason
		m.mu.Unlock()
		m.log.Warn("container down, session degraded", "sandbox_id", ev.SandboxID, "session_id", ev.SessionID, "container", ev.Container, "reason", ev.Reason)
	case allocator.ContainerUp:
		delete(l.down, ev.Container)
		if ev.Endpoint != nil && l.session != nil {
			l.session.Endpoints[ev.Container] = *ev.Endpoint
		}
		m.mu.Unlock()
		m.log.Info("container healthy again", "sandbox_id", ev.SandboxID, "container", ev.Container)
	case allocator.SessionGone:
		m.mu.Unlock()
		m.log.Warn("session gone", "sandbox_id", ev.SandboxID, "session_id", ev.SessionID, "reason", ev.Reason)
		m.forget(ctx, ev.SandboxID, ev.SessionID)
	default:
		m.mu.Unlock()
	}
}

// Reconcile matches the store's sessions with what the allocator runs after a
// gateway restart: live ones are adopted, vanished ones cleared (the sandbox
// reads idle, its cargo intact). It returns the live sessions no sandbox owns.
func (m *Manager) Reconcile(ctx context.Context) ([]allocator.SessionInfo, error) {
	running, err := m.alloc.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	bySession := make(map[string]allocator.SessionInfo, len(running))
	for _, r := range running {
		bySession[r.SessionID] = r
	}
	withSession, err := m.store.ListWithSession(ctx)
	if err != nil {
		return nil, fmt.Errorf("list sandboxes with sessions: %w", err)
	}
	owned := map[string]bool{}
	for _, sb := range withSession {
		info, ok := bySession[sb.SessionID]
		if !ok || info.SandboxID != sb.ID {
			if err := m.store.SetSession(ctx, sb.ID, ""); err != nil {
				return nil, fmt.Errorf("clear session of %s: %w", sb.ID, err)
			}
			continue
		}
		owned[sb.SessionID] = true
		l := &live{sessionID: sb.SessionID, phase: phaseRunning, done: make(chan struct{}), down: map[string]string{},
			session: &allocator.Session{ID: sb.SessionID, SandboxID: sb.ID, Endpoints: map[string]allocator.Endpoint{}}}
		close(l.done)
		for _, c := range info.Down {
			l.down[c] = "down at adoption"
		}
		m.mu.Lock()
		m.sessions[sb.ID] = l
		if sb.IdleExpiresAt != nil {
			m.idle[sb.ID] = idleMark{deadline: *sb.IdleExpiresAt, persisted: *sb.IdleExpiresAt}
		}
		m.mu.Unlock()
		m.log.Info("session re-adopted", "sandbox_id", sb.ID, "session_id", sb.SessionID)
	}
	var orphans []allocator.SessionInfo
	for _, r := range running {
		if !owned[r.SessionID] {
			orphans = append(orphans, r)
		}
	}
	return orphans, nil
}

// Wait blocks until background starts and releases have finished.
func (m *Manager) Wait() { m.wg.Wait() }

// lockRef is a per-sandbox mutex shared by starts, stops and GC steps.
type lockRef struct {
	mu   sync.Mutex
	refs int
}

// lock takes sandboxID's lock and returns its release.
func (m *Manager) lock(sandboxID string) func() {
	m.mu.Lock()
	r := m.locks[sandboxID]
	if r == nil {
		r = &lockRef{}
		m.locks[sandboxID] = r
	}
	r.refs++
	m.mu.Unlock()
	r.mu.Lock()
	return func() {
		r.mu.Unlock()
		m.mu.Lock()
		r.refs--
		if r.refs == 0 {
			delete(m.locks, sandboxID)
		}
		m.mu.Unlock()
	}
}

// DefaultCargoSizeMB is the size limit of a cargo created without one.
const DefaultCargoSizeMB = 1024

// CreateCargo creates cargo storage, then records it; a failed record
// removes the storage again. managedBy names the owning sandbox ("" for an
// external cargo).
func (m *Manager) CreateCargo(ctx context.Context, owner, managedBy string, sizeMB int) (store.Cargo, error) {
	if sizeMB == 0 {
		sizeMB = DefaultCargoSizeMB
	}
	if managedBy != "" && sizeMB == DefaultCargoSizeMB && m.cfg.PoolBackend != "" {
		// A cargo made ahead (cargopool) is ready at once; on a normal
		// Nomad client a new volume takes 5–10 s to become placeable.
		cg, ok, err := m.store.ClaimPooledCargo(ctx, m.cfg.PoolBackend, owner, managedBy, m.Now())
		if err != nil {
			m.log.Warn("claim pooled cargo", "error", err)
		} else if ok {
			if m.cfg.OnPoolClaim != nil {
				m.cfg.OnPoolClaim()
			}
			return cg, nil
		}
	}
	id := NewID("ws-")
	ac, err := m.alloc.CreateCargo(ctx, allocator.CargoSpec{ID: id, SizeLimitMB: sizeMB})
	if err != nil {
		return store.Cargo{}, fmt.Errorf("create cargo storage: %w", err)
	}
	now := m.Now()
	cg := store.Cargo{
		ID: id, Owner: owner, Managed: managedBy != "", ManagedBySandboxID: managedBy,
		Backend: ac.Backend, Locator: ac.Locator, SizeLimitMB: sizeMB, CreatedAt: now, LastAccessedAt: now,
	}
	if err := m.store.CreateCargo(ctx, cg); err != nil {
		_ = m.alloc.DeleteCargo(context.Background(), ac)
		return store.Cargo{}, fmt.Errorf("record cargo: %w", err)
	}
	return cg, nil
}
