package discovery

import (
	"context"
	"errors"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
)

// resolver is what the allocators consume; every implementation must fit.
type resolver interface {
	Resolve(ctx context.Context, q Query) (Endpoint, error)
	Forget(sessionID string)
}

var (
	_ resolver = (*Consul)(nil)
	_ resolver = (*Nomad)(nil)
	_ resolver = (*Static)(nil)
)

type stored struct {
	service string
	index   uint64
}

// newConsul returns a resolver whose watches report every stored answer on
// the returned channel.
func newConsul(t *testing.T, f *fakeConsul) (*Consul, <-chan stored) {
	c := NewConsul(f.client(), hclog.NewNullLogger())
	ch := make(chan stored, 1000)
	c.onStore = func(service string, index uint64) { ch <- stored{service, index} }
	t.Cleanup(c.Close)
	return c, ch
}

func q(session, container string) Query {
	return Query{SandboxID: "sbx-" + session, SessionID: session, Container: container}
}

func TestConsulPassingOnlyAndTagFiltering(t *testing.T) {
	f := newFakeConsul(t)
	f.set("bay-ship",
		instance{node: "n1", nodeAddr: "10.0.0.1", addr: "10.0.0.1", port: 1001, tags: tags("sbx-s1", "s1", "ship"), status: consulapi.HealthCritical},
		instance{node: "n2", nodeAddr: "10.0.0.2", addr: "", port: 1002, tags: tags("sbx-s2", "s2", "ship"), status: consulapi.HealthPassing},
		instance{node: "n3", nodeAddr: "10.0.0.3", addr: "192.168.0.3", port: 1003, tags: tags("sbx-s3", "s3", "ship"), status: consulapi.HealthPassing},
		instance{node: "n3", nodeAddr: "10.0.0.3", addr: "192.168.0.3", port: 1005, tags: tags("sbx-s3", "s3", "other"), status: consulapi.HealthPassing},
	)
	c, _ := newConsul(t, f)
	ctx := context.Background()

	if _, err := c.Resolve(ctx, q("s1", "ship")); !errors.Is(err, ErrNoEndpoint) {
		t.Errorf("critical instance: err = %v, want ErrNoEndpoint", err)
	}
	ep, err := c.Resolve(ctx, q("s2", "ship"))
	if err != nil || ep != (Endpoint{Address: "10.0.0.2", Port: 1002}) {
		t.Errorf("s2 = %+v, %v; want the node address when the service has none", ep, err)
	}
	ep, err = c.Resolve(ctx, q("s3", "ship"))
	if err != nil || ep.URL() != "http://192.168.0.3:1003" {
		t.Errorf("s3 = %+v, %v", ep, err)
	}
	wrongSandbox := q("s3", "ship")
	wrongSandbox.SandboxID = "sbx-other"
	if _, err := c.Resolve(ctx, wrongSandbox); !errors.Is(err, ErrNoEndpoint) {
		t.Errorf("other sandbox's tags matched: %v", err)
	}
	if _, err := c.Resolve(ctx, Query{Container: "ship"}); err == nil || errors.Is(err, ErrNoEndpoint) {
		t.Errorf("query without session: err = %v, want a validation error", err)
	}
	for _, r := range f.requestsFor("bay-ship") {
		if !r.passing {
			t.Errorf("request %+v did not ask for passing instances only", r)
		}
	}
}

