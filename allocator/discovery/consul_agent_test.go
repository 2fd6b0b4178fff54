package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/internal/testutil"
	"github.com/bay-sandbox/bay/jobspecs"
)

// These tests run the resolver against a real `consul agent -dev` (built by
// `make consul`), with services registered the way Nomad registers Bay's:
// through the local agent, named by jobspecs.ServiceName, tagged by
// jobspecs.ServiceTags, with an HTTP check that starts critical.

// checks is an HTTP server answering Consul's health checks: each
// registration's check path answers with the status set for it.
type checks struct {
	srv *httptest.Server
	mu  sync.Mutex
	by  map[string]int
}

func newChecks(t *testing.T) *checks {
	c := &checks{by: map[string]int{}}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		code, ok := c.by[strings.TrimPrefix(r.URL.Path, "/")]
		c.mu.Unlock()
		if !ok {
			code = http.StatusServiceUnavailable
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *checks) set(id string, code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.by[id] = code
}

type agentEnv struct {
	agent  *testutil.ConsulAgent
	client *consulapi.Client
	checks *checks
}

func newAgentEnv(t *testing.T) *agentEnv {
	agent := testutil.StartConsul(t)
	client, err := consulapi.NewClient(&consulapi.Config{Address: agent.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	return &agentEnv{agent: agent, client: client, checks: newChecks(t)}
}

// register registers one container of a session as a Nomad client agent
// does: service ID "_nomad-task-<alloc>-<task>-<service>-<port label>",
// the check starting critical until it first passes.
func (e *agentEnv) register(t *testing.T, session, container string, port int) string {
	t.Helper()
	name := jobspecs.ServiceName(container)
	id := fmt.Sprintf("_nomad-task-%s-%s-%s-http", session, container, name)
	reg := &consulapi.AgentServiceRegistration{
		ID:      id,
		Name:    name,
		Tags:    jobspecs.ServiceTags("sbx-"+session, session, container),
		Address: "127.0.0.1",
		Port:    port,
		Checks: consulapi.AgentServiceChecks{{
			Name:     "service: " + name + " check",
			HTTP:     e.checks.srv.URL + "/" + id,
			Interval: "1s",
			Timeout:  "1s",
			Status:   consulapi.HealthCritical,
		}},
	}
	if err := e.client.Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
	return id
}

func (e *agentEnv) resolver(t *testing.T) (*Consul, <-chan stored) {
	c := NewConsul(e.client, hclog.NewNullLogger())
	ch := make(chan stored, 1000)
	c.onStore = func(service string, index uint64) {
		select {
		case ch <- stored{service, index}:
		default:
		}
	}
	t.Cleanup(c.Close)
	return c, ch
}

// eventually polls Resolve until ok accepts its answer.
func eventually(t *testing.T, c *Consul, qu Query, what string, ok func(Endpoint, error) bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	var ep Endpoint
	var err error
	for time.Now().Before(deadline) {
		ep, err = c.Resolve(context.Background(), qu)
		if ok(ep, err) {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: still %+v, %v after 30s", what, ep, err)
	return 0
}

func noEndpointYet(_ Endpoint, err error) bool { return errors.Is(err, ErrNoEndpoint) }

func port(p int) func(Endpoint, error) bool {
	return func(ep Endpoint, err error) bool { return err == nil && ep.Port == p }
}

func TestConsulAgentPassingOnlyAndFailingCheck(t *testing.T) {
	e := newAgentEnv(t)
	c, _ := e.resolver(t)
	ctx := context.Background()

	ship := e.register(t, "s1", "ship", 20001)
	gull := e.register(t, "s1", "gull", 20002)
	other := e.register(t, "s2", "ship", 20003)
	e.checks.set(other, http.StatusOK)

	// Both s1 checks start critical and their endpoints fail: not resolvable.
	if ep, err := c.Resolve(ctx, q("s1", "ship")); !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("critical ship = %+v, %v; want ErrNoEndpoint", ep, err)
	}
	e.checks.set(ship, http.StatusOK)
	e.checks.set(gull, http.StatusOK)
	took := eventually(t, c, q("s1", "ship"), "ship to pass", port(20001))
	t.Logf("ship resolvable %v after its check was made to pass", took)
	eventually(t, c, q("s1", "gull"), "gull to pass", port(20002))
	eventually(t, c, q("s2", "ship"), "s2's ship", port(20003))

	// The watch is primed now; a failing check drops the endpoint.
	e.checks.set(gull, http.StatusInternalServerError)
	took = eventually(t, c, q("s1", "gull"), "failing gull to drop", noEndpointYet)
	t.Logf("failing gull dropped after %v (check interval 1s)", took)
	if ep, err := c.Resolve(ctx, q("s1", "ship")); err != nil || ep.Port != 20001 {
		t.Errorf("ship after gull failed = %+v, %v", ep, err)
	}
	// A check recovering brings it back.
	e.checks.set(gull, http.StatusOK)
	eventually(t, c, q("s1", "gull"), "gull to recover", port(20002))
}

func TestConsulAgentDeregistrationReachesWatch(t *testing.T) {
	e := newAgentEnv(t)
	c, stores := e.resolver(t)
	id := e.register(t, "s1", "ship", 20001)
	e.checks.set(id, http.StatusOK)
	eventually(t, c, q("s1", "ship"), "ship to pass", port(20001))
	// Let the watch block, then deregister: its blocking query must answer
	// with the change (not the direct query of a cache miss).
	time.Sleep(200 * time.Millisecond)
	for len(stores) > 0 {
		<-stores
	}
	start := time.Now()
	if err := e.client.Agent().ServiceDeregister(id); err != nil {
		t.Fatal(err)
	}
	recv(t, stores, "the watch to see the deregistration", func(s stored) bool { return s.service == "bay-ship" })
	t.Logf("watch saw the deregistration after %v", time.Since(start))
	c.mu.Lock()
	w := c.watches["bay-ship"]
	fresh, n := w.fresh, len(w.entries)
	c.mu.Unlock()
	if !fresh || n != 0 {
		t.Errorf("cache after deregistration: fresh %v, %d entries; want fresh and empty", fresh, n)
	}
	if ep, err := c.Resolve(context.Background(), q("s1", "ship")); !errors.Is(err, ErrNoEndpoint) {
		t.Errorf("deregistered ship = %+v, %v", ep, err)
	}
}

// The agent behind the address is restarted under a running watch: while it
// is down the resolver answers from its cache; once a new agent (whose index
// starts lower) is up, its state is what the resolver reports, and a change
// in it is seen at once, not after the blocking wait of the old index.
func TestConsulAgentRestartedUnderWatch(t *testing.T) {
	e := newAgentEnv(t)
	c, _ := e.resolver(t)
	id := e.register(t, "s1", "ship", 20001)
	e.checks.set(id, http.StatusOK)
	eventually(t, c, q("s1", "ship"), "ship to pass", port(20001))
	// Push the old agent's index for the service well past what a new
	// agent will start with.
	for i := range 30 {
		extra := e.register(t, fmt.Sprintf("x%d", i), "ship", 21000+i)
		if err := e.client.Agent().ServiceDeregister(extra); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // the watch is blocked on the high index
	c.mu.Lock()
	oldIndex := c.watches["bay-ship"].index
	c.mu.Unlock()

	e.agent.Stop()
	// Consul down: answers come from the cache, as designed.
	if ep, err := c.Resolve(context.Background(), q("s1", "ship")); err != nil || ep.Port != 20001 {
		t.Fatalf("resolve with Consul down = %+v, %v; want the cached endpoint", ep, err)
	}
	if _, err := c.Resolve(context.Background(), q("s9", "ship")); err == nil || errors.Is(err, ErrNoEndpoint) {
		t.Errorf("unknown session with Consul down: err = %v, want a query error", err)
	}

	e.agent.Start()
	id = e.register(t, "s1", "ship", 20009)
	e.checks.set(id, http.StatusOK)
	eventually(t, c, q("s1", "ship"), "the new agent's ship", port(20009))
	// Wait for the watch to be back on the new agent, blocked on its index.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.mu.Lock()
		w := c.watches["bay-ship"]
		fresh, index := w.fresh, w.index
		c.mu.Unlock()
		if fresh && index < oldIndex {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch not back on the new agent (fresh %v, index %d, old index %d)", fresh, index, oldIndex)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := e.client.Agent().ServiceDeregister(id); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, c, q("s1", "ship"), "the deregistration on the new agent", noEndpointYet)
	t.Logf("deregistration on the restarted agent noticed after %v", took)
}
