package leader

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/store/sqlite"
)

// flaky is a store connection that can be cut, as when a gateway's host
// dies or loses the database: acquires fail, releases never arrive.
type flaky struct {
	Leases
	cut atomic.Bool
}

func (f *flaky) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	if f.cut.Load() {
		return false, errors.New("connection refused")
	}
	return f.Leases.AcquireLease(ctx, name, holder, now, ttl)
}

func (f *flaky) ReleaseLease(ctx context.Context, name, holder string) error {
	if f.cut.Load() {
		return errors.New("connection refused")
	}
	return f.Leases.ReleaseLease(ctx, name, holder)
}

// member is one gateway's elector, counting how many lead functions of it
// run right now.
type member struct {
	e       *Elector
	conn    *flaky
	running atomic.Int32
	cancel  context.CancelFunc
	done    chan struct{}
}

func start(t *testing.T, st Leases, name string, ttl time.Duration, overlap *atomic.Int32, maxOverlap *atomic.Int32) *member {
	m := &member{conn: &flaky{Leases: st}, done: make(chan struct{})}
	m.e = New(Config{Holder: name, TTL: ttl}, m.conn, hclog.NewNullLogger())
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		m.e.Run(ctx, func(ctx context.Context) {
			m.running.Add(1)
			if n := overlap.Add(1); n > maxOverlap.Load() {
				maxOverlap.Store(n)
			}
			<-ctx.Done()
			overlap.Add(-1)
			m.running.Add(-1)
		})
	}()
	t.Cleanup(func() { cancel(); <-m.done })
	return m
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	began := time.Now()
	for !cond() {
		if time.Since(began) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(began)
}

func TestOneLeaderAndTakeover(t *testing.T) {
	st, err := sqlite.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const ttl = 600 * time.Millisecond
	var overlap, maxOverlap atomic.Int32
	a := start(t, st, "gw-a", ttl, &overlap, &maxOverlap)
	waitFor(t, ttl, "first gateway leads", func() bool { return a.running.Load() == 1 })
	b := start(t, st, "gw-b", ttl, &overlap, &maxOverlap)
	time.Sleep(ttl) // b campaigns a few times meanwhile
	if b.e.Leading() || b.running.Load() != 0 {
		t.Fatal("a second gateway leads while the first holds the lease")
	}

	// The leader dies (no renewals, no release): it stops its own work
	// within 2/3 TTL, and the other takes over within TTL + TTL/3.
	a.conn.cut.Store(true)
	cutAt := time.Now()
	waitFor(t, ttl, "dead leader steps down", func() bool { return a.running.Load() == 0 })
	waitFor(t, ttl+ttl/3+200*time.Millisecond, "takeover", func() bool { return b.running.Load() == 1 })
	t.Logf("takeover %v after the leader's death (ttl %v)", time.Since(cutAt), ttl)

	// A graceful stop releases the lease: the other takes over at its
	// next campaign (TTL/3), not at expiry.
	a.conn.cut.Store(false)
	b.cancel()
	<-b.done
	waitFor(t, ttl/3+200*time.Millisecond, "handover after graceful stop", func() bool { return a.running.Load() == 1 })

	if n := maxOverlap.Load(); n != 1 {
		t.Fatalf("%d leaders ran at once; want 1", n)
	}
	if a.e.Terms() != 2 {
		t.Fatalf("first gateway led %d terms; want 2", a.e.Terms())
	}
}

func TestLeadFunctionsAllStopBeforeNextTerm(t *testing.T) {
	st, err := sqlite.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e := New(Config{Holder: "solo", TTL: 300 * time.Millisecond}, st, hclog.NewNullLogger())
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var ran []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx,
			func(ctx context.Context) { mu.Lock(); ran = append(ran, "gc"); mu.Unlock(); <-ctx.Done() },
			func(ctx context.Context) { mu.Lock(); ran = append(ran, "pool"); mu.Unlock(); <-ctx.Done() })
	}()
	waitFor(t, time.Second, "both lead functions run", func() bool { mu.Lock(); defer mu.Unlock(); return len(ran) == 2 })
	cancel()
	<-done
	if e.Leading() {
		t.Fatal("still leading after Run returned")
	}
	if _, _, err := st.GetLease(context.Background(), LeaseName); err == nil {
		t.Fatal("lease kept after a graceful stop")
	}
}
