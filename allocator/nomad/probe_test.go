package nomad

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/allocator/discovery"
	"github.com/bay-sandbox/bay/jobspecs"
)

// countingResolver counts Resolve calls and answers from a static map (or
// delegates to next when set).
type countingResolver struct {
	mu    sync.Mutex
	calls int
	eps   map[string]discovery.Endpoint // container -> endpoint
	next  Resolver
}

func (r *countingResolver) Resolve(ctx context.Context, q discovery.Query) (discovery.Endpoint, error) {
	r.mu.Lock()
	r.calls++
	ep, ok := r.eps[q.Container]
	r.mu.Unlock()
	if r.next != nil {
		return r.next.Resolve(ctx, q)
	}
	if !ok {
		return discovery.Endpoint{}, discovery.ErrNoEndpoint
	}
	return ep, nil
}

func (r *countingResolver) Forget(sessionID string) {
	if r.next != nil {
		r.next.Forget(sessionID)
	}
}

func (r *countingResolver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// healthyServer is a runtime answering /health; it returns its endpoint.
func healthyServer(t *testing.T) discovery.Endpoint {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != jobspecs.HealthPath {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"status":"healthy"}`))
	}))
	t.Cleanup(srv.Close)
	host, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return discovery.Endpoint{Address: host, Port: p}
}

// offlineAllocator is an allocator whose Nomad is unreachable (its watcher
// just retries) with r as its resolver, tracking one starting session
// "se1" of sandbox "sb1" with one container "ship".
func offlineAllocator(t *testing.T, r Resolver) (*Allocator, *session) {
	t.Helper()
	a, err := New(Config{Address: "http://127.0.0.1:1", Resolver: r}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	s := &session{
		info:     allocator.SessionInfo{SandboxID: "sb1", SessionID: "se1"},
		jobID:    jobspecs.JobID("sb1", "se1"),
		runtimes: map[string]string{"ship": "ship"},
		m:        NewMachine([]string{"ship"}, map[string]string{"ship": jobspecs.TaskName("ship")}),
		wake:     make(chan struct{}, 1),
		probes:   map[string]context.CancelFunc{},
	}
	a.mu.Lock()
	a.byJob[s.jobID], a.bySession["se1"] = s, s
	a.mu.Unlock()
	return a, s
}

func registration(s *session, allocID string, ep discovery.Endpoint) *api.ServiceRegistration {
	return &api.ServiceRegistration{
		ServiceName: jobspecs.ServiceName("ship"), JobID: s.jobID, AllocID: allocID,
		Address: ep.Address, Port: ep.Port, Tags: jobspecs.ServiceTags("sb1", "se1", "ship"),
	}
}

func TestProbeTakesAnnouncedEndpointWithoutDiscovery(t *testing.T) {
	ep := healthyServer(t)
	r := &countingResolver{}
	a, s := offlineAllocator(t, r)
	ctx := context.Background()

	// Nothing announced and the tasks not running: discovery is not asked.
	if _, ok := a.newProbe(s, "ship").try(ctx, resolveNever); ok {
		t.Fatal("probe succeeded with nothing announced")
	}
	if n := r.count(); n != 0 {
		t.Fatalf("discovery asked %d times before anything could be registered", n)
	}

	a.observe(&api.Allocation{ID: "alloc-1", JobID: s.jobID, ModifyIndex: 5, ClientStatus: api.AllocClientStatusPending})
	// Another allocation's registration (an operator ran the job again) is
	// not the session's.
	a.serviceChanged(false, registration(s, "alloc-other", ep))
	if _, ok := a.newProbe(s, "ship").try(ctx, resolveNever); ok {
		t.Fatal("probe took a foreign allocation's registration")
	}

	select {
	case <-s.wake: // drain what the allocation update poked
	default:
	}
	a.serviceChanged(false, registration(s, "alloc-1", ep))
	select {
	case <-s.wake:
	default:
		t.Fatal("a registration did not wake the starting session")
	}
	got, ok := a.newProbe(s, "ship").try(ctx, resolveNever)
	if !ok {
		t.Fatal("probe did not take the announced endpoint")
	}
	if got.URL != ep.URL() || got.Container != "ship" || got.RuntimeType != "ship" {
		t.Fatalf("endpoint = %+v, want %s", got, ep.URL())
	}
	if n := r.count(); n != 0 {
		t.Fatalf("discovery asked %d times although the endpoint was announced", n)
	}

	// A deregistration withdraws it.
	a.serviceChanged(true, registration(s, "alloc-1", ep))
	if _, ok := a.newProbe(s, "ship").try(ctx, resolveNever); ok {
		t.Fatal("probe took a deregistered endpoint")
	}
}

func TestProbeAsksDiscoveryAsPolicyAllows(t *testing.T) {
	ep := healthyServer(t)
	r := &countingResolver{}
	a, s := offlineAllocator(t, r)
	ctx := context.Background()
	p := a.newProbe(s, "ship")

	if _, ok := p.try(ctx, resolveIfDue); ok || r.count() != 1 {
		t.Fatalf("first due try: ok=%v calls=%d, want a miss after 1 call", ok, r.count())
	}
	// Within resolveEvery a due try does not ask again, a forced one does.
	if _, ok := p.try(ctx, resolveIfDue); ok || r.count() != 1 {
		t.Fatalf("second due try: ok=%v calls=%d, want no new call", ok, r.count())
	}
	if _, ok := p.try(ctx, resolveNever); ok || r.count() != 1 {
		t.Fatalf("never: ok=%v calls=%d, want no new call", ok, r.count())
	}
	r.mu.Lock()
	r.eps = map[string]discovery.Endpoint{"ship": ep}
	r.mu.Unlock()
	got, ok := p.try(ctx, resolveNow)
	if !ok || r.count() != 2 || got.URL != ep.URL() {
		t.Fatalf("forced try: %+v ok=%v calls=%d, want %s after 2 calls", got, ok, r.count(), ep.URL())
	}
	// Found once, /health alone is asked from then on.
	if _, ok := p.try(ctx, resolveNow); !ok || r.count() != 2 {
		t.Fatalf("try with an endpoint: ok=%v calls=%d, want no new call", ok, r.count())
	}
}

// TestNomadStartTakesAnnouncedEndpoints: with native services a start finds
// its containers through the watcher's registration events, not by listing
// every session's instances on each allocation update (before: several
// discovery calls per container per start, growing with concurrent starts).
func TestNomadStartTakesAnnouncedEndpoints(t *testing.T) {
	addr := nomadAgent(t)
	ctx := ctxT(t, 2*time.Minute)
	client, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	r := &countingResolver{next: discovery.NewNomad(client, hclog.NewNullLogger())}
	cfg := fakeConfig(addr, "gw-announce")
	cfg.Resolver = r
	a := newAllocator(t, cfg)

	p := fakeProfile()
	sess, err := a.Start(ctx, allocator.StartRequest{SandboxID: "sba", SessionID: "sea", Profile: p})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = a.Destroy(context.Background(), "sea") })
	for _, ep := range sess.Endpoints {
		if err := health(ep.URL); err != nil {
			t.Fatalf("%s /health at %s: %v", ep.Container, ep.URL, err)
		}
	}
	// At most one call per container: the allocation update saying the
	// tasks run may beat the registration event to the watcher.
	if n := r.count(); n > len(p.Containers) {
		t.Fatalf("start asked discovery %d times for %d containers", n, len(p.Containers))
	}
	t.Logf("discovery calls during start: %d", r.count())
	if err := a.Destroy(ctx, "sea"); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
}