func TestConsulWatchKeepsCacheFresh(t *testing.T) {
	f := newFakeConsul(t)
	f.set("bay-gull", instance{nodeAddr: "10.0.0.1", addr: "10.0.0.1", port: 2001, tags: tags("sbx-s1", "s1", "gull"), status: consulapi.HealthPassing, modifyIndex: 1})
	c, stores := newConsul(t, f)
	c.wait = 30 * time.Second
	ctx := context.Background()

	ep, err := c.Resolve(ctx, q("s1", "gull"))
	if err != nil || ep.Port != 2001 {
		t.Fatalf("first resolve = %+v, %v", ep, err)
	}
	// The watch blocks on the index of that first answer.
	blocked := recv(t, f.waiting, "the watch's blocking query", func(r request) bool { return r.service == "bay-gull" && r.index > 0 })
	if blocked.wait != "30000ms" {
		t.Errorf("blocking query wait = %q, want 30000ms", blocked.wait)
	}

	// Served from the cache: no further direct query.
	for range 3 {
		if ep, err := c.Resolve(ctx, q("s1", "gull")); err != nil || ep.Port != 2001 {
			t.Fatalf("cached resolve = %+v, %v", ep, err)
		}
	}
	if n := f.nonBlocking("bay-gull"); n != 1 {
		t.Errorf("direct queries = %d, want 1 (later resolves come from the cache)", n)
	}

	// Consul's answer changes (the container came back on another port):
	// the blocking query returns it and the cache follows.
	idx := f.set("bay-gull", instance{nodeAddr: "10.0.0.1", addr: "10.0.0.1", port: 2002, tags: tags("sbx-s1", "s1", "gull"), status: consulapi.HealthPassing, modifyIndex: 2})
	recv(t, stores, "the watch to store the new answer", func(s stored) bool { return s.service == "bay-gull" && s.index == idx })
	if ep, err := c.Resolve(ctx, q("s1", "gull")); err != nil || ep.Port != 2002 {
		t.Errorf("after change = %+v, %v; want port 2002", ep, err)
	}
	if n := f.nonBlocking("bay-gull"); n != 1 {
		t.Errorf("direct queries = %d, want still 1", n)
	}

	// The instance turns critical: the watch drops it and Resolve says so.
	idx = f.set("bay-gull", instance{nodeAddr: "10.0.0.1", addr: "10.0.0.1", port: 2002, tags: tags("sbx-s1", "s1", "gull"), status: consulapi.HealthCritical})
	recv(t, stores, "the watch to store the critical answer", func(s stored) bool { return s.index == idx })
	if _, err := c.Resolve(ctx, q("s1", "gull")); !errors.Is(err, ErrNoEndpoint) {
		t.Errorf("critical: err = %v, want ErrNoEndpoint", err)
	}
	// Every blocking query carried the index of the answer before it.
	var last uint64
	for _, r := range f.requestsFor("bay-gull") {
		if r.index > 0 {
			if r.index < last {
				t.Errorf("blocking index went backwards: %d after %d", r.index, last)
			}
			last = r.index
		}
	}
}

func TestConsulMissAsksConsulAtOnce(t *testing.T) {
	f := newFakeConsul(t)
	f.set("bay-ship", instance{addr: "10.0.0.1", port: 1001, tags: tags("sbx-s1", "s1", "ship"), status: consulapi.HealthPassing})
	c, _ := newConsul(t, f)
	ctx := context.Background()
	if _, err := c.Resolve(ctx, q("s1", "ship")); err != nil {
		t.Fatal(err)
	}
	// s2 is not in the cache; Consul knows it already (the watch may not
	// have heard): the miss must be answered from Consul, not the cache.
	f.mu.Lock()
	f.services["bay-ship"] = append(f.services["bay-ship"], instance{addr: "10.0.0.2", port: 1002, tags: tags("sbx-s2", "s2", "ship"), status: consulapi.HealthPassing})
	f.mu.Unlock() // index unchanged: the watch stays blocked
	ep, err := c.Resolve(ctx, q("s2", "ship"))
	if err != nil || ep.Port != 1002 {
		t.Errorf("miss = %+v, %v", ep, err)
	}
	if n := f.nonBlocking("bay-ship"); n != 2 {
		t.Errorf("direct queries = %d, want 2", n)
	}
}

