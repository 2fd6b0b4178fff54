package sqlstore

import (
	"github.com/bay-sandbox/bay/store"

	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const idemCols = `owner, key, fingerprint, pending, status, body, created_at, expires_at`

func scanIdem(r scanner) (store.IdemRecord, error) {
	var (
		rec              store.IdemRecord
		pending          int
		created, expires int64
	)
	if err := r.Scan(&rec.Owner, &rec.Key, &rec.Fingerprint, &pending, &rec.Status, &rec.Body, &created, &expires); err != nil {
		return store.IdemRecord{}, err
	}
	rec.Pending = pending != 0
	rec.CreatedAt, rec.ExpiresAt = fromMS(created), fromMS(expires)
	return rec, nil
}

// BeginIdem claims (owner, key) for a first use. With no live row it writes a
// Pending row and returns it with acquired=true: the caller executes and then
// calls CompleteIdem or AbandonIdem. With a live row it returns that row and
// acquired=false: the caller compares Fingerprint, then replays a completed
// row or waits on a pending one. A row is dead once expired, or when it is
// still pending after the pending lease (its process died mid-request).
// The read and the write are one IMMEDIATE transaction, so of concurrent
// first uses (in any process) exactly one acquires.
func (s *DB) BeginIdem(ctx context.Context, owner, key, fingerprint string, now time.Time, ttl time.Duration) (store.IdemRecord, bool, error) {
	var (
		rec      store.IdemRecord
		acquired bool
	)
	err := s.tx(ctx, func(tx txn) error {
		rec, acquired = store.IdemRecord{}, false
		cur, err := scanIdem(tx.QueryRowContext(ctx, `SELECT `+idemCols+` FROM idempotency WHERE owner = ? AND key = ?`, owner, key))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			live := now.Before(cur.ExpiresAt) && !(cur.Pending && !now.Before(cur.CreatedAt.Add(s.pendingLease)))
			if live {
				rec = cur
				return nil
			}
		}
		rec = store.IdemRecord{
			Owner: owner, Key: key, Fingerprint: fingerprint, Pending: true,
			CreatedAt: fromMS(ms(now)), ExpiresAt: fromMS(ms(now.Add(ttl))),
		}
		acquired = true
		_, err = tx.ExecContext(ctx, `INSERT INTO idempotency (`+idemCols+`) VALUES (`+placeholders(8)+`)
			ON CONFLICT (owner, key) DO UPDATE SET fingerprint = excluded.fingerprint, pending = excluded.pending,
			status = excluded.status, body = excluded.body, created_at = excluded.created_at,
			expires_at = excluded.expires_at`,
			owner, key, fingerprint, 1, 0, nil, ms(now), ms(now.Add(ttl)))
		return err
	})
	if err != nil {
		return store.IdemRecord{}, false, fmt.Errorf("begin idempotent request %s: %w", key, err)
	}
	return rec, acquired, nil
}

// CompleteIdem stores the successful outcome of the pending row.
// ErrNotFound if there is no pending row (abandoned, or taken over after the
// pending lease).
func (s *DB) CompleteIdem(ctx context.Context, owner, key string, status int, body []byte) error {
	if body == nil {
		body = []byte{}
	}
	err := mustAffect(s.w.ExecContext(ctx, `UPDATE idempotency SET pending = 0, status = ?, body = ?
		WHERE owner = ? AND key = ? AND pending = 1`, status, body, owner, key))
	if err != nil {
		return fmt.Errorf("complete idempotent request %s: %w", key, err)
	}
	return nil
}

// AbandonIdem deletes the pending row after a failed execution, freeing the
// key for a retry. A completed row is left alone.
func (s *DB) AbandonIdem(ctx context.Context, owner, key string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM idempotency WHERE owner = ? AND key = ? AND pending = 1`, owner, key); err != nil {
		return fmt.Errorf("abandon idempotent request %s: %w", key, err)
	}
	return nil
}

// PurgeIdem deletes the rows expired at now and returns how many.
func (s *DB) PurgeIdem(ctx context.Context, now time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM idempotency WHERE expires_at <= ?`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("purge idempotency records: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("purge idempotency records: %w", err)
	}
	return int(n), nil
}

// GetIdem reads the record of (owner, key) as stored, expired or not.
// ErrNotFound if there is none. Waiters on a pending row may poll this, or
// call BeginIdem again (which also takes over a dead row).
func (s *DB) GetIdem(ctx context.Context, owner, key string) (store.IdemRecord, error) {
	rec, err := scanIdem(s.r.QueryRowContext(ctx, `SELECT `+idemCols+` FROM idempotency WHERE owner = ? AND key = ?`, owner, key))
	if errors.Is(err, sql.ErrNoRows) {
		return store.IdemRecord{}, fmt.Errorf("get idempotent request %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return store.IdemRecord{}, fmt.Errorf("get idempotent request %s: %w", key, err)
	}
	return rec, nil
}
