// Package nomad runs sessions as Nomad jobs (one job, one group, one task per
// container) and cargos as Nomad dynamic host volumes.
//
// One watcher per allocator follows every Bay allocation through Nomad's
// event stream (blocking queries when the stream is unavailable) and feeds a
// pure state machine per session (Machine). Starts wait on that machine, not
// on polling; a task dying in a running session turns into ContainerDown at
// once, its in-place restart into ContainerUp once /health answers, and the
// allocation ending into SessionGone.
package nomad

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/allocator/discovery"
	"github.com/bay-sandbox/bay/jobspecs"
)

// BackendHostVolume is the cargo backend this allocator reports.
const BackendHostVolume = "nomad_host_volume"

// ErrUnreachable is wrapped by errors that come from not reaching Nomad at
// all (as opposed to Nomad refusing), so the gateway can answer 503 rather
// than report a failed start.
var ErrUnreachable = fmt.Errorf("nomad is unreachable: %w", allocator.ErrUnavailable)

// Resolver finds a container's endpoint (discovery.Nomad or discovery.Consul).
type Resolver interface {
	Resolve(ctx context.Context, q discovery.Query) (discovery.Endpoint, error)
	Forget(sessionID string)
}

// Allocator is the Nomad implementation of allocator.Allocator.
type Allocator struct {
	cfg      Config
	log      hclog.Logger
	client   *api.Client
	resolver Resolver
	closers  []func()
	http     *http.Client

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	events *eventQueue

	mu        sync.Mutex
	byJob     map[string]*session
	bySession map[string]*session
	closed    bool
}

// session is one tracked job.
type session struct {
	info     allocator.SessionInfo
	jobID    string
	runtimes map[string]string // container -> runtime type
	m        *Machine
	last     *api.Allocation
	// wake is poked (never blocking) whenever the machine saw something.
	wake     chan struct{}
	stopping bool
	// placement is set when the scheduler could place nothing: Start
	// returns it (ErrNoCapacity naming the exhausted resources).
	placement *allocator.BackendError
	probes    map[string]context.CancelFunc // container -> health probe after restart
	// announced holds the endpoints the event stream's native service
	// registrations carried (container -> endpoint): probes take them
	// without asking discovery, which lists every session's instances.
	announced map[string]discovery.Endpoint
}

func (s *session) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

var _ allocator.Allocator = (*Allocator)(nil)

// New connects to Nomad (no request is made yet: an unreachable cluster
// shows up as errors wrapping ErrUnreachable and a watcher that keeps
// retrying) and starts the allocator's single event-stream watcher.
func New(cfg Config, log hclog.Logger) (*Allocator, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("nomad allocator config: %w", err)
	}
	client, err := api.NewClient(cfg.nomadConfig())
	if err != nil {
		return nil, fmt.Errorf("nomad client: %w", err)
	}
	a := &Allocator{
		cfg:       cfg,
		log:       log.Named("nomad"),
		client:    client,
		http:      &http.Client{Timeout: 2 * time.Second},
		byJob:     map[string]*session{},
		bySession: map[string]*session{},
	}
	switch {
	case cfg.Resolver != nil:
		a.resolver = cfg.Resolver
	case cfg.Discovery == DiscoveryConsul:
		cc, err := consulapi.NewClient(cfg.consulConfig())
		if err != nil {
			return nil, fmt.Errorf("consul client: %w", err)
		}
		r := discovery.NewConsul(cc, a.log)
		a.resolver = r
		a.closers = append(a.closers, r.Close)
	default:
		a.resolver = discovery.NewNomad(client, a.log)
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.events = newEventQueue()
	w := &watcher{
		client:     client,
		log:        a.log.Named("watcher"),
		alloc:      a.observe,
		service:    a.serviceChanged,
		jobGone:    a.jobDeregistered,
		connected:  a.reconciled,
		pollFor:    2 * time.Minute,
		pollWait:   5 * time.Minute,
		maxBackoff: 5 * time.Second,
	}
	a.wg.Add(2)
	go func() { defer a.wg.Done(); w.run(a.ctx) }()
	go func() { defer a.wg.Done(); a.events.run(a.ctx) }()
	return a, nil
}

