package sqlstore

import (
	"github.com/bay-sandbox/bay/store"

	"context"
	"database/sql"
	"errors"
	"fmt"
)

// PutBlob stores a blob; ErrConflict if the id exists (blobs are immutable,
// and an upsert could let one owner overwrite another's).
func (s *DB) PutBlob(ctx context.Context, b store.Blob) error {
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
		return s.insertErr("blob", b.ID, err)
	}
	return nil
}

// GetBlob returns a blob; owner "" matches any, another owner's is
// ErrNotFound.
func (s *DB) GetBlob(ctx context.Context, owner, id string) (store.Blob, error) {
	q := `SELECT id, owner, kind, data, created_at FROM blobs WHERE id = ?`
	args := []any{id}
	if owner != "" {
		q += ` AND owner = ?`
		args = append(args, owner)
	}
	var (
		b       store.Blob
		created int64
	)
	err := s.r.QueryRowContext(ctx, q, args...).Scan(&b.ID, &b.Owner, &b.Kind, &b.Data, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Blob{}, fmt.Errorf("get blob %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Blob{}, fmt.Errorf("get blob %s: %w", id, err)
	}
	b.CreatedAt = fromMS(created)
	return b, nil
}

// DeleteBlob removes a blob; deleting a missing one is not an error.
func (s *DB) DeleteBlob(ctx context.Context, id string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM blobs WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete blob %s: %w", id, err)
	}
	return nil
}
