package nomad

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"
)

// jobPrefix starts every Bay job id (jobspecs.JobID).
const jobPrefix = "bay-"

// allocFilter keeps list reads to Bay's jobs.
const allocFilter = `JobID matches "^bay-"`

// watcher is the gateway's one subscription to Nomad: the event stream
// (topics Allocation and Service) for as long as it works, blocking queries
// on the allocation list when it does not. Every (re)connect first reads the
// current allocations, so nothing missed while disconnected is lost, then
// streams from the index of that read.
type watcher struct {
	client *api.Client
	log    hclog.Logger
	// alloc receives every allocation of a Bay job, in any order, possibly
	// repeated (the consumer drops stale copies by ModifyIndex).
	alloc func(*api.Allocation)
	// service is told of every (de)registration of a Bay job's service.
	service func(deregistered bool, reg *api.ServiceRegistration)
	// jobGone is told a Bay job was deregistered.
	jobGone func(jobID string)
	// connected is told a subscription is (re)established, with the jobs
	// that have allocations right now: a tracked allocation missing from
	// them vanished while nobody was listening.
	connected func(jobs map[string]bool)

	// pollFor is how long the blocking-query fallback runs before the
	// stream is tried again.
	pollFor time.Duration
	// pollWait is the wait time of one blocking query.
	pollWait time.Duration
	// maxBackoff caps the retry delay after errors.
	maxBackoff time.Duration

	index uint64 // last index seen; only the run goroutine touches it
}

// run follows Nomad until ctx ends.
func (w *watcher) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	streamFailures := 0
	for ctx.Err() == nil {
		if err := w.reconcile(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			w.log.Warn("read allocations", "error", nomadErr(opReadAllocs, "bay sessions", err), "retry_in", backoff)
			sleep(ctx, backoff)
			backoff = min(2*backoff, w.maxBackoff)
			continue
		}
		backoff = 100 * time.Millisecond
		got, err := w.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		if got {
			streamFailures = 0
		} else {
			streamFailures++
		}
		var ure api.UnexpectedResponseError
		if errors.As(err, &ure) || streamFailures >= 3 {
			// The stream is refused (disabled event broker, a proxy that
			// cannot stream, an ACL without it) or keeps breaking at once:
			// follow with blocking queries for a while.
			w.log.Warn("event stream unavailable, using blocking queries", "error", err, "for", w.pollFor)
			w.poll(ctx)
			streamFailures = 0
			continue
		}
		w.log.Debug("event stream ended, resuming", "error", err, "index", w.index)
		sleep(ctx, 50*time.Millisecond)
	}
}

// reconcile reads every Bay allocation and delivers it; the stream then
// resumes from the index of this read.
func (w *watcher) reconcile(ctx context.Context) error {
	q := (&api.QueryOptions{Filter: allocFilter}).WithContext(ctx)
	stubs, meta, err := w.client.Allocations().List(q)
	if err != nil {
		return err
	}
	jobs := make(map[string]bool, len(stubs))
	for _, s := range stubs {
		jobs[s.JobID] = true
		w.alloc(allocFromStub(s))
	}
	if meta != nil && meta.LastIndex > w.index {
		w.index = meta.LastIndex
	}
	if w.connected != nil {
		w.connected(jobs)
	}
	return nil
}

// stream follows the event stream from w.index+1 until it breaks; got says
// whether it delivered anything.
func (w *watcher) stream(ctx context.Context) (got bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	topics := map[api.Topic][]string{
		api.TopicAllocation: {"*"},
		api.TopicService:    {"*"},
		// A purged job's allocations emit nothing more: its deregistration
		// is the only sign it was stopped outside Bay.
		api.TopicJob: {"*"},
	}
	ch, err := w.client.EventStream().Stream(sctx, topics, w.index+1, nil)
	if err != nil {
		return false, err
	}
	for evs := range ch {
		if evs.Err != nil {
			return got, evs.Err
		}
		got = true
		for i := range evs.Events {
			w.handle(&evs.Events[i])
		}
		if evs.Index > w.index {
			w.index = evs.Index
		}
	}
	return got, ctx.Err()
}

func (w *watcher) handle(e *api.Event) {
	if !bayEvent(e) {
		return
	}
	switch e.Topic {
	case api.TopicJob:
		if e.Type == "JobDeregistered" && w.jobGone != nil {
			w.jobGone(e.Key)
		}
	case api.TopicAllocation:
		a, err := e.Allocation()
		if err != nil || a == nil {
			w.log.Warn("decode allocation event", "key", e.Key, "error", err)
			return
		}
		if strings.HasPrefix(a.JobID, jobPrefix) {
			w.alloc(a)
		}
	case api.TopicService:
		s, err := e.Service()
		if err != nil || s == nil {
			w.log.Warn("decode service event", "key", e.Key, "error", err)
			return
		}
		if w.service != nil && strings.HasPrefix(s.JobID, jobPrefix) {
			w.service(e.Type == "ServiceDeregistration", s)
		}
	}
}

// bayEvent says whether an event may concern a Bay job, before paying for
// decoding its payload: job events are keyed by the job id, allocation and
// service events carry it in their filter keys.
func bayEvent(e *api.Event) bool {
	if e.Topic == api.TopicJob {
		return strings.HasPrefix(e.Key, jobPrefix)
	}
	for _, k := range e.FilterKeys {
		if strings.HasPrefix(k, jobPrefix) {
			return true
		}
	}
	return false
}

// poll follows the allocation list with blocking queries for w.pollFor.
func (w *watcher) poll(ctx context.Context) {
	until := time.Now().Add(w.pollFor)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil && time.Now().Before(until) {
		q := (&api.QueryOptions{Filter: allocFilter, WaitIndex: w.index, WaitTime: w.pollWait}).WithContext(ctx)
		stubs, meta, err := w.client.Allocations().List(q)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.log.Warn("blocking query on allocations", "error", err, "retry_in", backoff)
			sleep(ctx, backoff)
			backoff = min(2*backoff, w.maxBackoff)
			continue
		}
		backoff = 100 * time.Millisecond
		for _, s := range stubs {
			w.alloc(allocFromStub(s))
		}
		if meta != nil {
			if meta.LastIndex < w.index {
				w.index = 0 // the cluster's index went back (state reset)
			} else {
				w.index = meta.LastIndex
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
