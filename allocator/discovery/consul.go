package discovery

import (
	"context"
	"fmt"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
)

// Consul resolves from Consul's health API, passing instances only
// (GET /v1/health/service/<name>?passing). Each service name that was
// resolved is watched by one blocking query (index/wait) that keeps a cache of
// its passing instances fresh; Resolve answers from that cache and asks
// Consul directly only on a miss or when the watch is failing. A service
// name is shared by one container of every session, so one watch serves them
// all; it stops when the last session that used it is forgotten.
type Consul struct {
	health *consulapi.Health
	log    hclog.Logger

	// Tunables; tests shorten them.
	wait     time.Duration                        // blocking query wait
	minGap   time.Duration                        // least time between two queries of a watch
	backoffs []time.Duration                      // retry delays after errors; the last repeats
	after    func(time.Duration) <-chan time.Time // the clock watches sleep on
	onStore  func(service string, index uint64)   // test hook: a watch stored an answer

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	watches map[string]*consulWatch // by service name
}

type consulWatch struct {
	service  string
	sessions map[string]struct{} // sessions that resolved through it
	cancel   context.CancelFunc
	started  bool

	// Guarded by Consul.mu.
	primed  bool // entries hold an answer
	fresh   bool // the last query of the watch succeeded
	index   uint64
	entries []*consulapi.ServiceEntry
}

// NewConsul returns a resolver using client. Close stops its watches.
func NewConsul(client *consulapi.Client, log hclog.Logger) *Consul {
	ctx, cancel := context.WithCancel(context.Background())
	return &Consul{
		health:   client.Health(),
		log:      log.Named("discovery.consul"),
		wait:     5 * time.Minute,
		minGap:   50 * time.Millisecond,
		backoffs: []time.Duration{250 * time.Millisecond, time.Second, 5 * time.Second, 15 * time.Second},
		after:    time.After,
		ctx:      ctx,
		cancel:   cancel,
		watches:  map[string]*consulWatch{},
	}
}

// Resolve returns the endpoint of a passing instance of q's container.
func (c *Consul) Resolve(ctx context.Context, q Query) (Endpoint, error) {
	if err := q.validate(); err != nil {
		return Endpoint{}, err
	}
	name := q.ServiceName()

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return Endpoint{}, ErrClosed
	}
	w := c.watches[name]
	if w == nil {
		w = &consulWatch{service: name, sessions: map[string]struct{}{}}
		c.watches[name] = w
	}
	w.sessions[q.SessionID] = struct{}{}
	var cached []*consulapi.ServiceEntry
	if w.primed {
		cached = w.entries
		if ep, ok := pick(cached, q); ok && w.fresh {
			c.mu.Unlock()
			return ep, nil
		}
	}
	c.mu.Unlock()

	// A miss may be a container that has just turned healthy and the watch
	// has not heard yet: ask Consul now rather than answer from the cache.
	entries, meta, err := c.health.Service(name, "", true, (&consulapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return Endpoint{}, fmt.Errorf("query consul service %s: %w", name, ctxErr)
		}
		// Consul unreachable: a cached instance is better than nothing; the
		// caller's request to it will tell whether it is still there.
		if ep, ok := pick(cached, q); ok {
			c.log.Warn("consul query failed, answering from cache", "service", name, "error", err)
			return ep, nil
		}
		return Endpoint{}, fmt.Errorf("query consul service %s: %w", name, err)
	}

	c.mu.Lock()
	if c.watches[name] == w && !c.closed {
		c.store(w, entries, meta.LastIndex, false)
		if !w.started {
			w.started = true
			c.start(w, meta.LastIndex)
		}
	}
	c.mu.Unlock()

	if ep, ok := pick(entries, q); ok {
		return ep, nil
	}
	return Endpoint{}, noEndpoint(q)
}

// Forget stops using the cache for a session; a watch no session uses any
// more is stopped.
func (c *Consul) Forget(sessionID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, w := range c.watches {
		delete(w.sessions, sessionID)
		if len(w.sessions) == 0 {
			if w.cancel != nil {
				w.cancel()
			}
			delete(c.watches, name)
		}
	}
}

// Close stops every watch and waits for them to end.
func (c *Consul) Close() {
	c.mu.Lock()
	c.closed = true
	c.watches = map[string]*consulWatch{}
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}

// store records an answer. A direct query (watched false) does not replace
// a newer answer of the watch; the watch's own answers always win, including
// after Consul's index was reset. A direct answer makes the cache fresh only
// before the watch starts from it: while the watch is failing nothing keeps
// the cache current, so Resolve keeps asking Consul. Called with c.mu held.
func (c *Consul) store(w *consulWatch, entries []*consulapi.ServiceEntry, index uint64, watched bool) {
	if !watched && w.primed && w.fresh && index < w.index {
		return
	}
	w.entries, w.index, w.primed = entries, index, true
	if watched || !w.started {
		w.fresh = true
	}
	if c.onStore != nil {
		c.onStore(w.service, index)
	}
}

// start runs w's blocking-query loop from index. Called with c.mu held.
func (c *Consul) start(w *consulWatch, index uint64) {
	ctx, cancel := context.WithCancel(c.ctx)
	w.cancel = cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer cancel()
		c.watch(ctx, w, index)
	}()
}

func (c *Consul) watch(ctx context.Context, w *consulWatch, index uint64) {
	log := c.log.With("service", w.service)
	failures := 0
	for {
		began := time.Now()
		opts := (&consulapi.QueryOptions{WaitIndex: index, WaitTime: c.wait}).WithContext(ctx)
		entries, meta, err := c.health.Service(w.service, "", true, opts)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			delay := c.backoffs[min(failures, len(c.backoffs)-1)]
			failures++
			log.Warn("watch query failed", "error", err, "retry_in", delay)
			c.mu.Lock()
			w.fresh = false
			c.mu.Unlock()
			// The agent behind the address may have been replaced (restart,
			// rebuilt cluster, failover) and its index start lower: a query
			// with the old index would be held for the whole wait while the
			// state changes under it. Start over with a non-blocking query,
			// as Consul's own api/watch does after an error.
			index = 0
			if !c.sleep(ctx, delay) {
				return
			}
			continue
		}
		failures = 0
		next := meta.LastIndex
		// Consul's rules for blocking queries: an index going backwards
		// means the state was reset, start over; never block on index 0.
		if next < index {
			next = 0
		}
		unchanged := next == index
		c.mu.Lock()
		c.store(w, entries, next, true)
		c.mu.Unlock()
		if next == 0 {
			next = 1
		}
		index = next
		// An answer that came back at once without a change would spin.
		if unchanged && time.Since(began) < c.minGap && !c.sleep(ctx, c.minGap) {
			return
		}
	}
}

func (c *Consul) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-c.after(d):
		return true
	}
}

// pick chooses the matching instance that changed last: with no reschedule
// there is at most one per session and container, except for moments of
// overlap in which the newest registration is the live one.
func pick(entries []*consulapi.ServiceEntry, q Query) (Endpoint, bool) {
	var best *consulapi.ServiceEntry
	for _, e := range entries {
		if e.Service == nil || !q.matches(e.Service.Tags) {
			continue
		}
		if best == nil || e.Service.ModifyIndex > best.Service.ModifyIndex {
			best = e
		}
	}
	if best == nil {
		return Endpoint{}, false
	}
	addr := best.Service.Address
	if addr == "" && best.Node != nil {
		addr = best.Node.Address
	}
	return Endpoint{Address: addr, Port: best.Service.Port}, true
}
