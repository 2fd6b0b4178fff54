package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/gateway/apierr"
	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/store"
)

// Several gateways may share one store (and one Nomad cluster). The
// sessions map is then a cache: the sandbox row names the current session,
// the allocator knows whether it runs, and a gateway that meets a session it
// did not start adopts it. A cold start is single-flight across gateways
// through a lease in the store ("start/<sandbox>"), renewed while the start
// runs: a gateway dying mid-start stops renewing, and the next gateway to
// need the sandbox takes the lease over, adopts the session if it came up
// or destroys what is left of it and starts afresh.

// Leases is what the service needs of the store for cross-gateway starts.
type Leases interface {
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
	GetLease(ctx context.Context, name string) (string, time.Time, error)
}

func startLease(sandboxID string) string { return "start/" + sandboxID }

// adoptSettle bounds how long a start waits for the containers of a
// session it adopts to read up on this gateway.
const adoptSettle = 5 * time.Second

// startPoll is how often a gateway waiting on another's start looks again.
const startPoll = 200 * time.Millisecond

// claimStart takes sb's start lease, waiting while another gateway holds
// it. It returns the session to adopt when one is found running (then no
// lease is held), or the release of the lease the caller must start under.
// While held, the lease is renewed every third of its TTL.
func (m *Manager) claimStart(ctx context.Context, sb store.Sandbox) (*live, func(), error) {
	name := startLease(sb.ID)
	for {
		ok, err := m.store.AcquireLease(ctx, name, m.cfg.Holder, m.Now(), m.cfg.LeaseTTL)
		if err != nil {
			return nil, nil, fmt.Errorf("take start lease: %w", err)
		}
		if ok {
			break
		}
		// Another gateway is starting it: take its session once every
		// container answers.
		if l := m.peek(ctx, sb.ID, 0); l != nil && len(l.down) == 0 {
			return l, nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil, apierr.NotReady(sb.ID, 1000, fmt.Sprintf("sandbox %s is being started by another gateway", sb.ID))
		case <-time.After(startPoll):
		}
	}
	rctx, stopRenew := context.WithCancel(context.WithoutCancel(ctx))
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(m.cfg.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				if ok, err := m.store.AcquireLease(rctx, name, m.cfg.Holder, m.Now(), m.cfg.LeaseTTL); err != nil || !ok {
					m.log.Warn("renew start lease", "sandbox_id", sb.ID, "held", ok, "error", err)
				}
			}
		}
	}()
	release := func() {
		stopRenew()
		<-renewed
		if err := m.store.ReleaseLease(context.WithoutCancel(ctx), name, m.cfg.Holder); err != nil {
			m.log.Warn("release start lease", "sandbox_id", sb.ID, "error", err)
		}
	}
	// Under the lease, the row is the truth: a session recorded there was
	// started by a gateway that finished (adopt it) or died (clean up).
	if l := m.peek(ctx, sb.ID, adoptSettle); l != nil {
		release()
		return l, nil, nil
	}
	return nil, release, nil
}

// peek re-reads sb's row and, when it names a session the allocator has,
// returns it as a running live entry (containers that do not answer marked
// down). A recorded session the allocator does not have at all, while
// nobody holds its start lease, is what a dead gateway left behind: it is
// destroyed and cleared so no job outlives its start.
func (m *Manager) peek(ctx context.Context, sandboxID string, settle time.Duration) *live {
	row, err := m.store.GetSandbox(ctx, "", sandboxID)
	if err != nil || row.SessionID == "" {
		return nil
	}
	p, err := m.Profile(row)
	if err != nil {
		return nil
	}
	l := &live{sessionID: row.SessionID, phase: phaseRunning, done: make(chan struct{}), down: map[string]string{},
		session: &allocator.Session{ID: row.SessionID, SandboxID: row.ID, Endpoints: map[string]allocator.Endpoint{}}}
	close(l.done)
	gone := 0
	settleUntil := time.Now().Add(settle)
	for _, c := range p.Containers {
		ep, err := m.alloc.Resolve(ctx, row.SessionID, c.Name)
		// This gateway's allocator may still be learning the state of a
		// session it did not start (its event stream catching up): give a
		// container that reads down a moment before calling it so.
		for errors.Is(err, allocator.ErrContainerDown) && time.Now().Before(settleUntil) {
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			if ctx.Err() != nil {
				break
			}
			ep, err = m.alloc.Resolve(ctx, row.SessionID, c.Name)
		}
		switch {
		case err == nil:
			l.session.Endpoints[c.Name] = ep
		case errors.Is(err, allocator.ErrSessionGone):
			gone++
		default:
			l.down[c.Name] = "not answering at adoption"
		}
	}
	if gone == 0 {
		m.log.Info("session adopted", "sandbox_id", row.ID, "session_id", row.SessionID)
		return l
	}
	if holder, exp, err := m.store.GetLease(ctx, startLease(row.ID)); err == nil && holder != m.cfg.Holder && m.Now().Before(exp) {
		return nil // still being started elsewhere
	}
	// Nobody is starting it. If the allocator still has the session (a
	// start whose gateway died, going on without it; or discovery lagging
	// behind a start that just finished), adopt it: calls answer
	// not-ready until its containers are up. Only a session the allocator
	// does not have at all is cleaned up.
	if running, err := m.alloc.List(ctx); err == nil {
		for _, r := range running {
			if r.SessionID == row.SessionID && r.SandboxID == row.ID {
				for _, c := range p.Containers {
					if _, ok := l.session.Endpoints[c.Name]; !ok {
						l.down[c.Name] = "not answering at adoption"
					}
				}
				m.log.Info("session adopted while its containers come up", "sandbox_id", row.ID, "session_id", row.SessionID)
				return l
			}
		}
	} else {
		m.log.Warn("list sessions", "error", err)
		return nil
	}
	m.log.Warn("clearing a session no gateway is starting and the allocator does not run", "sandbox_id", row.ID, "session_id", row.SessionID)
	if err := m.alloc.Destroy(ctx, row.SessionID); err != nil {
		m.log.Warn("destroy left-behind session", "session_id", row.SessionID, "error", err)
	}
	if err := m.store.SetSession(ctx, row.ID, ""); err != nil && !errors.Is(err, store.ErrNotFound) {
		m.log.Warn("clear left-behind session", "sandbox_id", row.ID, "error", err)
	}
	return nil
}

