package sqlstore

import (
	"github.com/bay-sandbox/bay/store"

	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const qIntents = `SELECT ` + sandboxCols + ` FROM sandboxes WHERE intent != '' ORDER BY intent_at, id`

// SetIntent records intent on the sandbox before anything is carried out.
// A delete replaces a pending stop; a stop never replaces a pending delete
// (the sandbox is going away). Recording the intent it already has keeps
// the first time. store.ErrNotFound if the sandbox is gone.
func (s *DB) SetIntent(ctx context.Context, id, intent string, at time.Time) error {
	if intent != store.IntentStop && intent != store.IntentDelete {
		return fmt.Errorf("set intent of sandbox %s: unknown intent %q", id, intent)
	}
	err := s.tx(ctx, func(tx txn) error {
		var cur string
		if err := tx.QueryRowContext(ctx, `SELECT intent FROM sandboxes WHERE id = ?`, id).Scan(&cur); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return store.ErrNotFound
			}
			return err
		}
		if cur == intent || cur == store.IntentDelete {
			return nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE sandboxes SET intent = ?, intent_at = ? WHERE id = ?`, intent, ms(at), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("set intent of sandbox %s: %w", id, err)
	}
	return nil
}

// ClearIntent drops a carried-out intent; a different intent recorded
// meanwhile (a delete after the stop being finished) stays. A missing
// sandbox is not an error.
func (s *DB) ClearIntent(ctx context.Context, id, intent string) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE sandboxes SET intent = '', intent_at = NULL WHERE id = ? AND intent = ?`, id, intent); err != nil {
		return fmt.Errorf("clear intent of sandbox %s: %w", id, err)
	}
	return nil
}

// ListIntents returns the sandboxes with an intent not carried out yet,
// oldest first.
func (s *DB) ListIntents(ctx context.Context) ([]store.Sandbox, error) {
	out, err := s.querySandboxes(ctx, qIntents)
	if err != nil {
		return nil, fmt.Errorf("list pending intents: %w", err)
	}
	return out, nil
}

// ClaimPooledCargo hands the oldest pooled cargo of backend to sandboxID:
// it becomes owner's managed cargo, created and accessed now. ok=false when
// the pool is empty. Pick and update are one statement in one IMMEDIATE
// transaction, so two claims (in this or another gateway) never get one cargo.
func (s *DB) ClaimPooledCargo(ctx context.Context, backend, owner, sandboxID string, now time.Time) (store.Cargo, bool, error) {
	var c store.Cargo
	err := s.tx(ctx, func(tx txn) error {
		var err error
		c, err = scanCargo(tx.QueryRowContext(ctx, `UPDATE cargos
			SET owner = ?, managed = 1, managed_by_sandbox_id = ?, created_at = ?, last_accessed_at = ?
			WHERE id = (SELECT id FROM cargos WHERE owner = ? AND managed = 0 AND backend = ?
				ORDER BY created_at, id LIMIT 1)
			RETURNING `+cargoCols,
			owner, sandboxID, ms(now), ms(now), store.PoolOwner, backend))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return store.Cargo{}, false, nil
	}
	if err != nil {
		return store.Cargo{}, false, fmt.Errorf("claim pooled cargo: %w", err)
	}
	return c, true, nil
}

// CountPooledCargos counts the unclaimed pooled cargos of backend.
func (s *DB) CountPooledCargos(ctx context.Context, backend string) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM cargos WHERE owner = ? AND managed = 0 AND backend = ?`,
		store.PoolOwner, backend).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pooled cargos: %w", err)
	}
	return n, nil
}
