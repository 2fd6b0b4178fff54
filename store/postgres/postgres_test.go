package postgres

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/bay-sandbox/bay/internal/testutil/pgtest"
	"github.com/bay-sandbox/bay/store"
	"github.com/bay-sandbox/bay/store/sqlite"
	"github.com/bay-sandbox/bay/store/storetest"
)

var pg pgtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

func open(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := OpenWith(context.Background(), dsn, Options{IdemPendingLease: storetest.PendingLease})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the store suite on PostgreSQL; every handle of one
// test is its own pool on the same database, as two gateways would be.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() store.Store {
		dsn := pg.DB(t)
		return func() store.Store { return open(t, dsn) }
	})
}

// TestSchemaMatchesSQLite keeps the two schemas step for step: a migration
// added to one backend only fails here.
func TestSchemaMatchesSQLite(t *testing.T) {
	ctx := context.Background()
	lite, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	want, err := lite.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := open(t, pg.DB(t)).SchemaVersion(ctx)
	if err != nil || got != want {
		t.Fatalf("postgres schema version = %d, %v; sqlite has %d", got, err, want)
	}
}

// TestConcurrentMigrate opens one fresh database from many gateways at
// once: each step is applied once and every open succeeds.
func TestConcurrentMigrate(t *testing.T) {
	dsn := pg.DB(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), dsn)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, dsn)
	var n int
	if err := s.Reader().QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(migrations) {
		t.Fatalf("schema_migrations rows = %d, %v; want %d", n, err, len(migrations))
	}
}

// TestOpenBadDSN fails with a clear error rather than hanging.
func TestOpenBadDSN(t *testing.T) {
	srv := pg.Server(t)
	_ = srv
	if _, err := Open(context.Background(), "postgres://bay@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"); err == nil {
		t.Fatal("open of an unreachable database succeeded")
	}
}
