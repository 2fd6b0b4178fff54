package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/bay-sandbox/bay/store"
	"github.com/bay-sandbox/bay/store/storetest"
)

var suiteOptions = Options{IdemPendingLease: storetest.PendingLease}

// TestConformance runs the store suite on SQLite files; every handle of one
// test opens the same file, as several processes on one host would.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() store.Store {
		path := filepath.Join(t.TempDir(), "bay.db")
		return func() store.Store {
			s, err := OpenWith(context.Background(), path, suiteOptions)
			if err != nil {
				t.Fatalf("open %s: %v", path, err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	})
}

// TestConformanceMemory runs the suite on ":memory:", the store the other
// packages' tests use. It has one handle per database, so the suite's second
// handles are the same store.
func TestConformanceMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() store.Store {
		s, err := OpenWith(context.Background(), ":memory:", suiteOptions)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return func() store.Store { return s }
	})
}