// cached returns sb's live entry, adopting a session another gateway
// started when the row names one this gateway has not met, so status,
// degraded and containers read the same on every gateway.
func (m *Manager) cached(sb store.Sandbox) *live {
	m.mu.Lock()
	l := m.sessions[sb.ID]
	m.mu.Unlock()
	if l != nil || sb.SessionID == "" || !m.cfg.Shared {
		return l
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if holder, exp, err := m.store.GetLease(ctx, startLease(sb.ID)); err == nil && holder != m.cfg.Holder && m.Now().Before(exp) {
		// Starting on another gateway: report it as such, cache nothing.
		return &live{sessionID: sb.SessionID, phase: phaseStarting, done: make(chan struct{}), down: map[string]string{}}
	}
	adopted := m.peek(ctx, sb.ID, 0)
	if adopted == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.sessions[sb.ID]; cur != nil {
		return cur
	}
	m.sessions[sb.ID] = adopted
	return adopted
}

// Adopt caches every session the store records and the allocator runs,
// clearing nothing: for a gateway joining others on a shared store, where a
// recorded session may be mid-start on another gateway (the leader's
// reconcile and GC deal with what is really gone). It returns how many it
// adopted.
func (m *Manager) Adopt(ctx context.Context) (int, error) {
	running, err := m.alloc.List(ctx)
	if err != nil {
		return 0, fmt.Errorf("list sessions: %w", err)
	}
	bySession := make(map[string]allocator.SessionInfo, len(running))
	for _, r := range running {
		bySession[r.SessionID] = r
	}
	withSession, err := m.store.ListWithSession(ctx)
	if err != nil {
		return 0, fmt.Errorf("list sandboxes with sessions: %w", err)
	}
	n := 0
	for _, sb := range withSession {
		info, ok := bySession[sb.SessionID]
		if !ok || info.SandboxID != sb.ID {
			continue
		}
		l := &live{sessionID: sb.SessionID, phase: phaseRunning, done: make(chan struct{}), down: map[string]string{},
			session: &allocator.Session{ID: sb.SessionID, SandboxID: sb.ID, Endpoints: map[string]allocator.Endpoint{}}}
		close(l.done)
		for _, c := range info.Down {
			l.down[c] = "down at adoption"
		}
		m.mu.Lock()
		if m.sessions[sb.ID] == nil {
			m.sessions[sb.ID] = l
			if sb.IdleExpiresAt != nil {
				m.idle[sb.ID] = idleMark{deadline: *sb.IdleExpiresAt, persisted: *sb.IdleExpiresAt}
			}
			n++
		}
		m.mu.Unlock()
	}
	return n, nil
}

// keepalive keeps sb's stored idle deadline ahead while a call runs, so the
// leader's idle reaper (on whichever gateway) does not stop a session under
// a call longer than the idle timeout. Only this gateway knows the call is
// in flight; the store is what the others see. It returns the stop.
func (m *Manager) keepalive(sb store.Sandbox, p *profiles.Profile) func() {
	if !m.cfg.Shared || p == nil || p.IdleTimeout <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(p.IdleTimeout / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.Touch(ctx, sb, p)
			}
		}
	}()
	return func() { cancel(); <-done }
}
