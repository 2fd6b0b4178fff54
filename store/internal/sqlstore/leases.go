package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/bay-sandbox/bay/store"
)

// AcquireLease takes or extends a lease. It is one upsert whose update only
// applies when the lease is the holder's own or has expired, so of
// concurrent acquirers (in any process) exactly one wins.
func (s *DB) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	if name == "" || holder == "" {
		return false, errors.New("acquire lease: empty name or holder")
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`,
		name, holder, ms(now.Add(ttl)), ms(now))
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return n == 1, nil
}

// ReleaseLease deletes the lease if holder has it.
func (s *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

// GetLease reads a lease, expired or not.
func (s *DB) GetLease(ctx context.Context, name string) (string, time.Time, error) {
	var (
		holder  string
		expires int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT holder, expires_at FROM leases WHERE name = ?`, name).Scan(&holder, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, fmt.Errorf("get lease %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("get lease %s: %w", name, err)
	}
	return holder, fromMS(expires), nil
}