func TestConsulForgetStopsUnusedWatch(t *testing.T) {
	f := newFakeConsul(t)
	f.set("bay-ship",
		instance{addr: "10.0.0.1", port: 1001, tags: tags("sbx-s1", "s1", "ship"), status: consulapi.HealthPassing},
		instance{addr: "10.0.0.2", port: 1002, tags: tags("sbx-s2", "s2", "ship"), status: consulapi.HealthPassing},
	)
	c, _ := newConsul(t, f)
	ctx := context.Background()
	for _, s := range []string{"s1", "s2"} {
		if _, err := c.Resolve(ctx, q(s, "ship")); err != nil {
			t.Fatal(err)
		}
	}
	recv(t, f.waiting, "the watch", func(r request) bool { return r.index > 0 })

	c.Forget("s1")
	c.mu.Lock()
	n := len(c.watches)
	c.mu.Unlock()
	if n != 1 {
		t.Fatalf("watches after forgetting one of two sessions = %d, want 1", n)
	}
	c.Forget("s2")
	// The watch's blocking query is abandoned: its handler sees the client go.
	recv(t, f.ended, "the watch's query to end", func(r request) bool { return r.index > 0 })
	c.mu.Lock()
	n = len(c.watches)
	c.mu.Unlock()
	if n != 0 {
		t.Errorf("watches after forgetting every session = %d, want 0", n)
	}

	// Evicted: the next resolve asks Consul again and starts a new watch.
	before := f.nonBlocking("bay-ship")
	if _, err := c.Resolve(ctx, q("s1", "ship")); err != nil {
		t.Fatal(err)
	}
	if after := f.nonBlocking("bay-ship"); after != before+1 {
		t.Errorf("direct queries %d → %d, want one more after Forget", before, after)
	}
}

func TestConsulResolveHonoursContext(t *testing.T) {
	f := newFakeConsul(t)
	f.hang["bay-ship"] = true
	c, _ := newConsul(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Resolve(ctx, q("s1", "ship"))
		errc <- err
	}()
	recv(t, f.waiting, "the request to reach Consul", func(r request) bool { return r.service == "bay-ship" })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Resolve did not return after its context was cancelled")
	}
}

func TestConsulCloseStopsWatches(t *testing.T) {
	f := newFakeConsul(t)
	f.set("bay-ship", instance{addr: "10.0.0.1", port: 1001, tags: tags("sbx-s1", "s1", "ship"), status: consulapi.HealthPassing})
	f.set("bay-gull", instance{addr: "10.0.0.1", port: 1002, tags: tags("sbx-s1", "s1", "gull"), status: consulapi.HealthPassing})
	c := NewConsul(f.client(), hclog.NewNullLogger())
	for _, name := range []string{"ship", "gull"} {
		if _, err := c.Resolve(context.Background(), q("s1", name)); err != nil {
			t.Fatal(err)
		}
	}
	recv(t, f.waiting, "first watch", func(r request) bool { return r.index > 0 })
	recv(t, f.waiting, "second watch", func(r request) bool { return r.index > 0 })

	c.Close() // returns only once both watch goroutines have ended
	recv(t, f.ended, "a watch query to end", func(r request) bool { return r.index > 0 })
	recv(t, f.ended, "the other watch query to end", func(r request) bool { return r.index > 0 })
	if _, err := c.Resolve(context.Background(), q("s1", "ship")); !errors.Is(err, ErrClosed) {
		t.Errorf("resolve after close: %v, want ErrClosed", err)
	}
	c.Close() // idempotent
}

func TestConsulFailingWatchFallsBack(t *testing.T) {
	f := newFakeConsul(t)
	f.set("bay-ship", instance{addr: "10.0.0.1", port: 1001, tags: tags("sbx-s1", "s1", "ship"), status: consulapi.HealthPassing})
	c, _ := newConsul(t, f)
	retries := make(chan time.Duration, 100)
	c.after = func(d time.Duration) <-chan time.Time {
		retries <- d
		return make(chan time.Time) // never fires: the watch stays in backoff
	}
	f.mu.Lock()
	f.failBlock = true
	f.mu.Unlock()
	ctx := context.Background()
	if _, err := c.Resolve(ctx, q("s1", "ship")); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, retries, "the watch to back off", func(time.Duration) bool { return true }); d != c.backoffs[0] {
		t.Errorf("first backoff = %v, want %v", d, c.backoffs[0])
	}

	// The watch is failing, so the cache is not trusted: Resolve asks Consul,
	// every time (a direct answer does not make the cache trusted again while
	// nothing keeps it current).
	before := f.nonBlocking("bay-ship")
	for range 2 {
		if ep, err := c.Resolve(ctx, q("s1", "ship")); err != nil || ep.Port != 1001 {
			t.Fatalf("resolve with a failing watch = %+v, %v", ep, err)
		}
	}
	if after := f.nonBlocking("bay-ship"); after != before+2 {
		t.Errorf("direct queries %d → %d, want two more", before, after)
	}

	// Consul fails altogether: a cached instance is still answered, an
	// unknown one is an error that is not ErrNoEndpoint.
	f.mu.Lock()
	f.failAll = true
	f.mu.Unlock()
	if ep, err := c.Resolve(ctx, q("s1", "ship")); err != nil || ep.Port != 1001 {
		t.Errorf("resolve with Consul down = %+v, %v; want the cached endpoint", ep, err)
	}
	if _, err := c.Resolve(ctx, q("s9", "ship")); err == nil || errors.Is(err, ErrNoEndpoint) {
		t.Errorf("unknown session with Consul down: err = %v, want a query error", err)
	}
}

