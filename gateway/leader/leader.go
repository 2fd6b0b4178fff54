// Package leader elects, among the gateways sharing one store, the one that
// runs the cluster-wide loops (serve gives it GC and the warm pools): whoever
// holds the store's "leader" lease. The holder renews it every third of its TTL; a
// gateway that dies stops renewing and another takes over once the lease
// has expired, so the takeover bound is TTL + TTL/3. A gateway that cannot
// renew steps down after 2/3 TTL, before anyone else can win the lease, so
// two leaders never run at once (given clocks that agree to well within
// the TTL). With a single gateway (the SQLite default) it simply leads.
package leader

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// LeaseName is the store lease the leader holds.
const LeaseName = "leader"

// Leases is what the elector needs of the store.
type Leases interface {
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Config tunes an elector.
type Config struct {
	// Holder names this gateway in the lease; unique per process.
	Holder string
	// TTL is the lease's lifetime without renewal. Default 15s.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Elector campaigns for the leader lease and runs the leader's work while
// it holds it.
type Elector struct {
	cfg     Config
	st      Leases
	log     hclog.Logger
	leading atomic.Bool
	changes atomic.Int64
}

// HolderID returns a process-unique holder name: host, pid and a random
// suffix (a restarted gateway with a recycled pid is still someone else).
func HolderID() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// New returns an elector; call Run.
func New(cfg Config, st Leases, log hclog.Logger) *Elector {
	if cfg.TTL <= 0 {
		cfg.TTL = 15 * time.Second
	}
	if cfg.Holder == "" {
		cfg.Holder = HolderID()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Elector{cfg: cfg, st: st, log: log.Named("leader")}
}

// Holder is this gateway's name in the lease.
func (e *Elector) Holder() string { return e.cfg.Holder }

// Leading reports whether this gateway leads right now.
func (e *Elector) Leading() bool { return e.leading.Load() }

// Terms counts the times this gateway became leader.
func (e *Elector) Terms() int64 { return e.changes.Load() }

// Run campaigns until ctx ends. Each time this gateway wins, every lead
// function runs in its own goroutine with a context that is cancelled when
// leadership is lost (or ctx ends); Run waits for them all to return before
// campaigning again, and gives the lease up on the way out so a graceful
// shutdown hands over at once.
func (e *Elector) Run(ctx context.Context, lead ...func(context.Context)) {
	every := e.cfg.TTL / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	var (
		termCancel context.CancelFunc
		term       sync.WaitGroup
		lastOK     time.Time
	)
	stepDown := func(why string) {
		if termCancel == nil {
			return
		}
		termCancel()
		term.Wait()
		termCancel = nil
		e.leading.Store(false)
		e.log.Info("stepped down", "holder", e.cfg.Holder, "reason", why)
	}
	defer func() {
		stepDown("shutting down")
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.st.ReleaseLease(rctx, LeaseName, e.cfg.Holder); err != nil {
			e.log.Warn("release leader lease", "error", err)
		}
	}()
	for {
		now := e.cfg.Now()
		actx, cancel := context.WithTimeout(ctx, every)
		ok, err := e.st.AcquireLease(actx, LeaseName, e.cfg.Holder, now, e.cfg.TTL)
		cancel()
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			// Unknown whether the lease is still ours: lead on only while
			// nobody else can have won it yet.
			if termCancel != nil && e.cfg.Now().Sub(lastOK) >= e.cfg.TTL*2/3 {
				stepDown("cannot renew the lease: " + err.Error())
			}
			e.log.Warn("leader lease", "error", err)
		case ok:
			lastOK = now
			if termCancel == nil {
				tctx, cancel := context.WithCancel(ctx)
				termCancel = cancel
				e.leading.Store(true)
				e.changes.Add(1)
				e.log.Info("leading: running the cluster-wide loops", "holder", e.cfg.Holder, "lease_ttl", e.cfg.TTL)
				for _, fn := range lead {
					term.Add(1)
					go func() { defer term.Done(); fn(tctx) }()
				}
			}
		default:
			stepDown("another gateway holds the lease")
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
