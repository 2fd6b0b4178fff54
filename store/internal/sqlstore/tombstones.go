package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SandboxTombstoned reports whether owner's sandbox id was deleted (and its
// tombstone not yet purged).
func (s *DB) SandboxTombstoned(ctx context.Context, owner, id string) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM sandbox_tombstones WHERE id = ? AND owner = ?`, id, owner).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read tombstone of sandbox %s: %w", id, err)
	}
	return true, nil
}

// PurgeTombstones deletes the tombstones written before t and returns how many.
func (s *DB) PurgeTombstones(ctx context.Context, before time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM sandbox_tombstones WHERE deleted_at < ?`, ms(before))
	if err != nil {
		return 0, fmt.Errorf("purge sandbox tombstones: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("purge sandbox tombstones: %w", err)
	}
	return int(n), nil
}

// RetireWarm deletes the row of an unclaimed warm sandbox and reports
// whether it did: false means a create claimed it first (or it is gone).
// The pool calls it before tearing a warm sandbox down, so a rotation or a
// drain racing a claim can never delete the claimed sandbox.
func (s *DB) RetireWarm(ctx context.Context, id string) (bool, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM sandboxes WHERE id = ? AND warm = 1`, id)
	if err != nil {
		return false, fmt.Errorf("retire warm sandbox %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("retire warm sandbox %s: %w", id, err)
	}
	return n == 1, nil
}
