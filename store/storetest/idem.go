package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/store"
)

func testIdempotency(t *testing.T, newDB NewDB) {
	ctx := context.Background()
	s := newDB(t)()
	ttl := time.Hour
	now := at(0)

	rec, ok, err := s.BeginIdem(ctx, "alice", "k1", "fp1", now, ttl)
	if err != nil || !ok || !rec.Pending || rec.Fingerprint != "fp1" || !rec.ExpiresAt.Equal(now.Add(ttl)) {
		t.Fatalf("first begin = %+v, %v, %v", rec, ok, err)
	}
	// A second use while the first runs sees the pending row.
	rec, ok, err = s.BeginIdem(ctx, "alice", "k1", "fp-other", at(10), ttl)
	if err != nil || ok || !rec.Pending || rec.Fingerprint != "fp1" {
		t.Fatalf("begin while pending = %+v, %v, %v", rec, ok, err)
	}
	// Scope is (owner, key): another owner's same key is independent.
	if _, ok, err := s.BeginIdem(ctx, "bob", "k1", "fpb", now, ttl); !ok || err != nil {
		t.Fatalf("other owner's key: ok=%v err=%v", ok, err)
	}

	body := []byte(`{"id":"sb1"}`)
	if err := s.CompleteIdem(ctx, "alice", "k1", 201, body); err != nil {
		t.Fatal(err)
	}
	rec, ok, err = s.BeginIdem(ctx, "alice", "k1", "fp1", at(20), ttl)
	if err != nil || ok || rec.Pending || rec.Status != 201 || string(rec.Body) != string(body) {
		t.Fatalf("replay = %+v, %v, %v", rec, ok, err)
	}
	if err := s.CompleteIdem(ctx, "alice", "k1", 500, nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("completing a completed row: %v; want ErrNotFound", err)
	}
	if err := s.AbandonIdem(ctx, "alice", "k1"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetIdem(ctx, "alice", "k1"); err != nil || got.Status != 201 {
		t.Fatalf("abandon removed a completed row: %+v, %v", got, err)
	}

	// After the TTL the key is free again.
	rec, ok, err = s.BeginIdem(ctx, "alice", "k1", "fp2", now.Add(ttl), ttl)
	if err != nil || !ok || !rec.Pending || rec.Fingerprint != "fp2" {
		t.Fatalf("begin after expiry = %+v, %v, %v", rec, ok, err)
	}

	// A failed execution abandons its row; the retry acquires.
	if _, ok, _ := s.BeginIdem(ctx, "alice", "k2", "fp", now, ttl); !ok {
		t.Fatal("k2 not acquired")
	}
	if err := s.AbandonIdem(ctx, "alice", "k2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetIdem(ctx, "alice", "k2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("abandoned row still there: %v", err)
	}
	if _, ok, _ := s.BeginIdem(ctx, "alice", "k2", "fp", at(1), ttl); !ok {
		t.Fatal("retry after abandon not acquired")
	}
	if err := s.CompleteIdem(ctx, "alice", "missing", 200, nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("complete missing: %v", err)
	}

	// A pending row whose process died is taken over after the lease.
	if _, ok, _ := s.BeginIdem(ctx, "alice", "k3", "fp", now, ttl); !ok {
		t.Fatal("k3 not acquired")
	}
	if _, ok, _ := s.BeginIdem(ctx, "alice", "k3", "fp", now.Add(PendingLease-time.Millisecond), ttl); ok {
		t.Fatal("pending row taken over before its lease ended")
	}
	if _, ok, _ := s.BeginIdem(ctx, "alice", "k3", "fp", now.Add(PendingLease), ttl); !ok {
		t.Fatal("pending row not taken over after its lease")
	}

	// Purge removes exactly the rows expired at now.
	n, err := s.PurgeIdem(ctx, now.Add(ttl))
	if err != nil || n != 1 { // bob's k1 (alice's k2 began at 1s, k1 and k3 later)
		t.Fatalf("purge = %d, %v; want 1", n, err)
	}
	if _, err := s.GetIdem(ctx, "bob", "k1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired row survived purge: %v", err)
	}
	if n, err := s.PurgeIdem(ctx, now.Add(10*ttl)); err != nil || n != 3 {
		t.Fatalf("second purge = %d, %v; want 3", n, err)
	}
}

func testBeginIdemConcurrent(t *testing.T, newDB NewDB) {
	ctx := context.Background()
	open := newDB(t)
	stores := []store.Store{open(), open()}
	for round := 0; round < 10; round++ {
		key := fmt.Sprintf("key-%d", round)
		var acquired atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				rec, ok, err := stores[g%2].BeginIdem(ctx, "alice", key, "fp", at(0), time.Hour)
				if err != nil {
					t.Errorf("begin: %v", err)
					return
				}
				if ok {
					acquired.Add(1)
				} else if !rec.Pending || rec.Fingerprint != "fp" {
					t.Errorf("loser saw %+v", rec)
				}
			}()
		}
		close(start)
		wg.Wait()
		if n := acquired.Load(); n != 1 {
			t.Fatalf("round %d: %d goroutines acquired the key; want exactly 1", round, n)
		}
	}
}
