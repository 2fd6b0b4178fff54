package sqlstore

import (
	"github.com/bay-sandbox/bay/store"

	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const cargoCols = `id, owner, managed, managed_by_sandbox_id, backend, locator, size_limit_mb, created_at, last_accessed_at`

func scanCargo(r scanner) (store.Cargo, error) {
	var (
		c                 store.Cargo
		managed           int
		created, accessed int64
	)
	if err := r.Scan(&c.ID, &c.Owner, &managed, &c.ManagedBySandboxID, &c.Backend, &c.Locator,
		&c.SizeLimitMB, &created, &accessed); err != nil {
		return store.Cargo{}, err
	}
	c.Managed = managed != 0
	c.CreatedAt = fromMS(created)
	c.LastAccessedAt = fromMS(accessed)
	return c, nil
}

func (s *DB) queryCargos(ctx context.Context, q string, args ...any) ([]store.Cargo, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Cargo
	for rows.Next() {
		c, err := scanCargo(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func insertCargo(ctx context.Context, e execer, c store.Cargo) error {
	_, err := e.ExecContext(ctx, `INSERT INTO cargos (`+cargoCols+`) VALUES (`+placeholders(9)+`)`,
		c.ID, c.Owner, boolInt(c.Managed), c.ManagedBySandboxID, c.Backend, c.Locator, c.SizeLimitMB,
		ms(c.CreatedAt), ms(c.LastAccessedAt))
	return err
}

// CreateCargo inserts a cargo; ErrConflict if the id exists.
func (s *DB) CreateCargo(ctx context.Context, c store.Cargo) error {
	if c.ID == "" {
		return errors.New("create cargo: empty id")
	}
	if err := insertCargo(ctx, s.w, c); err != nil {
		return s.insertErr("cargo", c.ID, err)
	}
	return nil
}

// GetCargo returns one cargo; owner "" matches any owner, another owner's
// cargo is ErrNotFound.
func (s *DB) GetCargo(ctx context.Context, owner, id string) (store.Cargo, error) {
	q := `SELECT ` + cargoCols + ` FROM cargos WHERE id = ?`
	args := []any{id}
	if owner != "" {
		q += ` AND owner = ?`
		args = append(args, owner)
	}
	c, err := scanCargo(s.r.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Cargo{}, fmt.Errorf("get cargo %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Cargo{}, fmt.Errorf("get cargo %s: %w", id, err)
	}
	return c, nil
}

// ListCargos returns one page of cargos, newest first, and the next cursor
// ("" at the end).
func (s *DB) ListCargos(ctx context.Context, f store.CargoFilter) ([]store.Cargo, string, error) {
	q := `SELECT ` + cargoCols + ` FROM cargos WHERE 1 = 1`
	var args []any
	if f.Owner != "" {
		q += ` AND owner = ?`
		args = append(args, f.Owner)
	}
	if f.Managed != nil {
		q += ` AND managed = ?`
		args = append(args, boolInt(*f.Managed))
	}
	out, next, err := keysetPage(ctx, s.queryCargos, cargoKey, q, args, f.Cursor, f.Limit)
	if err != nil {
		return nil, "", fmt.Errorf("list cargos: %w", err)
	}
	return out, next, nil
}
func cargoKey(c store.Cargo) cursorKey { return cursorKey{createdMS: ms(c.CreatedAt), id: c.ID} }

// DeleteCargo removes a cargo row; deleting a missing one is not an error.
func (s *DB) DeleteCargo(ctx context.Context, id string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM cargos WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete cargo %s: %w", id, err)
	}
	return nil
}

// TouchCargo records an access at t. ErrNotFound if the cargo is gone.
func (s *DB) TouchCargo(ctx context.Context, id string, t time.Time) error {
	if err := mustAffect(s.w.ExecContext(ctx, `UPDATE cargos SET last_accessed_at = ? WHERE id = ?`, ms(t), id)); err != nil {
		return fmt.Errorf("touch cargo %s: %w", id, err)
	}
	return nil
}

// SandboxesUsingCargo returns the ids of the sandboxes (warm included) that
// mount cargoID, sorted.
func (s *DB) SandboxesUsingCargo(ctx context.Context, cargoID string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM sandboxes WHERE cargo_id = ? ORDER BY id`, cargoID)
	if err != nil {
		return nil, fmt.Errorf("sandboxes using cargo %s: %w", cargoID, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sandboxes using cargo %s: %w", cargoID, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sandboxes using cargo %s: %w", cargoID, err)
	}
	return ids, nil
}

// ListOrphanCargos returns managed cargos whose sandbox no longer exists.
// A managed cargo recorded before its sandbox (CreateCargo, then
// CreateSandbox) shows up here between the two inserts: a GC should use
// ListOrphanCargosBefore with a grace period, or the creator
// CreateSandboxWithCargo.
func (s *DB) ListOrphanCargos(ctx context.Context) ([]store.Cargo, error) {
	return s.listOrphans(ctx, nil)
}

// ListOrphanCargosBefore is ListOrphanCargos limited to cargos created
// before the given time, so a sandbox being created right now keeps its
// cargo.
func (s *DB) ListOrphanCargosBefore(ctx context.Context, before time.Time) ([]store.Cargo, error) {
	return s.listOrphans(ctx, &before)
}

func (s *DB) listOrphans(ctx context.Context, before *time.Time) ([]store.Cargo, error) {
	q := `SELECT ` + cargoCols + ` FROM cargos c
		WHERE c.managed = 1 AND NOT EXISTS (SELECT 1 FROM sandboxes s WHERE s.id = c.managed_by_sandbox_id)`
	var args []any
	if before != nil {
		q += ` AND c.created_at < ?`
		args = append(args, ms(*before))
	}
	out, err := s.queryCargos(ctx, q+` ORDER BY c.created_at, c.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list orphan cargos: %w", err)
	}
	return out, nil
}
