// Package sqlstore is the store.Store implementation shared by the SQL
// backends: one set of queries over database/sql, with the few differences
// between the databases in a Dialect. The backend packages (store/sqlite,
// store/postgres) open the connections and supply the dialect.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bay-sandbox/bay/store"
)

// Dialect is what differs between the databases behind the same queries.
type Dialect struct {
	// Name names the database in errors.
	Name string
	// Migrations are the schema steps, applied in order, each once; version
	// = index + 1. Every dialect has the same steps, meaning the same thing.
	Migrations []string
	// IsUniqueViolation reports whether err is a PRIMARY KEY or UNIQUE
	// failure.
	IsUniqueViolation func(error) bool
}

// Options tunes a store. The zero value gives the defaults.
type Options struct {
	// IdemPendingLease bounds how long a pending idempotency row blocks its
	// key. A process that died mid-request leaves a pending row behind;
	// after the lease a new BeginIdem takes the key over instead of making
	// every retry wait for the full TTL. Default 10 minutes.
	IdemPendingLease time.Duration
}

// DB is a store.Store over database/sql. It is safe for concurrent use.
type DB struct {
	// w takes the writes and every transaction.
	w *sql.DB
	// r serves reads; it may be the same handle as w.
	r            *sql.DB
	d            Dialect
	pendingLease time.Duration
}

var _ store.Store = (*DB)(nil)

// New brings the schema of the database behind w up to date and returns the
// store. r serves reads (it may be w). The DB owns both handles: Close
// closes them, and so does a failed New.
func New(ctx context.Context, w, r *sql.DB, d Dialect, o Options) (*DB, error) {
	if o.IdemPendingLease <= 0 {
		o.IdemPendingLease = 10 * time.Minute
	}
	s := &DB{w: w, r: r, d: d, pendingLease: o.IdemPendingLease}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Writer and Reader expose the handles to the backend packages' own tests
// (pragmas, query plans); the store's users go through its methods.
func (s *DB) Writer() *sql.DB { return s.w }

// Reader is the read handle; see Writer.
func (s *DB) Reader() *sql.DB { return s.r }

// Close closes the database handles.
func (s *DB) Close() error {
	var errs []error
	if s.r != nil && s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}

// tx runs fn in one write transaction (BEGIN IMMEDIATE via the DSN), and
// commits if fn returns nil.
func (s *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// insertErr maps a failed INSERT to ErrConflict when the id already exists.
func (s *DB) insertErr(what, id string, err error) error {
	if s.d.IsUniqueViolation(err) {
		return fmt.Errorf("create %s %s: %w", what, id, store.ErrConflict)
	}
	return fmt.Errorf("create %s %s: %w", what, id, err)
}

// mustAffect turns "no row changed" into ErrNotFound.
func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// Times are stored as Unix milliseconds: compact, indexable, and ordered the
// same way as the instants they stand for.
func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func msPtr(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func fromNullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

func nullStr(p *string) sql.NullString {
	if p == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: *p, Valid: true}
}

func fromNullStr(v sql.NullString) *string {
	if !v.Valid {
		return nil
	}
	s := v.String
	return &s
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// placeholders returns "?, ?, ?" for n arguments.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
