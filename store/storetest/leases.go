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

func testLeases(t *testing.T, newDB NewDB) {
	ctx := context.Background()
	open := newDB(t)
	a, b := open(), open()
	ttl := 10 * time.Second

	if _, _, err := a.GetLease(ctx, "leader"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get of a never-held lease: %v; want ErrNotFound", err)
	}
	if ok, err := a.AcquireLease(ctx, "leader", "gw-a", at(0), ttl); !ok || err != nil {
		t.Fatalf("first acquire = %v, %v", ok, err)
	}
	if ok, err := b.AcquireLease(ctx, "leader", "gw-b", at(5), ttl); ok || err != nil {
		t.Fatalf("acquire of a live lease by another holder = %v, %v; want false", ok, err)
	}
	// The holder renews; the expiry moves.
	if ok, err := a.AcquireLease(ctx, "leader", "gw-a", at(8), ttl); !ok || err != nil {
		t.Fatalf("renew = %v, %v", ok, err)
	}
	if h, exp, err := b.GetLease(ctx, "leader"); err != nil || h != "gw-a" || !exp.Equal(at(18)) {
		t.Fatalf("lease = %q until %v, %v; want gw-a until %v", h, exp, err, at(18))
	}
	if ok, _ := b.AcquireLease(ctx, "leader", "gw-b", at(18).Add(-time.Millisecond), ttl); ok {
		t.Fatal("taken over a millisecond before expiry")
	}
	// Expired: another holder takes it, and the old one cannot renew.
	if ok, err := b.AcquireLease(ctx, "leader", "gw-b", at(18), ttl); !ok || err != nil {
		t.Fatalf("take-over at expiry = %v, %v", ok, err)
	}
	if ok, _ := a.AcquireLease(ctx, "leader", "gw-a", at(19), ttl); ok {
		t.Fatal("the previous holder renewed a lease it had lost")
	}
	// Release by a non-holder does nothing; by the holder frees it at once.
	if err := a.ReleaseLease(ctx, "leader", "gw-a"); err != nil {
		t.Fatal(err)
	}
	if h, _, err := a.GetLease(ctx, "leader"); err != nil || h != "gw-b" {
		t.Fatalf("after a stranger's release: %q, %v", h, err)
	}
	if err := b.ReleaseLease(ctx, "leader", "gw-b"); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.AcquireLease(ctx, "leader", "gw-a", at(20), ttl); !ok || err != nil {
		t.Fatalf("acquire after release = %v, %v", ok, err)
	}
	// Leases are independent by name.
	if ok, err := b.AcquireLease(ctx, "start/sb1", "gw-b", at(20), ttl); !ok || err != nil {
		t.Fatalf("other lease = %v, %v", ok, err)
	}

	// Concurrent acquirers over two handles: exactly one wins each round.
	for round := 0; round < 5; round++ {
		name := fmt.Sprintf("race-%d", round)
		var won atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < 12; g++ {
			s := a
			if g%2 == 1 {
				s = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ok, err := s.AcquireLease(ctx, name, fmt.Sprintf("gw-%d", g), at(30), ttl)
				if err != nil {
					t.Error(err)
				}
				if ok {
					won.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if n := won.Load(); n != 1 {
			t.Fatalf("round %d: %d holders; want exactly 1", round, n)
		}
	}
}