// Client is the Nomad API client the allocator uses (for tests and tools).
func (a *Allocator) Client() *api.Client { return a.client }

// Events delivers container and session health changes; it is closed by
// Close.
func (a *Allocator) Events() <-chan allocator.Event { return a.events.out }

// Close stops the watcher and every health probe. Jobs keep running: a
// restarted gateway re-adopts them.
func (a *Allocator) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.mu.Unlock()
	a.cancel()
	a.wg.Wait()
	for _, c := range a.closers {
		c()
	}
	return nil
}

// ---------------------------------------------------------------- watcher side

// observe feeds one allocation to its session's machine and acts on what
// changed. It runs on the watcher goroutine (and adoption) and never blocks.
func (a *Allocator) observe(al *api.Allocation) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.byJob[al.JobID]
	if s == nil {
		return
	}
	a.observeLocked(s, al)
}

func (a *Allocator) observeLocked(s *session, al *api.Allocation) {
	if (s.m.AllocID() == "" || al.ID == s.m.AllocID()) && (s.last == nil || al.ModifyIndex >= s.last.ModifyIndex) {
		s.last = al
	}
	a.applyLocked(s, s.m.Observe(al))
}

// applyLocked acts on what a session's machine reports.
func (a *Allocator) applyLocked(s *session, changes []Change) {
	s.poke()
	for _, c := range changes {
		a.log.Debug("session change", "session_id", s.info.SessionID, "change", c.Kind.String(), "container", c.Container, "reason", c.Reason)
		switch c.Kind {
		case ChangeDown:
			a.cancelProbeLocked(s, c.Container)
			a.resolver.Forget(s.info.SessionID)
			if !s.stopping {
				a.log.Info("container down", "session_id", s.info.SessionID, "container", c.Container, "reason", c.Reason)
				a.events.push(allocator.Event{Kind: allocator.ContainerDown, SandboxID: s.info.SandboxID,
					SessionID: s.info.SessionID, Container: c.Container, Reason: c.Reason})
			}
		case ChangeRestarted:
			a.startProbeLocked(s, c.Container, c.Generation)
		case ChangeGone:
			a.dropLocked(s)
			if !s.stopping {
				a.log.Info("session gone", "session_id", s.info.SessionID, "reason", c.Reason)
				a.events.push(allocator.Event{Kind: allocator.SessionGone, SandboxID: s.info.SandboxID,
					SessionID: s.info.SessionID, Reason: c.Reason})
			}
		}
	}
}

// jobDeregistered ends a session whose job someone else stopped or purged.
func (a *Allocator) jobDeregistered(jobID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s := a.byJob[jobID]; s != nil && !s.stopping {
		a.applyLocked(s, s.m.JobStopped("job deregistered outside Bay"))
	}
}

// serviceChanged drops cached endpoints of a job whose registrations
// changed, remembers the endpoint a registration carries (the stream only
// has Nomad-native services, the same registrations discovery.Nomad reads)
// and takes a deregistration as the first sign of a dead task.
func (a *Allocator) serviceChanged(deregistered bool, reg *api.ServiceRegistration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.byJob[reg.JobID]
	if s == nil {
		return
	}
	a.resolver.Forget(s.info.SessionID)
	container := ""
	for _, tag := range reg.Tags {
		if c, ok := strings.CutPrefix(tag, jobspecs.ContainerTag("")); ok {
			container = c
		}
	}
	// count = 1: another allocation's registration is not the session's.
	ours := s.m.AllocID() == "" || reg.AllocID == s.m.AllocID()
	if !deregistered {
		if _, known := s.runtimes[container]; known && ours && reg.Port > 0 {
			if s.announced == nil {
				s.announced = map[string]discovery.Endpoint{}
			}
			s.announced[container] = discovery.Endpoint{Address: reg.Address, Port: reg.Port}
		}
		s.poke() // a starting session can reach it now
		return
	}
	if ours {
		delete(s.announced, container)
	}
	a.applyLocked(s, s.m.ServiceGone(reg.AllocID, container))
}

