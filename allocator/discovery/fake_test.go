package discovery

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// fakeConsul mimics Consul's documented GET /v1/health/service/<name>:
// ?passing filters out instances with a non-passing check, ?index&wait make a
// blocking query that answers when the index moves past index (or wait ends),
// and every answer carries X-Consul-Index.
type fakeConsul struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	index     uint64
	changed   chan struct{} // closed and replaced on every change
	services  map[string][]instance
	requests  []request
	inflight  int
	hang      map[string]bool // answer nothing until the client goes away
	failAll   bool
	failBlock bool

	waiting chan request // a blocking request is waiting
	ended   chan request // a request's handler returned
}

type instance struct {
	node, nodeAddr string
	addr           string
	port           int
	tags           []string
	status         string // passing, warning, critical
	modifyIndex    uint64
}

type request struct {
	service string
	index   uint64
	wait    string
	passing bool
}

func newFakeConsul(t *testing.T) *fakeConsul {
	f := &fakeConsul{
		t:        t,
		index:    10,
		changed:  make(chan struct{}),
		services: map[string][]instance{},
		hang:     map[string]bool{},
		waiting:  make(chan request, 1000),
		ended:    make(chan request, 1000),
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeConsul) client() *consulapi.Client {
	c, err := consulapi.NewClient(&consulapi.Config{Address: f.srv.URL})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// set replaces a service's instances and moves the index on.
func (f *fakeConsul) set(service string, insts ...instance) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index++
	f.services[service] = insts
	close(f.changed)
	f.changed = make(chan struct{})
	return f.index
}

func (f *fakeConsul) requestsFor(service string) []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []request
	for _, r := range f.requests {
		if r.service == service {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeConsul) nonBlocking(service string) int {
	n := 0
	for _, r := range f.requestsFor(service) {
		if r.index == 0 {
			n++
		}
	}
	return n
}

func (f *fakeConsul) serve(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, "/v1/health/service/")
	if !ok || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	req := request{service: name, wait: q.Get("wait")}
	if v, ok := q["passing"]; ok {
		req.passing = len(v) == 0 || (v[0] != "false" && v[0] != "0")
	}
	if s := q.Get("index"); s != "" {
		var err error
		if req.index, err = strconv.ParseUint(s, 10, 64); err != nil {
			http.Error(w, "bad index", http.StatusBadRequest)
			return
		}
	}

	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.inflight++
	hang, failAll, failBlock := f.hang[name], f.failAll, f.failBlock
	current, changed := f.index, f.changed
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
		f.ended <- req
	}()

	switch {
	case failAll || (failBlock && req.index > 0):
		http.Error(w, "rpc error: no cluster leader", http.StatusInternalServerError)
		return
	case hang:
		f.waiting <- req
		<-r.Context().Done()
		return
	}
	if req.index > 0 && req.index >= current {
		wait := 5 * time.Minute
		if req.wait != "" {
			d, err := time.ParseDuration(req.wait)
			if err != nil {
				http.Error(w, "bad wait", http.StatusBadRequest)
				return
			}
			wait = d
		}
		f.waiting <- req
		select {
		case <-changed:
		case <-time.After(wait):
		case <-r.Context().Done():
			return
		}
	}

	f.mu.Lock()
	index := f.index
	var out []map[string]any
	for i, in := range f.services[name] {
		if req.passing && in.status != consulapi.HealthPassing {
			continue
		}
		out = append(out, map[string]any{
			"Node": map[string]any{"Node": in.node, "Address": in.nodeAddr},
			"Service": map[string]any{
				"ID": name + "-" + strconv.Itoa(i), "Service": name, "Tags": in.tags,
				"Address": in.addr, "Port": in.port, "ModifyIndex": in.modifyIndex,
			},
			"Checks": []map[string]any{{"CheckID": "health", "ServiceName": name, "Status": in.status}},
		})
	}
	f.mu.Unlock()
	if out == nil {
		out = []map[string]any{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Consul-Index", strconv.FormatUint(index, 10))
	_ = json.NewEncoder(w).Encode(out)
}

func tags(sandbox, session, container string) []string {
	return []string{"bay", "sandbox=" + sandbox, "session=" + session, "container=" + container}
}

// recv waits for the next value of ch that satisfies ok.
func recv[T any](t *testing.T, ch <-chan T, what string, ok func(T) bool) T {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case v := <-ch:
			if ok(v) {
				return v
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
