package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// GetMeta reads a value of the small key/value table (instance id, API-key
// hashes). ok=false when the key is absent.
func (s *DB) GetMeta(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("get meta %s: %w", key, err)
	}
	return v, true, nil
}

// SetMeta creates or replaces a value.
func (s *DB) SetMeta(ctx context.Context, key, value string) error {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value); err != nil {
		return fmt.Errorf("set meta %s: %w", key, err)
	}
	return nil
}

// InitMeta stores value under key unless the key exists, and returns the
// value stored now: the caller's, or the one that was there first. Several
// gateways racing on one store all get the same answer.
func (s *DB) InitMeta(ctx context.Context, key, value string) (string, error) {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO NOTHING`, key, value); err != nil {
		return "", fmt.Errorf("init meta %s: %w", key, err)
	}
	var v string
	// Read from the writer: a reader could lag behind the insert.
	if err := s.w.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v); err != nil {
		return "", fmt.Errorf("init meta %s: %w", key, err)
	}
	return v, nil
}