// announcedEndpoint is the endpoint of a session's container as its last
// native service registration carried it.
func (a *Allocator) announcedEndpoint(s *session, container string) (discovery.Endpoint, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ep, ok := s.announced[container]
	return ep, ok
}

// reconciled runs after each (re)subscription: a running session whose
// allocation no longer exists at all (purged and garbage-collected while the
// stream was down) is gone.
func (a *Allocator) reconciled(jobs map[string]bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for jobID, s := range a.byJob {
		if jobs[jobID] || s.m.AllocID() == "" || s.m.Phase() != PhaseRunning {
			continue
		}
		a.dropLocked(s)
		if !s.stopping {
			a.events.push(allocator.Event{Kind: allocator.SessionGone, SandboxID: s.info.SandboxID,
				SessionID: s.info.SessionID, Reason: "allocation no longer exists"})
		}
		s.poke()
	}
}

// dropLocked stops tracking s.
func (a *Allocator) dropLocked(s *session) {
	for c := range s.probes {
		a.cancelProbeLocked(s, c)
	}
	if a.byJob[s.jobID] == s {
		delete(a.byJob, s.jobID)
	}
	if a.bySession[s.info.SessionID] == s {
		delete(a.bySession, s.info.SessionID)
	}
	a.resolver.Forget(s.info.SessionID)
}

func (a *Allocator) cancelProbeLocked(s *session, container string) {
	if cancel, ok := s.probes[container]; ok {
		cancel()
		delete(s.probes, container)
	}
}

