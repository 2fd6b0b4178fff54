package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"
)

// Nomad resolves from Nomad's native service registrations
// (GET /v1/service/<name>). A session's ports are fixed for the life of its
// allocation (no reschedule), so a found endpoint is cached until Forget;
// misses are never cached and always ask Nomad again.
//
// Registrations carry no check status: a task-level service exists while its
// task runs, and the allocator only resolves once the task's checks pass.
type Nomad struct {
	client *nomadapi.Client
	log    hclog.Logger

	mu    sync.Mutex
	cache map[Query]Endpoint // keys normalised: Service filled in
}

// NewNomad returns a resolver using client's address, region, namespace and
// token.
func NewNomad(client *nomadapi.Client, log hclog.Logger) *Nomad {
	return &Nomad{client: client, log: log.Named("discovery.nomad"), cache: map[Query]Endpoint{}}
}

// Resolve returns the endpoint of q's container.
func (n *Nomad) Resolve(ctx context.Context, q Query) (Endpoint, error) {
	if err := q.validate(); err != nil {
		return Endpoint{}, err
	}
	q.Service = q.ServiceName()
	n.mu.Lock()
	ep, ok := n.cache[q]
	n.mu.Unlock()
	if ok {
		return ep, nil
	}

	regs, _, err := n.client.Services().Get(q.Service, (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return Endpoint{}, fmt.Errorf("list nomad service %s: %w", q.Service, ctxErr)
		}
		var ue nomadapi.UnexpectedResponseError
		if errors.As(err, &ue) && ue.StatusCode() == http.StatusNotFound {
			return Endpoint{}, noEndpoint(q)
		}
		return Endpoint{}, fmt.Errorf("list nomad service %s: %w", q.Service, err)
	}
	var best *nomadapi.ServiceRegistration
	for _, r := range regs {
		if q.matches(r.Tags) && (best == nil || r.ModifyIndex > best.ModifyIndex) {
			best = r
		}
	}
	if best == nil {
		return Endpoint{}, noEndpoint(q)
	}
	ep = Endpoint{Address: best.Address, Port: best.Port}
	n.mu.Lock()
	n.cache[q] = ep
	n.mu.Unlock()
	n.log.Debug("resolved", "service", q.Service, "session_id", q.SessionID, "container", q.Container, "url", ep.URL())
	return ep, nil
}

// Forget drops the cached endpoints of a session (it stopped, or one of its
// containers went down and may come back elsewhere).
func (n *Nomad) Forget(sessionID string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for q := range n.cache {
		if q.SessionID == sessionID {
			delete(n.cache, q)
		}
	}
}
