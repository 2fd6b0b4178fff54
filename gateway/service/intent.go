package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/gateway/apierr"
	"github.com/bay-sandbox/bay/store"
)

// Stop and delete are intents: recorded in the store first, then carried
// out, and carried out again by the reconcile loop (CarryOut) until done,
// so neither is lost when Nomad is unreachable or the gateway restarts.
// Every step is idempotent: a repeated stop or delete resumes where the
// last attempt stopped.

// RequestStop records a stop of sb and carries it out within QuickIntent.
// done says it finished (the session released gracefully, its tasks
// exited); otherwise the stop is pending, sb reads "stopping" and the
// reconcile loop finishes it. err is only a failure to record the stop.
func (m *Manager) RequestStop(ctx context.Context, sb store.Sandbox) (done bool, err error) {
	if sb.Intent == store.IntentDelete {
		return false, nil // going away anyway
	}
	if err := m.store.SetIntent(ctx, sb.ID, store.IntentStop, m.Now()); err != nil {
		return false, fmt.Errorf("record stop: %w", err)
	}
	sb.Intent = store.IntentStop
	return m.quick(ctx, sb)
}

// Stop is RequestStop for internal callers (drain): an unfinished stop is
// returned as its error (it stays recorded and the reconcile loop ends it).
func (m *Manager) Stop(ctx context.Context, sb store.Sandbox) error {
	if sb.Intent == store.IntentDelete {
		return nil
	}
	if err := m.store.SetIntent(ctx, sb.ID, store.IntentStop, m.Now()); err != nil {
		return fmt.Errorf("record stop: %w", err)
	}
	sb.Intent = store.IntentStop
	return m.CarryOut(ctx, sb)
}

// RequestDelete records a delete of sb and carries it out within
// QuickIntent (see RequestStop). The sandbox row stays, reading
// "deleting", until its session is stopped, its history and managed cargo
// deleted; then it goes (leaving its tombstone).
func (m *Manager) RequestDelete(ctx context.Context, sb store.Sandbox) (done bool, err error) {
	if err := m.store.SetIntent(ctx, sb.ID, store.IntentDelete, m.Now()); err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("record delete: %w", err)
	}
	sb.Intent = store.IntentDelete
	return m.quick(ctx, sb)
}

// DeleteSandbox is RequestDelete for internal callers (TTL expiry, the warm
// pool, drain): an unfinished delete is returned as its error; it stays
// recorded and the reconcile loop finishes it.
func (m *Manager) DeleteSandbox(ctx context.Context, sb store.Sandbox) error {
	if err := m.store.SetIntent(ctx, sb.ID, store.IntentDelete, m.Now()); err != nil && !errors.Is(err, store.ErrNotFound) {
		// A row already gone (a retired warm sandbox) has nothing to record
		// the intent in: what it left is released all the same.
		return fmt.Errorf("record delete: %w", err)
	}
	sb.Intent = store.IntentDelete
	return m.CarryOut(ctx, sb)
}

// quick carries out sb's intent for at most QuickIntent (and the caller's
// ctx); an unfinished intent is not an error: it is recorded.
func (m *Manager) quick(ctx context.Context, sb store.Sandbox) (bool, error) {
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.QuickIntent)
	defer cancel()
	if err := m.CarryOut(qctx, sb); err != nil {
		m.log.Warn("intent recorded, not finished yet", "sandbox_id", sb.ID, "intent", sb.Intent, "error", err)
		return false, nil
	}
	return true, nil
}

// CarryOut does what sb's recorded intent asks and clears it. It is what
// the reconcile loop calls for every pending intent.
func (m *Manager) CarryOut(ctx context.Context, sb store.Sandbox) error {
	switch sb.Intent {
	case store.IntentStop:
		if err := m.release(ctx, sb, false); err != nil {
			return fmt.Errorf("stop: %w", err)
		}
		if err := m.store.ClearIntent(ctx, sb.ID, store.IntentStop); err != nil {
			return fmt.Errorf("clear stop: %w", err)
		}
		return nil
	case store.IntentDelete:
		return m.carryOutDelete(ctx, sb)
	}
	return nil
}

// carryOutDelete releases sb's session gracefully (its tasks exit within
// their kill timeout, Gull saving its profile), deletes its history and
// its managed cargo (once no allocation claims the volume), and only then
// the sandbox row: until then the sandbox reads "deleting" and a repeated
// DELETE resumes here.
func (m *Manager) carryOutDelete(ctx context.Context, sb store.Sandbox) error {
	if err := m.release(ctx, sb, false); err != nil {
		return fmt.Errorf("stop session: %w", err)
	}
	if err := m.store.DeleteExecutions(ctx, sb.ID); err != nil {
		return fmt.Errorf("delete history: %w", err)
	}
	cg, err := m.store.GetCargo(ctx, "", sb.CargoID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("load cargo: %w", err)
	case cg.Managed && cg.ManagedBySandboxID == sb.ID:
		if err := m.alloc.DeleteCargo(ctx, allocator.Cargo{ID: cg.ID, Backend: cg.Backend, Locator: cg.Locator}); err != nil {
			return fmt.Errorf("delete cargo storage: %w", err)
		}
		if err := m.store.DeleteCargo(ctx, cg.ID); err != nil {
			return fmt.Errorf("delete cargo: %w", err)
		}
	}
	// Under the sandbox's lock: a start racing the delete has finished
	// and been released above, or sees the row gone and records nothing.
	unlock := m.lock(sb.ID)
	defer unlock()
	m.mu.Lock()
	l := m.sessions[sb.ID]
	m.mu.Unlock()
	if l != nil {
		// A start slipped in after the release: let the next round stop it.
		return fmt.Errorf("a session started while deleting")
	}
	if err := m.store.DeleteSandbox(ctx, sb.ID); err != nil {
		return fmt.Errorf("delete sandbox: %w", err)
	}
	return nil
}

// settleIntent runs before a session starts: a pending stop is finished
// first (the old session must be gone before a new one uses the cargo), and
// a sandbox being deleted starts nothing.
func (m *Manager) settleIntent(ctx context.Context, sb store.Sandbox) error {
	switch sb.Intent {
	case store.IntentDelete:
		return apierr.Conflict("sandbox %s is being deleted", sb.ID).With(map[string]any{"sandbox_id": sb.ID, "status": StatusDeleting})
	case store.IntentStop:
		if err := m.CarryOut(ctx, sb); err != nil {
			return fmt.Errorf("finish pending stop: %w", err)
		}
	}
	return nil
}