// startProbeLocked asks a restarted container's /health until it answers,
// then marks it up (ContainerUp with its re-resolved endpoint).
func (a *Allocator) startProbeLocked(s *session, container string, gen uint64) {
	a.cancelProbeLocked(s, container)
	if a.closed {
		return
	}
	ctx, cancel := context.WithCancel(a.ctx)
	s.probes[container] = cancel
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer cancel()
		p := a.newProbe(s, container)
		t := time.NewTicker(a.cfg.HealthCheckInterval)
		defer t.Stop()
		for {
			if ep, ok := p.try(ctx, resolveIfDue); ok {
				a.mu.Lock()
				defer a.mu.Unlock()
				if ctx.Err() != nil || !s.m.MarkUp(container, gen) {
					return
				}
				delete(s.probes, container)
				if s.stopping {
					return
				}
				a.log.Info("container up", "session_id", s.info.SessionID, "container", container, "url", ep.URL)
				a.events.push(allocator.Event{Kind: allocator.ContainerUp, SandboxID: s.info.SandboxID,
					SessionID: s.info.SessionID, Container: container, Endpoint: &ep})
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// resolveEvery bounds how often a probe asks discovery while a container is
// not answering: /health is cheap and local, discovery is a call to Nomad
// (or Consul) that lists the instances of every session.
const resolveEvery = time.Second

// resolvePolicy says when a probe without an endpoint may ask discovery. An
// endpoint announced by the event stream is always taken, at no cost.
type resolvePolicy int

const (
	// resolveNever: only an announced endpoint (nothing can be registered
	// yet: the tasks are not running).
	resolveNever resolvePolicy = iota
	// resolveIfDue: ask discovery at most every resolveEvery.
	resolveIfDue
	// resolveNow: ask discovery now (the watcher saw something).
	resolveNow
)

// probe finds one container and asks its /health.
type probe struct {
	a           *Allocator
	s           *session
	q           discovery.Query
	runtime     string
	ep          *discovery.Endpoint
	lastResolve time.Time
	lastErr     error
}

func (a *Allocator) newProbe(s *session, container string) *probe {
	return &probe{a: a, s: s, runtime: s.runtimes[container], q: discovery.Query{
		Service: jobspecs.ServiceName(container), SandboxID: s.info.SandboxID, SessionID: s.info.SessionID, Container: container,
	}}
}

// try finds the container (the announced endpoint, else discovery as
// policy allows) when it has no endpoint yet and asks its /health once.
func (p *probe) try(ctx context.Context, policy resolvePolicy) (allocator.Endpoint, bool) {
	if p.ep != nil && p.lastErr != nil && time.Since(p.lastResolve) >= resolveEvery {
		// Not answering for a while: the endpoint may be stale.
		p.a.resolver.Forget(p.q.SessionID)
		p.ep = nil
	}
	if p.ep == nil {
		if ep, ok := p.a.announcedEndpoint(p.s, p.q.Container); ok {
			p.lastResolve = time.Now()
			p.ep = &ep
		} else {
			if policy == resolveNever || (policy == resolveIfDue && time.Since(p.lastResolve) < resolveEvery) {
				return allocator.Endpoint{}, false
			}
			p.lastResolve = time.Now()
			ep, err := p.a.resolver.Resolve(ctx, p.q)
			if err != nil {
				p.lastErr = err
				return allocator.Endpoint{}, false
			}
			p.ep = &ep
		}
	}
	url := p.ep.URL()
	if err := p.a.healthy(ctx, url); err != nil {
		p.lastErr = err
		return allocator.Endpoint{}, false
	}
	p.lastErr = nil
	return allocator.Endpoint{Container: p.q.Container, RuntimeType: p.runtime, URL: url}, true
}

func (a *Allocator) healthy(ctx context.Context, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+jobspecs.HealthPath, nil)
	if err != nil {
		return err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/health answered %d", resp.StatusCode)
	}
	return nil
}

// ---------------------------------------------------------------- helpers

// goTracked runs fn in a goroutine Close waits for, unless already closed.
func (a *Allocator) goTracked(fn func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	a.wg.Add(1)
	go func() { defer a.wg.Done(); fn() }()
}

// lookup returns the tracked session, adopting it from Nomad when this
// gateway has not seen it yet (restart without a List first).
func (a *Allocator) lookup(ctx context.Context, sessionID string) (*session, error) {
	a.mu.Lock()
	s := a.bySession[sessionID]
	a.mu.Unlock()
	if s != nil {
		return s, nil
	}
	if _, err := a.List(ctx); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bySession[sessionID], nil
}

// isNotFound says whether Nomad answered 404.
func isNotFound(err error) bool {
	var ure api.UnexpectedResponseError
	return errors.As(err, &ure) && ure.StatusCode() == http.StatusNotFound
}

func writeOpts(ctx context.Context) *api.WriteOptions {
	return (&api.WriteOptions{}).WithContext(ctx)
}

func queryOpts(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{}).WithContext(ctx)
}

// ---------------------------------------------------------------- events

// eventQueue is an unbounded FIFO in front of the Events channel: the
// watcher must never block on a slow reader, and events must not be dropped.
type eventQueue struct {
	mu     sync.Mutex
	items  []allocator.Event
	notify chan struct{}
	out    chan allocator.Event
}

func newEventQueue() *eventQueue {
	return &eventQueue{notify: make(chan struct{}, 1), out: make(chan allocator.Event)}
}

func (q *eventQueue) push(ev allocator.Event) {
	q.mu.Lock()
	q.items = append(q.items, ev)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *eventQueue) run(ctx context.Context) {
	defer close(q.out)
	for {
		q.mu.Lock()
		var next *allocator.Event
		if len(q.items) > 0 {
			ev := q.items[0]
			q.items = q.items[1:]
			next = &ev
		}
		q.mu.Unlock()
		if next == nil {
			select {
			case <-ctx.Done():
				return
			case <-q.notify:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case q.out <- *next:
		}
	}
}
