// Package postgres is the store backend for several gateways sharing one
// database: PostgreSQL through jackc/pgx's database/sql driver. It runs the
// same queries as store/sqlite (store/internal/sqlstore) with PostgreSQL's
// schema, and serialisable transactions retried on conflict where SQLite
// takes its single write lock.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/bay-sandbox/bay/store/internal/sqlstore"
)

// Options tunes a store. The zero value gives the defaults.
type Options struct {
	// IdemPendingLease bounds how long a pending idempotency row blocks its
	// key (see store.Idempotency). Default 10 minutes.
	IdemPendingLease time.Duration
	// MaxConns caps the connection pool. Default 10.
	MaxConns int
}

// Store is the PostgreSQL-backed store, safe for concurrent use by any
// number of goroutines and gateways.
type Store struct {
	*sqlstore.DB
}

// migrationLockKey names Bay's schema migrations among the database's
// advisory locks ("bay" + "mig" in ASCII).
const migrationLockKey = 0x6261796d6967

var dialect = sqlstore.Dialect{
	Name:              "postgres",
	Migrations:        migrations,
	IsUniqueViolation: func(err error) bool { return pgCode(err) == "23505" },
	NumberedParams:    true,
	TxOptions:         &sql.TxOptions{Isolation: sql.LevelSerializable},
	// 40001 serialization_failure, 40P01 deadlock_detected.
	Retryable:     func(err error) bool { c := pgCode(err); return c == "40001" || c == "40P01" },
	MigrationLock: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLockKey),
	Contains:      func(h, n string) string { return "strpos(" + h + ", " + n + ") > 0" },
	InsertOrder:   "seq",
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// Open connects to the database at dsn (a postgres:// URL or key=value
// string; unset parts come from the standard PG* environment variables) and
// brings its schema up to date. Gateways opening one database at once
// apply each migration once.
func Open(ctx context.Context, dsn string) (*Store, error) {
	return OpenWith(ctx, dsn, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, dsn string, o Options) (*Store, error) {
	if o.MaxConns <= 0 {
		o.MaxConns = 10
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db.SetMaxOpenConns(o.MaxConns)
	db.SetMaxIdleConns(o.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: connect to postgres: %w", err)
	}
	s, err := sqlstore.New(ctx, db, db, dialect, sqlstore.Options{IdemPendingLease: o.IdemPendingLease})
	if err != nil {
		return nil, fmt.Errorf("open store: postgres: %w", err)
	}
	return &Store{DB: s}, nil
}
