// Package cargopool keeps a few cargos made and ready ahead of demand, so
// creating a sandbox does not wait for its cargo's storage. On Nomad a new
// dynamic host volume is placeable only once its client's next node update
// reaches the servers: 1 s on a dev agent, 5–10 s on a normal client, which
// put create → first Python at 8 s. A pooled cargo is a store row owned by
// store.PoolOwner (invisible to users) whose volume already reads ready; a
// create claims one atomically (store.ClaimPooledCargo, safe across
// gateways) and the pool makes a replacement in the background.
//
// Why a pool rather than skipping the wait or sharing one volume: the wait
// is the scheduler's (it places only on volumes a node has fingerprinted),
// so not waiting just moves it into the first call; and one per-node volume
// with a directory per cargo would give every session's mount every
// other cargo, since a volume_mount has no sub-path.
package cargopool

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/gateway/service"
	"github.com/bay-sandbox/bay/store"
)

// Store is what the pool reads and writes.
type Store interface {
	CountPooledCargos(ctx context.Context, backend string) (int, error)
	CreateCargo(ctx context.Context, c store.Cargo) error
}

// Compute makes and removes cargo storage.
type Compute interface {
	CreateCargo(ctx context.Context, spec allocator.CargoSpec) (allocator.Cargo, error)
	DeleteCargo(ctx context.Context, c allocator.Cargo) error
}

// Config tunes the pool.
type Config struct {
	// Size is how many ready cargos to keep; 0 disables the pool.
	Size int
	// Backend is the allocator's cargo backend ("nomad_host_volume").
	Backend string
	// SizeLimitMB of the pooled cargos (a create asking another size
	// makes its own); default service.DefaultCargoSizeMB.
	SizeLimitMB int
	// Recheck is how often the pool counts itself without a claim (another
	// gateway may have claimed); default 30 s.
	Recheck time.Duration
	Now     func() time.Time
}

// Pool refills the cargo pool.
type Pool struct {
	cfg   Config
	store Store
	c     Compute
	log   hclog.Logger
	kick  chan struct{}
}

// New returns a pool; Run fills it.
func New(cfg Config, st Store, c Compute, log hclog.Logger) *Pool {
	if cfg.SizeLimitMB <= 0 {
		cfg.SizeLimitMB = service.DefaultCargoSizeMB
	}
	if cfg.Recheck <= 0 {
		cfg.Recheck = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Pool{cfg: cfg, store: st, c: c, log: log.Named("cargopool"), kick: make(chan struct{}, 1)}
}

// Claimed tells the pool a cargo was taken (it refills at once).
func (p *Pool) Claimed() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Run keeps the pool full until ctx ends. With several gateways on one
// store, only the leader should run it.
func (p *Pool) Run(ctx context.Context) {
	if p.cfg.Size <= 0 {
		return
	}
	t := time.NewTicker(p.cfg.Recheck)
	defer t.Stop()
	backoff := time.Second
	for {
		if err := p.Fill(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("refill cargo pool", "error", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Minute)
			continue
		}
		backoff = time.Second
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		case <-t.C:
		}
	}
}

// Fill makes cargos until the pool holds Size.
func (p *Pool) Fill(ctx context.Context) error {
	for {
		n, err := p.store.CountPooledCargos(ctx, p.cfg.Backend)
		if err != nil {
			return err
		}
		if n >= p.cfg.Size {
			return nil
		}
		if err := p.makeOne(ctx); err != nil {
			return err
		}
	}
}

func (p *Pool) makeOne(ctx context.Context) error {
	id := service.NewID("ws-")
	ac, err := p.c.CreateCargo(ctx, allocator.CargoSpec{ID: id, SizeLimitMB: p.cfg.SizeLimitMB, Ready: true})
	if err != nil {
		return fmt.Errorf("create pooled cargo: %w", err)
	}
	if ac.Backend != p.cfg.Backend {
		_ = p.c.DeleteCargo(context.WithoutCancel(ctx), ac)
		return fmt.Errorf("pooled cargo has backend %q, the pool is for %q", ac.Backend, p.cfg.Backend)
	}
	now := p.cfg.Now().UTC()
	if err := p.store.CreateCargo(ctx, store.Cargo{ID: id, Owner: store.PoolOwner, Backend: ac.Backend, Locator: ac.Locator,
		SizeLimitMB: p.cfg.SizeLimitMB, CreatedAt: now, LastAccessedAt: now}); err != nil {
		_ = p.c.DeleteCargo(context.WithoutCancel(ctx), ac)
		return fmt.Errorf("record pooled cargo: %w", err)
	}
	p.log.Debug("pooled cargo ready", "cargo_id", id)
	return nil
}
