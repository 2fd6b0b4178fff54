package sqlstore

import (
	"github.com/bay-sandbox/bay/store"

	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const sandboxCols = `id, owner, profile_id, cargo_id, session_id, ttl_seconds, created_at, expires_at, idle_expires_at, warm, intent, intent_at`

// sandboxInsertCols are the columns a new sandbox sets (no intent yet).
const sandboxInsertCols = `id, owner, profile_id, cargo_id, session_id, ttl_seconds, created_at, expires_at, idle_expires_at, warm`

// The GC's queries; TestQueryPlans checks each stays on its partial index.
// Each WHERE repeats its index's condition so the planner may use it.
const (
	qIdleExpired = `SELECT ` + sandboxCols + ` FROM sandboxes
		WHERE session_id != '' AND idle_expires_at < ? AND warm = 0 ORDER BY idle_expires_at`
	qExpired = `SELECT ` + sandboxCols + ` FROM sandboxes
		WHERE expires_at IS NOT NULL AND expires_at < ? ORDER BY expires_at`
	qWithSession = `SELECT ` + sandboxCols + ` FROM sandboxes WHERE session_id != '' ORDER BY created_at, id`
	qWarmPick    = `SELECT id FROM sandboxes WHERE warm = 1 AND profile_id = ? ORDER BY created_at, id LIMIT 1`
)

type scanner interface{ Scan(dest ...any) error }

func scanSandbox(r scanner) (store.Sandbox, error) {
	var (
		sb           store.Sandbox
		created      int64
		expires, idl sql.NullInt64
		warm         int
		intentAt     sql.NullInt64
	)
	if err := r.Scan(&sb.ID, &sb.Owner, &sb.ProfileID, &sb.CargoID, &sb.SessionID, &sb.TTLSeconds,
		&created, &expires, &idl, &warm, &sb.Intent, &intentAt); err != nil {
		return store.Sandbox{}, err
	}
	sb.IntentAt = fromNullMS(intentAt)
	sb.CreatedAt = fromMS(created)
	sb.ExpiresAt = fromNullMS(expires)
	sb.IdleExpiresAt = fromNullMS(idl)
	sb.Warm = warm != 0
	return sb, nil
}

// querySandboxes runs a read returning whole sandbox rows.
func (s *DB) querySandboxes(ctx context.Context, q string, args ...any) ([]store.Sandbox, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Sandbox
	for rows.Next() {
		sb, err := scanSandbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sb)
	}
	return out, rows.Err()
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertSandbox(ctx context.Context, e execer, sb store.Sandbox) error {
	_, err := e.ExecContext(ctx, `INSERT INTO sandboxes (`+sandboxInsertCols+`) VALUES (`+placeholders(10)+`)`,
		sb.ID, sb.Owner, sb.ProfileID, sb.CargoID, sb.SessionID, sb.TTLSeconds,
		ms(sb.CreatedAt), msPtr(sb.ExpiresAt), msPtr(sb.IdleExpiresAt), boolInt(sb.Warm))
	return err
}

// CreateSandbox inserts a sandbox; ErrConflict if the id exists.
func (s *DB) CreateSandbox(ctx context.Context, sb store.Sandbox) error {
	if sb.ID == "" {
		return errors.New("create sandbox: empty id")
	}
	if err := insertSandbox(ctx, s.w, sb); err != nil {
		return s.insertErr("sandbox", sb.ID, err)
	}
	return nil
}

// CreateSandboxWithCargo inserts a sandbox and its managed cargo in one
// transaction, so the orphan-cargo GC never sees the cargo without its
// sandbox. ErrConflict if either id exists (then neither is stored).
func (s *DB) CreateSandboxWithCargo(ctx context.Context, sb store.Sandbox, c store.Cargo) error {
	if sb.ID == "" || c.ID == "" {
		return errors.New("create sandbox with cargo: empty id")
	}
	err := s.tx(ctx, func(tx txn) error {
		if err := insertCargo(ctx, tx, c); err != nil {
			return err
		}
		return insertSandbox(ctx, tx, sb)
	})
	if err != nil {
		return s.insertErr("sandbox with cargo", sb.ID, err)
	}
	return nil
}

// GetSandbox returns one sandbox. owner "" matches any owner (internal use);
// a sandbox of another owner is ErrNotFound.
func (s *DB) GetSandbox(ctx context.Context, owner, id string) (store.Sandbox, error) {
	q := `SELECT ` + sandboxCols + ` FROM sandboxes WHERE id = ?`
	args := []any{id}
	if owner != "" {
		q += ` AND owner = ? AND warm = 0`
		args = append(args, owner)
	}
	sb, err := scanSandbox(s.r.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Sandbox{}, fmt.Errorf("get sandbox %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Sandbox{}, fmt.Errorf("get sandbox %s: %w", id, err)
	}
	return sb, nil
}

// ListSandboxes returns one page of non-warm sandboxes, newest first
// (created_at DESC, id DESC), and the cursor of the next page ("" at the
// end). A cursor this store did not produce is an error wrapping
// ErrInvalidCursor.
func (s *DB) ListSandboxes(ctx context.Context, f store.SandboxFilter) ([]store.Sandbox, string, error) {
	q := `SELECT ` + sandboxCols + ` FROM sandboxes WHERE warm = 0`
	var args []any
	if f.Owner != "" {
		q += ` AND owner = ?`
		args = append(args, f.Owner)
	}
	out, next, err := keysetPage(ctx, s.querySandboxes, sandboxKey, q, args, f.Cursor, f.Limit)
	if err != nil {
		return nil, "", fmt.Errorf("list sandboxes: %w", err)
	}
	return out, next, nil
}
func sandboxKey(sb store.Sandbox) cursorKey {
	return cursorKey{createdMS: ms(sb.CreatedAt), id: sb.ID}
}

// CountSandboxes counts an owner's non-warm sandboxes ("" = all owners).
func (s *DB) CountSandboxes(ctx context.Context, owner string) (int, error) {
	q := `SELECT COUNT(*) FROM sandboxes WHERE warm = 0`
	var args []any
	if owner != "" {
		q += ` AND owner = ?`
		args = append(args, owner)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count sandboxes: %w", err)
	}
	return n, nil
}

// DeleteSandbox removes a sandbox row; deleting a missing one is not an
// error. A user's (non-warm) sandbox leaves a tombstone (see
// SandboxTombstoned) in the same transaction; its time is the wall clock,
// used only to purge old tombstones.
func (s *DB) DeleteSandbox(ctx context.Context, id string) error {
	err := s.tx(ctx, func(tx txn) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO sandbox_tombstones (id, owner, deleted_at)
			SELECT id, owner, CAST(? AS BIGINT) FROM sandboxes WHERE id = ? AND warm = 0
			ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, deleted_at = excluded.deleted_at`, ms(time.Now()), id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM sandboxes WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete sandbox %s: %w", id, err)
	}
	return nil
}

// SetSession records the sandbox's current session ("" clears it).
// ErrNotFound if the sandbox is gone.
func (s *DB) SetSession(ctx context.Context, id, sessionID string) error {
	if err := mustAffect(s.w.ExecContext(ctx, `UPDATE sandboxes SET session_id = ? WHERE id = ?`, sessionID, id)); err != nil {
		return fmt.Errorf("set session of sandbox %s: %w", id, err)
	}
	return nil
}

// SetIdleExpiry sets (nil clears) the idle deadline. ErrNotFound if the
// sandbox is gone.
func (s *DB) SetIdleExpiry(ctx context.Context, id string, t *time.Time) error {
	if err := mustAffect(s.w.ExecContext(ctx, `UPDATE sandboxes SET idle_expires_at = ? WHERE id = ?`, msPtr(t), id)); err != nil {
		return fmt.Errorf("set idle expiry of sandbox %s: %w", id, err)
	}
	return nil
}

// SetExpiry sets (nil clears) the TTL deadline. ErrNotFound if the sandbox
// is gone.
func (s *DB) SetExpiry(ctx context.Context, id string, t *time.Time) error {
	if err := mustAffect(s.w.ExecContext(ctx, `UPDATE sandboxes SET expires_at = ? WHERE id = ?`, msPtr(t), id)); err != nil {
		return fmt.Errorf("set expiry of sandbox %s: %w", id, err)
	}
	return nil
}

// ClaimWarm hands the oldest warm sandbox of profileID to owner: it stops
// being warm, takes the owner, creation time now and the TTL, and its managed
// cargo changes owner too. ok=false when the pool of that profile is empty.
// The pick and the update are one statement inside one IMMEDIATE
// transaction, so concurrent claims (in this or another process) never get
// the same row.
func (s *DB) ClaimWarm(ctx context.Context, profileID, owner string, now time.Time, ttlSeconds int64, expiresAt *time.Time) (store.Sandbox, bool, error) {
	var sb store.Sandbox
	err := s.tx(ctx, func(tx txn) error {
		var err error
		sb, err = scanSandbox(tx.QueryRowContext(ctx, `UPDATE sandboxes
			SET warm = 0, owner = ?, created_at = ?, ttl_seconds = ?, expires_at = ?
			WHERE warm = 1 AND id = (
				`+qWarmPick+`)
			RETURNING `+sandboxCols,
			owner, ms(now), ttlSeconds, msPtr(expiresAt), profileID))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE cargos SET owner = ?
			WHERE managed = 1 AND managed_by_sandbox_id = ?`, owner, sb.ID)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return store.Sandbox{}, false, nil
	}
	if err != nil {
		return store.Sandbox{}, false, fmt.Errorf("claim warm sandbox of profile %s: %w", profileID, err)
	}
	return sb, true, nil
}

// ListWarm returns the unclaimed warm sandboxes of a profile ("" = all),
// oldest first.
func (s *DB) ListWarm(ctx context.Context, profileID string) ([]store.Sandbox, error) {
	q := `SELECT ` + sandboxCols + ` FROM sandboxes WHERE warm = 1`
	var args []any
	if profileID != "" {
		q += ` AND profile_id = ?`
		args = append(args, profileID)
	}
	q += ` ORDER BY created_at, id`
	out, err := s.querySandboxes(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list warm sandboxes: %w", err)
	}
	return out, nil
}

// ListIdleExpired returns non-warm sandboxes with a session whose idle
// deadline is before now.
func (s *DB) ListIdleExpired(ctx context.Context, now time.Time) ([]store.Sandbox, error) {
	out, err := s.querySandboxes(ctx, qIdleExpired, ms(now))
	if err != nil {
		return nil, fmt.Errorf("list idle-expired sandboxes: %w", err)
	}
	return out, nil
}

// ListExpired returns sandboxes (warm included) whose TTL deadline is before
// now.
func (s *DB) ListExpired(ctx context.Context, now time.Time) ([]store.Sandbox, error) {
	out, err := s.querySandboxes(ctx, qExpired, ms(now))
	if err != nil {
		return nil, fmt.Errorf("list expired sandboxes: %w", err)
	}
	return out, nil
}

// ListWithSession returns every sandbox (warm included) that records a
// session, for re-adopting sessions after a restart.
func (s *DB) ListWithSession(ctx context.Context) ([]store.Sandbox, error) {
	out, err := s.querySandboxes(ctx, qWithSession)
	if err != nil {
		return nil, fmt.Errorf("list sandboxes with session: %w", err)
	}
	return out, nil
}