func TestConsulIndexReset(t *testing.T) {
	f := newFakeConsul(t)
	f.set("bay-ship", instance{addr: "10.0.0.1", port: 1001, tags: tags("sbx-s1", "s1", "ship"), status: consulapi.HealthPassing})
	c, stores := newConsul(t, f)
	if _, err := c.Resolve(context.Background(), q("s1", "ship")); err != nil {
		t.Fatal(err)
	}
	recv(t, f.waiting, "the watch", func(r request) bool { return r.index > 0 })
	// Consul's state is restored from an older snapshot: the index goes
	// backwards. The watch must accept the answer and start over.
	f.mu.Lock()
	f.index = 3
	f.services["bay-ship"] = []instance{{addr: "10.0.0.1", port: 1009, tags: tags("sbx-s1", "s1", "ship"), status: consulapi.HealthPassing}}
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
	recv(t, stores, "the reset answer", func(s stored) bool { return s.index <= 3 })
	if ep, err := c.Resolve(context.Background(), q("s1", "ship")); err != nil || ep.Port != 1009 {
		t.Errorf("after reset = %+v, %v", ep, err)
	}
	// And it blocks again instead of spinning.
	recv(t, f.waiting, "the watch to block again", func(r request) bool { return r.index == 3 })
}

// The agent behind the address is replaced while the watch is in backoff
// (restart, rebuilt cluster, failover) and its index starts lower. A retry
// with the old, higher index would be held for the whole wait (5 minutes)
// while the state it should report changes; the watch must start over.
func TestConsulWatchStartsOverAfterError(t *testing.T) {
	f := newFakeConsul(t)
	f.set("bay-ship", instance{addr: "10.0.0.1", port: 1001, tags: tags("sbx-s1", "s1", "ship"), status: consulapi.HealthPassing})
	c, stores := newConsul(t, f)
	retries := make(chan time.Duration, 100)
	gate := make(chan time.Time, 1)
	c.after = func(d time.Duration) <-chan time.Time {
		retries <- d
		return gate
	}
	f.mu.Lock()
	f.failBlock = true
	f.mu.Unlock()
	if _, err := c.Resolve(context.Background(), q("s1", "ship")); err != nil {
		t.Fatal(err)
	}
	recv(t, retries, "the watch to back off", func(time.Duration) bool { return true })

	f.mu.Lock()
	f.failBlock = false
	f.index = 3
	f.services["bay-ship"] = []instance{{addr: "10.0.0.1", port: 1009, tags: tags("sbx-s1", "s1", "ship"), status: consulapi.HealthPassing}}
	f.mu.Unlock()
	gate <- time.Now()

	recv(t, stores, "the new agent's answer", func(s stored) bool { return s.index == 3 })
	if ep, err := c.Resolve(context.Background(), q("s1", "ship")); err != nil || ep.Port != 1009 {
		t.Errorf("after the agent was replaced = %+v, %v; want the new agent's endpoint", ep, err)
	}
	recv(t, f.waiting, "the watch to block on the new index", func(r request) bool { return r.index == 3 })
}
