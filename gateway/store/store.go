// Package store is Bay's state store: sandboxes, cargos, execution history,
// blobs, idempotency records and a small key/value table, kept in SQLite
// through the pure-Go modernc driver.
//
// The store keeps facts only. Status (running, idle, degraded, ...) is never
// stored: the gateway computes it from a sandbox row and its live session, so
// nothing here can go stale when a process dies.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var (
	// ErrNotFound means the row does not exist or belongs to another owner;
	// callers must not be able to tell the two apart.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a row with the same id (or key) already exists, or
	// a state precondition did not hold.
	ErrConflict = errors.New("conflict")
	// ErrInvalidCursor is wrapped by list calls given a cursor they did not
	// produce.
	ErrInvalidCursor = errors.New("invalid cursor")
)

// Options tunes a store. The zero value gives the defaults.
type Options struct {
	// IdemPendingLease bounds how long a pending idempotency row blocks its
	// key. A process that died mid-request leaves a pending row behind;
	// after the lease a new BeginIdem takes the key over instead of making
	// every retry wait for the full TTL. Default 10 minutes.
	IdemPendingLease time.Duration
	// Readers is the size of the read connection pool for file databases.
	// Default 4.
	Readers int
}

// SQLite is the SQLite-backed store. It is safe for concurrent use, and
// several processes may open the same file: every write transaction starts
// with BEGIN IMMEDIATE and waits on busy_timeout rather than failing.
type SQLite struct {
	// w serialises writes inside this process: SQLite has one writer at a
	// time anyway, and a single connection turns would-be SQLITE_BUSY
	// between our own goroutines into an ordinary pool wait.
	w *sql.DB
	// r serves reads; in WAL mode they never block the writer. For
	// ":memory:" it is the same handle as w.
	r            *sql.DB
	pendingLease time.Duration
}

// Open opens the database at path, creating it and its directory if needed,
// and brings its schema up to date. path ":memory:" gives a private in-memory database, for tests.
func Open(ctx context.Context, path string) (*SQLite, error) {
	return OpenWith(ctx, path, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, o Options) (*SQLite, error) {
	if path == "" {
		return nil, errors.New("open store: empty path")
	}
	if o.IdemPendingLease <= 0 {
		o.IdemPendingLease = 10 * time.Minute
	}
	if o.Readers <= 0 {
		o.Readers = 4
	}
	s := &SQLite{pendingLease: o.IdemPendingLease}

	if path == ":memory:" {
		// Every connection to ":memory:" is a new, empty database, so the
		// whole store lives on one connection that is never recycled.
		db, err := sql.Open("sqlite", "file::memory:?"+dsnParams(false))
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		s.w, s.r = db, db
	} else {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		base := "file:" + (&url.URL{Path: path}).EscapedPath() + "?"
		w, err := sql.Open("sqlite", base+dsnParams(true))
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		w.SetConnMaxLifetime(0)
		r, err := sql.Open("sqlite", base+dsnParams(true)+"&_pragma=query_only(1)")
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("open store: %w", err)
		}
		r.SetMaxOpenConns(o.Readers)
		r.SetMaxIdleConns(o.Readers)
		s.w, s.r = w, r
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// dsnParams are the per-connection settings. busy_timeout comes first so the
// journal_mode switch itself waits for another process instead of failing.
func dsnParams(wal bool) string {
	p := "_pragma=busy_timeout(5000)&_pragma=foreign_keys(0)&_txlock=immediate"
	if wal {
		p += "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	}
	return p
}

// Close closes the database handles.
func (s *SQLite) Close() error {
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
func (s *SQLite) tx(ctx context.Context, fn func(*sql.Tx) error) error {
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

// isUniqueViolation reports whether err is a PRIMARY KEY or UNIQUE failure.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code()
	return c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// insertErr maps a failed INSERT to ErrConflict when the id already exists.
func insertErr(what, id string, err error) error {
	if isUniqueViolation(err) {
		return fmt.Errorf("create %s %s: %w", what, id, ErrConflict)
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
		return ErrNotFound
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
