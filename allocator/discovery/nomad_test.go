package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"
)

// fakeNomad mimics GET /v1/service/<name>: every registration of the name,
// 200 with [] for an unknown one, X-Nomad-Index on answers.
type fakeNomad struct {
	mu       sync.Mutex
	regs     map[string][]*nomadapi.ServiceRegistration
	requests map[string]int
	status   int           // non-zero: answer with this status
	hang     chan struct{} // non-nil: requests wait for the client to go away
	arrived  chan string
}

func newFakeNomad(t *testing.T) (*fakeNomad, *Nomad) {
	f := &fakeNomad{regs: map[string][]*nomadapi.ServiceRegistration{}, requests: map[string]int{}, arrived: make(chan string, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/v1/service/")
		if !ok || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		f.mu.Lock()
		f.requests[name]++
		regs, status, hang := f.regs[name], f.status, f.hang
		f.mu.Unlock()
		f.arrived <- name
		if hang != nil {
			<-r.Context().Done()
			return
		}
		if status != 0 {
			http.Error(w, "no path to region", status)
			return
		}
		if regs == nil {
			regs = []*nomadapi.ServiceRegistration{}
		}
		w.Header().Set("X-Nomad-Index", "42")
		_ = json.NewEncoder(w).Encode(regs)
	}))
	t.Cleanup(srv.Close)
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return f, NewNomad(client, hclog.NewNullLogger())
}

func (f *fakeNomad) register(name, addr string, port int, tags []string, modify uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.regs[name] = append(f.regs[name], &nomadapi.ServiceRegistration{
		ID: name + "-" + addr, ServiceName: name, Namespace: "default", JobID: "bay-x",
		Address: addr, Port: port, Tags: tags, ModifyIndex: modify,
	})
}

func (f *fakeNomad) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[name]
}

func TestNomadResolveFiltersByTags(t *testing.T) {
	f, n := newFakeNomad(t)
	f.register("bay-ship", "10.0.0.1", 21001, tags("sbx-s1", "s1", "ship"), 5)
	f.register("bay-ship", "10.0.0.2", 21002, tags("sbx-s2", "s2", "ship"), 6)
	f.register("bay-gull", "10.0.0.1", 21003, tags("sbx-s1", "s1", "gull"), 7)
	ctx := context.Background()

	for _, tc := range []struct {
		q    Query
		want string
	}{
		{q("s1", "ship"), "http://10.0.0.1:21001"},
		{q("s2", "ship"), "http://10.0.0.2:21002"},
		{q("s1", "gull"), "http://10.0.0.1:21003"},
	} {
		ep, err := n.Resolve(ctx, tc.q)
		if err != nil || ep.URL() != tc.want {
			t.Errorf("%+v = %v, %v; want %s", tc.q, ep.URL(), err, tc.want)
		}
	}
	if _, err := n.Resolve(ctx, q("s3", "ship")); !errors.Is(err, ErrNoEndpoint) {
		t.Errorf("unknown session: %v", err)
	}
	if _, err := n.Resolve(ctx, q("s1", "nope")); !errors.Is(err, ErrNoEndpoint) {
		t.Errorf("unknown service: %v", err)
	}
	other := q("s1", "ship")
	other.SandboxID = "sbx-other"
	if _, err := n.Resolve(ctx, other); !errors.Is(err, ErrNoEndpoint) {
		t.Errorf("other sandbox matched: %v", err)
	}
}

func TestNomadCacheAndForget(t *testing.T) {
	f, n := newFakeNomad(t)
	ctx := context.Background()

	// A miss is not cached: once the service registers, it is found.
	if _, err := n.Resolve(ctx, q("s1", "ship")); !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("before registration: %v", err)
	}
	f.register("bay-ship", "10.0.0.1", 21001, tags("sbx-s1", "s1", "ship"), 5)
	if ep, err := n.Resolve(ctx, q("s1", "ship")); err != nil || ep.Port != 21001 {
		t.Fatalf("after registration = %+v, %v", ep, err)
	}
	// A hit is served from the cache.
	if ep, err := n.Resolve(ctx, q("s1", "ship")); err != nil || ep.Port != 21001 {
		t.Fatalf("cached = %+v, %v", ep, err)
	}
	if got := f.count("bay-ship"); got != 2 {
		t.Errorf("requests = %d, want 2 (miss, then fill; the hit asks nothing)", got)
	}
	// Forget drops it: the next resolve asks Nomad and sees the newest
	// registration.
	f.register("bay-ship", "10.0.0.9", 21009, tags("sbx-s1", "s1", "ship"), 9)
	n.Forget("s1")
	if ep, err := n.Resolve(ctx, q("s1", "ship")); err != nil || ep.Port != 21009 {
		t.Errorf("after forget = %+v, %v; want the newest registration", ep, err)
	}
	if got := f.count("bay-ship"); got != 3 {
		t.Errorf("requests = %d, want 3", got)
	}
}

func TestNomadErrors(t *testing.T) {
	f, n := newFakeNomad(t)
	f.status = http.StatusInternalServerError
	if _, err := n.Resolve(context.Background(), q("s1", "ship")); err == nil || errors.Is(err, ErrNoEndpoint) {
		t.Errorf("500: err = %v, want a query error", err)
	}
	if _, err := n.Resolve(context.Background(), Query{SessionID: "s1"}); err == nil {
		t.Errorf("query without container accepted")
	}

	f.mu.Lock()
	f.status, f.hang = 0, make(chan struct{})
	f.mu.Unlock()
	for len(f.arrived) > 0 { // forget the requests made so far
		<-f.arrived
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := n.Resolve(ctx, q("s1", "ship"))
		errc <- err
	}()
	recv(t, f.arrived, "the request", func(string) bool { return true })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Resolve ignored its context")
	}
}

func TestStatic(t *testing.T) {
	s := NewStatic(map[Query]Endpoint{
		{SessionID: "s1", Container: "ship"}: {Address: "127.0.0.1", Port: 8123},
	})
	ctx := context.Background()
	if ep, err := s.Resolve(ctx, q("s1", "ship")); err != nil || ep.URL() != "http://127.0.0.1:8123" {
		t.Errorf("resolve = %v, %v", ep, err)
	}
	s.Set(q("s1", "gull"), Endpoint{Address: "::1", Port: 8115})
	if ep, err := s.Resolve(ctx, q("s1", "gull")); err != nil || ep.URL() != "http://[::1]:8115" {
		t.Errorf("ipv6 url = %v, %v", ep.URL(), err)
	}
	s.Set(q("s2", "ship"), Endpoint{Address: "127.0.0.1", Port: 9000})
	s.Forget("s1")
	if _, err := s.Resolve(ctx, q("s1", "ship")); !errors.Is(err, ErrNoEndpoint) {
		t.Errorf("after forget: %v", err)
	}
	if _, err := s.Resolve(ctx, q("s2", "ship")); err != nil {
		t.Errorf("other session forgotten too: %v", err)
	}
	s.Delete(q("s2", "ship"))
	if _, err := s.Resolve(ctx, q("s2", "ship")); !errors.Is(err, ErrNoEndpoint) {
		t.Errorf("after delete: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Resolve(cancelled, q("s2", "ship")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}
}
