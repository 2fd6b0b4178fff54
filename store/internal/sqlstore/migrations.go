package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migrate creates schema_migrations and applies the missing migrations, each
// in its own transaction, taken under the dialect's migration lock (SQLite:
// IMMEDIATE) so two processes opening one database at once cannot both apply
// the same step.
func (s *DB) migrate(ctx context.Context) error {
	err := s.runTx(ctx, nil, s.d.MigrationLock, func(tx txn) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at BIGINT NOT NULL
		)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	migrations := s.d.Migrations
	for i, m := range migrations {
		version := i + 1
		err := s.runTx(ctx, nil, s.d.MigrationLock, func(tx txn) error {
			var cur sql.NullInt64
			if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&cur); err != nil {
				return err
			}
			if cur.Int64 > int64(len(migrations)) {
				return fmt.Errorf("database schema version %d is newer than this binary knows (%d)", cur.Int64, len(migrations))
			}
			if cur.Int64 >= int64(version) {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
				version, time.Now().UnixMilli())
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %d: %w", version, err)
		}
	}
	return nil
}

// SchemaVersion returns the highest applied migration.
func (s *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}
