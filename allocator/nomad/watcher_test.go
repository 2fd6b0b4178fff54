package nomad

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"
)

// fakeNomad serves the two endpoints the watcher uses.
type fakeNomad struct {
	mu           sync.Mutex
	listIndex    uint64
	listStubs    []*api.AllocationListStub
	listWaits    []string // index= of every allocation list read
	streamIdx    []string // index= of every stream subscription
	streamStatus int      // non-zero: refuse the stream with this status
	// streams[i] is what the i-th subscription sends before closing.
	streams [][]api.Events
}

func (f *fakeNomad) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/v1/allocations":
		f.listWaits = append(f.listWaits, r.URL.Query().Get("index"))
		if r.URL.Query().Get("filter") != allocFilter {
			http.Error(w, "bad filter "+r.URL.Query().Get("filter"), 400)
			return
		}
		w.Header().Set("X-Nomad-Index", strconv.FormatUint(f.listIndex, 10))
		_ = json.NewEncoder(w).Encode(f.listStubs)
	case "/v1/event/stream":
		f.streamIdx = append(f.streamIdx, r.URL.Query().Get("index"))
		if f.streamStatus != 0 {
			http.Error(w, "event stream disabled", f.streamStatus)
			return
		}
		n := len(f.streamIdx) - 1
		if n < len(f.streams) {
			enc := json.NewEncoder(w)
			for _, evs := range f.streams[n] {
				_ = enc.Encode(evs)
			}
			return // the stream drops
		}
		// Later subscriptions stay open with nothing to say.
		f.mu.Unlock()
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		f.mu.Lock()
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeNomad) snapshot() (lists, streams []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.listWaits...), append([]string(nil), f.streamIdx...)
}

func allocEvent(index uint64, allocID, jobID, client string) api.Event {
	return api.Event{
		Topic: api.TopicAllocation, Type: "AllocationUpdated", Key: allocID, FilterKeys: []string{jobID}, Index: index,
		Payload: map[string]any{"Allocation": map[string]any{"ID": allocID, "JobID": jobID, "ClientStatus": client, "ModifyIndex": index}},
	}
}

type seen struct {
	mu     sync.Mutex
	allocs []*api.Allocation
	gone   []string
	regs   []string
}

func (s *seen) alloc(a *api.Allocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allocs = append(s.allocs, a)
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.allocs)
}

func runWatcher(t *testing.T, f *fakeNomad, s *seen, pollFor time.Duration) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := api.NewClient(&api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{
		client: c, log: hclog.NewNullLogger(), alloc: s.alloc,
		jobGone: func(id string) { s.mu.Lock(); s.gone = append(s.gone, id); s.mu.Unlock() },
		service: func(dereg bool, r *api.ServiceRegistration) {
			s.mu.Lock()
			s.regs = append(s.regs, fmt.Sprintf("%v:%s", dereg, r.JobID))
			s.mu.Unlock()
		},
		pollFor: pollFor, pollWait: 50 * time.Millisecond, maxBackoff: 50 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestWatcherResumesFromLastIndexAfterDrop(t *testing.T) {
	f := &fakeNomad{
		listIndex: 10,
		listStubs: []*api.AllocationListStub{{ID: "a0", JobID: "bay-s-0", ClientStatus: "running", ModifyIndex: 9}},
		streams: [][]api.Events{{
			{Index: 20, Events: []api.Event{
				allocEvent(20, "a1", "bay-s-1", "running"),
				allocEvent(20, "x1", "other-job", "running"), // not Bay's: dropped unread
				{Topic: api.TopicJob, Type: "JobDeregistered", Key: "bay-s-2", Index: 20},
				{Topic: api.TopicService, Type: "ServiceDeregistration", Key: "k", FilterKeys: []string{"bay-s-1", "bay-ship"}, Index: 20,
					Payload: map[string]any{"Service": map[string]any{"JobID": "bay-s-1", "ServiceName": "bay-ship"}}},
			}},
		}},
	}
	s := &seen{}
	runWatcher(t, f, s, time.Minute)
	waitFor(t, 5*time.Second, "resubscription", func() bool {
		_, streams := f.snapshot()
		return len(streams) >= 2
	})
	lists, streams := f.snapshot()
	// First subscription from the list's index, the second from the last
	// streamed index: nothing in between is lost or replayed.
	if streams[0] != "11" || streams[1] != "21" {
		t.Fatalf("stream indexes = %v, want [11 21 ...]", streams)
	}
	if len(lists) < 2 || lists[0] != "" {
		t.Fatalf("list reads = %v, want a plain read before each subscription", lists)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, a := range s.allocs {
		ids = append(ids, a.ID)
	}
	if len(ids) < 2 || ids[0] != "a0" || ids[1] != "a1" {
		t.Fatalf("allocations delivered = %v, want a0 (list) then a1 (stream), never x1", ids)
	}
	for _, id := range ids {
		if id == "x1" {
			t.Fatal("a foreign job's allocation was delivered")
		}
	}
	if len(s.gone) != 1 || s.gone[0] != "bay-s-2" {
		t.Fatalf("jobs gone = %v", s.gone)
	}
	if len(s.regs) != 1 || s.regs[0] != "true:bay-s-1" {
		t.Fatalf("service changes = %v", s.regs)
	}
}

func TestWatcherFallsBackToBlockingQueries(t *testing.T) {
	f := &fakeNomad{
		listIndex:    42,
		listStubs:    []*api.AllocationListStub{{ID: "a0", JobID: "bay-s-0", ClientStatus: "running", ModifyIndex: 41}},
		streamStatus: http.StatusNotImplemented,
	}
	s := &seen{}
	runWatcher(t, f, s, 300*time.Millisecond)
	waitFor(t, 5*time.Second, "blocking queries", func() bool {
		lists, _ := f.snapshot()
		for _, l := range lists {
			if l == "42" {
				return true
			}
		}
		return false
	})
	// After the poll period it tries the stream again.
	waitFor(t, 5*time.Second, "stream retried", func() bool {
		_, streams := f.snapshot()
		return len(streams) >= 2
	})
	if s.count() < 2 {
		t.Fatalf("allocations delivered %d times, want the list and the blocking reads", s.count())
	}
}
