// Package sqlite is the embedded store backend: one SQLite file through the
// pure-Go modernc driver. It is the default, for a single gateway.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/bay-sandbox/bay/store/internal/sqlstore"
)

// Options tunes a store. The zero value gives the defaults.
type Options struct {
	// IdemPendingLease bounds how long a pending idempotency row blocks its
	// key (see store.Idempotency). Default 10 minutes.
	IdemPendingLease time.Duration
	// Readers is the size of the read connection pool for file databases.
	// Default 4.
	Readers int
}

// Store is the SQLite-backed store. It is safe for concurrent use, and
// several processes may open the same file: every write transaction starts
// with BEGIN IMMEDIATE and waits on busy_timeout rather than failing.
type Store struct {
	*sqlstore.DB
}

// dialect is SQLite's side of the shared queries.
var dialect = sqlstore.Dialect{
	Name:              "sqlite",
	Migrations:        migrations,
	IsUniqueViolation: isUniqueViolation,
	Contains:          func(h, n string) string { return "instr(" + h + ", " + n + ") > 0" },
	InsertOrder:       "rowid",
}

// Open opens the database at path, creating it and its directory if needed,
// and brings its schema up to date. path ":memory:" gives a private
// in-memory database, for tests.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenWith(ctx, path, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, o Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("open store: empty path")
	}
	if o.Readers <= 0 {
		o.Readers = 4
	}
	var w, r *sql.DB
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
		w, r = db, db
	} else {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		base := "file:" + (&url.URL{Path: path}).EscapedPath() + "?"
		var err error
		// w serialises writes inside this process: SQLite has one writer
		// at a time anyway, and a single connection turns would-be
		// SQLITE_BUSY between our own goroutines into an ordinary pool
		// wait.
		w, err = sql.Open("sqlite", base+dsnParams(true))
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		w.SetConnMaxLifetime(0)
		// r serves reads; in WAL mode they never block the writer.
		r, err = sql.Open("sqlite", base+dsnParams(true)+"&_pragma=query_only(1)")
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("open store: %w", err)
		}
		r.SetMaxOpenConns(o.Readers)
		r.SetMaxIdleConns(o.Readers)
	}
	db, err := sqlstore.New(ctx, w, r, dialect, sqlstore.Options{IdemPendingLease: o.IdemPendingLease})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &Store{DB: db}, nil
}

// dsnParams are the per-connection settings. busy_timeout comes first so the
// journal_mode switch itself waits for another process instead of failing.
// _txlock=immediate makes every transaction take the write lock up front, so
// the shared queries' read-then-write transactions are serialisable.
func dsnParams(wal bool) string {
	p := "_pragma=busy_timeout(5000)&_pragma=foreign_keys(0)&_txlock=immediate"
	if wal {
		p += "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	}
	return p
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
