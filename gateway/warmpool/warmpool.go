// Package warmpool keeps pre-started sandboxes per profile so that a create
// can hand one out at once. Warm sandboxes have their own managed cargo, are
// never listed or idle-reaped while unclaimed, are rotated after their
// profile's warm_rotate_ttl, and are deleted when the gateway shuts down.
package warmpool

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/gateway/service"
	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/store"
)

// Owner marks unclaimed warm sandboxes and their cargos.
const Owner = "__warm_pool__"

// Store is what the pool reads and writes.
type Store interface {
	ListWarm(ctx context.Context, profileID string) ([]store.Sandbox, error)
	CreateSandbox(ctx context.Context, sb store.Sandbox) error
	// RetireWarm deletes an unclaimed warm sandbox's row; false when a
	// create claimed it first.
	RetireWarm(ctx context.Context, id string) (bool, error)
}

// Sessions is the sandbox service as the pool uses it.
type Sessions interface {
	CreateCargo(ctx context.Context, owner, managedBy string, sizeMB int) (store.Cargo, error)
	DeleteSandbox(ctx context.Context, sb store.Sandbox) error
	Warmup(sb store.Sandbox)
	Now() time.Time
}

// Pool maintains the warm sandboxes.
type Pool struct {
	profiles []*profiles.Profile
	store    Store
	sessions Sessions
	log      hclog.Logger
	interval time.Duration
	kick     chan struct{}
}

// New returns a pool for the profiles with a warm_pool_size.
func New(ps []profiles.Profile, st Store, ss Sessions, log hclog.Logger) *Pool {
	var warm []*profiles.Profile
	for i := range ps {
		if ps[i].WarmPoolSize > 0 {
			warm = append(warm, &ps[i])
		}
	}
	return &Pool{profiles: warm, store: st, sessions: ss, log: log.Named("warmpool"), interval: 5 * time.Second, kick: make(chan struct{}, 1)}
}

// Enabled reports whether any profile has a warm pool.
func (p *Pool) Enabled() bool { return len(p.profiles) > 0 }

// Claimed asks for a replenish after a warm sandbox was handed out.
func (p *Pool) Claimed(string) {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Run keeps the pools full until ctx ends.
func (p *Pool) Run(ctx context.Context) {
	if !p.Enabled() {
		return
	}
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		p.Reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.kick:
		}
	}
}

// Reconcile rotates stale warm sandboxes and tops every pool up.
func (p *Pool) Reconcile(ctx context.Context) {
	now := p.sessions.Now()
	for _, prof := range p.profiles {
		warm, err := p.store.ListWarm(ctx, prof.ID)
		if err != nil {
			p.log.Warn("list warm sandboxes", "profile", prof.ID, "error", err)
			continue
		}
		live := 0
		for _, sb := range warm {
			if prof.WarmRotateTTL > 0 && now.Sub(sb.CreatedAt) >= prof.WarmRotateTTL {
				retired, err := p.retire(ctx, sb)
				if err != nil {
					p.log.Warn("rotate warm sandbox", "sandbox_id", sb.ID, "error", err)
				}
				if !retired && err != nil {
					live++ // its row could not be removed: still warm
				}
				continue
			}
			live++
		}
		for ; live < prof.WarmPoolSize; live++ {
			if err := p.add(ctx, prof, now); err != nil {
				p.log.Warn("add warm sandbox", "profile", prof.ID, "error", err)
				break
			}
		}
	}
}

func (p *Pool) add(ctx context.Context, prof *profiles.Profile, now time.Time) error {
	id := service.NewID("sandbox-")
	cg, err := p.sessions.CreateCargo(ctx, Owner, id, 0)
	if err != nil {
		return err
	}
	sb := store.Sandbox{ID: id, Owner: Owner, ProfileID: prof.ID, CargoID: cg.ID, CreatedAt: now, Warm: true}
	if err := p.store.CreateSandbox(ctx, sb); err != nil {
		return err
	}
	p.sessions.Warmup(sb)
	return nil
}

// Drain deletes every unclaimed warm sandbox (gateway shutdown).
func (p *Pool) Drain(ctx context.Context) {
	warm, err := p.store.ListWarm(ctx, "")
	if err != nil {
		p.log.Warn("list warm sandboxes", "error", err)
		return
	}
	for _, sb := range warm {
		if _, err := p.retire(ctx, sb); err != nil {
			p.log.Warn("drain warm sandbox", "sandbox_id", sb.ID, "error", err)
		}
	}
}

// retire tears an unclaimed warm sandbox down: its row goes first, in one
// statement that fails if a create claimed it meanwhile, then its compute
// and managed cargo. retired=false means it was claimed (nothing done).
func (p *Pool) retire(ctx context.Context, sb store.Sandbox) (bool, error) {
	ok, err := p.store.RetireWarm(ctx, sb.ID)
	if err != nil || !ok {
		return false, err
	}
	return true, p.sessions.DeleteSandbox(ctx, sb)
}
