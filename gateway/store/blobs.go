package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Blob is an opaque payload kept for later retrieval (browser traces, large
// outputs), addressed by id and scoped to an owner.
type Blob struct {
	ID, Owner, Kind string
	Data            []byte
	CreatedAt       time.Time
}

// PutBlob stores a blob; ErrConflict if the id exists (blobs are immutable,
// and an upsert could let one owner overwrite another's).
func (s *SQLite) PutBlob(ctx context.Context, b Blob) error {
	if b.ID == "" {
		return errors.New("put blob: empty id")
	}
	data := b.Data
	if data == nil {
		data = []byte{}
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO blobs (id, owner, kind, data, created_at) VALUES (?, ?, ?, ?, ?)`,
		b.ID, b.Owner, b.Kind, data, ms(b.CreatedAt))
	if err != nil {
		return insertErr("blob", b.ID, err)
	}
	return nil
}

// GetBlob returns a blob; owner "" matches any, another owner's is
// ErrNotFound.
func (s *SQLite) GetBlob(ctx context.Context, owner, id string) (Blob, error) {
	q := `SELECT id, owner, kind, data, created_at FROM blobs WHERE id = ?`
	args := []any{id}
	if owner != "" {
		q += ` AND owner = ?`
		args = append(args, owner)
	}
	var (
		b       Blob
		created int64
	)
	err := s.r.QueryRowContext(ctx, q, args...).Scan(&b.ID, &b.Owner, &b.Kind, &b.Data, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Blob{}, fmt.Errorf("get blob %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Blob{}, fmt.Errorf("get blob %s: %w", id, err)
	}
	b.CreatedAt = fromMS(created)
	return b, nil
}

// DeleteBlob removes a blob; deleting a missing one is not an error.
func (s *SQLite) DeleteBlob(ctx context.Context, id string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM blobs WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete blob %s: %w", id, err)
	}
	return nil
}
