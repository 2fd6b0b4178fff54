// Package discovery finds where a container of a session is served: from
// Consul's health API (passing instances only), from Nomad's native service
// registrations, or from a fixed map (tests, the local allocator). Instances
// are told apart by the tags jobspecs puts on every service.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"

	"github.com/bay-sandbox/bay/jobspecs"
)

// Sentinel errors.
var (
	// ErrNoEndpoint: no healthy instance matches the query (yet).
	ErrNoEndpoint = errors.New("no healthy endpoint")
	// ErrClosed: the resolver was closed.
	ErrClosed = errors.New("discovery closed")
)

// Endpoint is an address a runtime is served on.
type Endpoint struct {
	Address string
	Port    int
}

// URL is the runtime's base URL, e.g. "http://10.0.0.5:24512".
func (e Endpoint) URL() string {
	return "http://" + net.JoinHostPort(e.Address, strconv.Itoa(e.Port))
}

// Query names one container of one session. Service defaults to
// jobspecs.ServiceName(Container); SandboxID is matched when set.
type Query struct {
	Service   string
	SandboxID string
	SessionID string
	Container string
}

// ServiceName is the service the query looks in.
func (q Query) ServiceName() string {
	if q.Service != "" {
		return q.Service
	}
	return jobspecs.ServiceName(q.Container)
}

func (q Query) validate() error {
	if q.SessionID == "" || q.Container == "" {
		return fmt.Errorf("discovery query needs a session id and a container (got %q, %q)", q.SessionID, q.Container)
	}
	return nil
}

// matches reports whether an instance's tags name the query's session and
// container (and sandbox, when the query gives one).
func (q Query) matches(tags []string) bool {
	if !slices.Contains(tags, jobspecs.SessionTag(q.SessionID)) || !slices.Contains(tags, jobspecs.ContainerTag(q.Container)) {
		return false
	}
	return q.SandboxID == "" || slices.Contains(tags, jobspecs.SandboxTag(q.SandboxID))
}

func noEndpoint(q Query) error {
	return fmt.Errorf("resolve %s of session %s: %w", q.Container, q.SessionID, ErrNoEndpoint)
}

type staticKey struct{ session, container string }

// Static resolves from a fixed, editable map keyed by session and container.
// It is safe for concurrent use.
type Static struct {
	mu sync.RWMutex
	m  map[staticKey]Endpoint
}

// NewStatic returns a Static holding m (only SessionID and Container of each
// key matter).
func NewStatic(m map[Query]Endpoint) *Static {
	s := &Static{m: make(map[staticKey]Endpoint, len(m))}
	for q, ep := range m {
		s.m[staticKey{q.SessionID, q.Container}] = ep
	}
	return s
}

// Set adds or replaces the endpoint of q's container.
func (s *Static) Set(q Query, ep Endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[staticKey{q.SessionID, q.Container}] = ep
}

// Delete removes the endpoint of q's container.
func (s *Static) Delete(q Query) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, staticKey{q.SessionID, q.Container})
}

// Resolve returns the endpoint set for q's container.
func (s *Static) Resolve(ctx context.Context, q Query) (Endpoint, error) {
	if err := ctx.Err(); err != nil {
		return Endpoint{}, err
	}
	if err := q.validate(); err != nil {
		return Endpoint{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ep, ok := s.m[staticKey{q.SessionID, q.Container}]
	if !ok {
		return Endpoint{}, noEndpoint(q)
	}
	return ep, nil
}

// Forget removes every endpoint of a session.
func (s *Static) Forget(sessionID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.m {
		if k.session == sessionID {
			delete(s.m, k)
		}
	}
}
