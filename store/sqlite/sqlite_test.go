package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/store"
)

func TestMigrationsIdempotentOnReopen(t *testing.T) {
	ctx := context.Background()
	// A fresh data directory is created; URI metacharacters in the path
	// name a file, not parameters.
	path := filepath.Join(t.TempDir(), "new dir", "bay?#%.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if err := s.CreateSandbox(ctx, store.Sandbox{ID: "sb1", Owner: "alice", ProfileID: "p", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := s.Reader().QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	for i := 0; i < 2; i++ {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		v, err := s.SchemaVersion(ctx)
		if err != nil || v != len(migrations) {
			t.Fatalf("schema version = %d, %v; want %d", v, err, len(migrations))
		}
		var n int
		if err := s.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(migrations) {
			t.Fatalf("schema_migrations rows = %d, %v; want %d", n, err, len(migrations))
		}
		if _, err := s.GetSandbox(ctx, "alice", "sb1"); err != nil {
			t.Fatalf("row lost after reopen: %v", err)
		}
		s.Close()
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at its path: %v", err)
	}

	// A database written by a newer binary is refused, not silently used.
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Writer().ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, len(migrations)+5); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(ctx, path); err == nil {
		s.Close()
		t.Fatal("open of a newer schema succeeded; want an error")
	}
}
