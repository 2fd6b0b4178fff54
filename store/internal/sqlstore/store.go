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
	// NumberedParams: placeholders are $1, $2, ... rather than ?.
	NumberedParams bool
	// TxOptions start every write transaction. The shared read-then-write
	// transactions need them serialisable: SQLite gets that from BEGIN
	// IMMEDIATE (set in its DSN), PostgreSQL from LevelSerializable.
	TxOptions *sql.TxOptions
	// Retryable reports whether a failed transaction may simply be run
	// again (a serialisation failure or a deadlock); nil = never.
	Retryable func(error) bool
	// MigrationLock, when set, runs first in each migration transaction
	// (which uses the default isolation), so gateways starting together
	// apply each step once; SQLite's IMMEDIATE transactions need none.
	MigrationLock string
	// Contains is the SQL condition "haystack contains needle", both SQL
	// expressions.
	Contains func(haystack, needle string) string
	// InsertOrder is the column that orders rows inserted in the same
	// millisecond in insertion order (executions, skill candidates).
	InsertOrder string
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
	w conn
	// r serves reads; it may be the same handle as w.
	r            conn
	d            *Dialect
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
	dp := &d
	s := &DB{w: conn{w, dp}, r: conn{r, dp}, d: dp, pendingLease: o.IdemPendingLease}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Writer and Reader expose the handles to the backend packages' own tests
// (pragmas, query plans); the store's users go through its methods.
func (s *DB) Writer() *sql.DB { return s.w.db }

// Reader is the read handle; see Writer.
func (s *DB) Reader() *sql.DB { return s.r.db }

// Close closes the database handles.
func (s *DB) Close() error {
	var errs []error
	if s.r.db != nil && s.r.db != s.w.db {
		errs = append(errs, s.r.db.Close())
	}
	if s.w.db != nil {
		errs = append(errs, s.w.db.Close())
	}
	return errors.Join(errs...)
}

// tx runs fn in one write transaction and commits if fn returns nil. A
// transaction the database refused for a retryable reason (a concurrent
// transaction won a serialisation conflict) is run again, a few times: fn
// must set everything it returns afresh on every run.
func (s *DB) tx(ctx context.Context, fn func(txn) error) error {
	return s.runTx(ctx, s.d.TxOptions, "", fn)
}

func (s *DB) runTx(ctx context.Context, opts *sql.TxOptions, first string, fn func(txn) error) error {
	const attempts = 10
	var err error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			// Back off a little, growing, so the winners get out of the way.
			select {
			case <-ctx.Done():
				return errors.Join(err, ctx.Err())
			case <-time.After(time.Duration(i*i) * time.Millisecond):
			}
		}
		err = s.tryTx(ctx, opts, first, fn)
		if err == nil || s.d.Retryable == nil || !s.d.Retryable(err) {
			return err
		}
	}
	return err
}

func (s *DB) tryTx(ctx context.Context, opts *sql.TxOptions, first string, fn func(txn) error) error {
	tx, err := s.w.db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	t := txn{tx, s.d}
	if first != "" {
		if _, err := t.ExecContext(ctx, first); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	if err := fn(t); err != nil {
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
