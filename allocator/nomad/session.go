package nomad

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/allocator/discovery"
	"github.com/bay-sandbox/bay/jobspecs"
)

// Start registers the session's job, follows its allocation through the
// watcher and returns once every container answers /health. Any failure
// purges the job (all or nothing) and wraps allocator.ErrStartFailed; Nomad
// refusing or not answering is an *allocator.BackendError instead (denied,
// refused, unavailable, no capacity).
func (a *Allocator) Start(ctx context.Context, req allocator.StartRequest) (*allocator.Session, error) {
	if req.Profile == nil {
		return nil, fmt.Errorf("%w: no profile", allocator.ErrStartFailed)
	}
	in := jobspecs.Input{
		Profile:   req.Profile,
		SandboxID: req.SandboxID,
		SessionID: req.SessionID,
		Owner:     req.Owner,
		CargoID:   req.Cargo.ID,
		Secret:    req.Secret,
	}
	if req.Cargo.Locator != "" {
		if req.Cargo.Backend != "" && req.Cargo.Backend != BackendHostVolume {
			return nil, fmt.Errorf("%w: cargo %s has backend %q, this allocator needs %q", allocator.ErrStartFailed, req.Cargo.ID, req.Cargo.Backend, BackendHostVolume)
		}
		ref, err := a.volumeRef(ctx, req.Cargo)
		if err != nil {
			if errors.Is(err, errVolumeMissing) {
				return nil, fmt.Errorf("%w: %w", allocator.ErrStartFailed, err)
			}
			return nil, err
		}
		in.VolumeName, in.VolumeHostPath = ref.Name, ref.HostPath
	}
	job, err := jobspecs.Render(in, a.cfg.Job)
	if err != nil {
		return nil, fmt.Errorf("%w: render job: %w", allocator.ErrStartFailed, err)
	}
	jobID := *job.ID

	containers := make([]string, 0, len(req.Profile.Containers))
	tasks := map[string]string{}
	runtimes := map[string]string{}
	for _, c := range req.Profile.Containers {
		containers = append(containers, c.Name)
		tasks[c.Name] = jobspecs.TaskName(c.Name)
		runtimes[c.Name] = c.RuntimeType
	}
	s := &session{
		info: allocator.SessionInfo{SandboxID: req.SandboxID, SessionID: req.SessionID, Owner: req.Owner,
			Profile: req.Profile.ID, CargoID: req.Cargo.ID},
		jobID:    jobID,
		runtimes: runtimes,
		m:        NewMachine(containers, tasks),
		wake:     make(chan struct{}, 1),
		probes:   map[string]context.CancelFunc{},
	}
	// Track before registering, so no event of the new job can be missed.
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil, errors.New("nomad allocator is closed")
	}
	if a.bySession[req.SessionID] != nil || a.byJob[jobID] != nil {
		a.mu.Unlock()
		return nil, fmt.Errorf("%w: session %s is already running", allocator.ErrStartFailed, req.SessionID)
	}
	a.bySession[req.SessionID] = s
	a.byJob[jobID] = s
	a.mu.Unlock()

	started := time.Now()
	log := a.log.With("session_id", req.SessionID, "job_id", jobID)
	sctx, cancel := context.WithTimeout(ctx, a.cfg.StartTimeout)
	defer cancel()

	sess, err := a.start(sctx, s, job, req.Report)
	if err != nil {
		a.rollback(s)
		reason := err.Error()
		log.Warn("start failed, job purged", "error", reason, "after", time.Since(started))
		switch {
		case isBackendErr(err), errors.Is(err, allocator.ErrStartFailed):
			return nil, err
		case ctx.Err() != nil: // the caller gave up
			return nil, fmt.Errorf("%w: %w", allocator.ErrStartFailed, ctx.Err())
		}
		return nil, fmt.Errorf("%w: %s", allocator.ErrStartFailed, reason)
	}
	log.Info("session running", "took", time.Since(started))
	return sess, nil
}

func (a *Allocator) start(ctx context.Context, s *session, job *api.Job, report func(phase string)) (*allocator.Session, error) {
	report(allocator.PhasePlacing)
	resp, _, err := a.client.Jobs().Register(job, writeOpts(ctx))
	if err != nil {
		// Classified (denied, refused, unavailable): the gateway tells the
		// client which, instead of a generic failed start.
		return nil, nomadErr(opRegisterJob, *job.ID, err)
	}
	if resp != nil && resp.Warnings != "" {
		a.log.Debug("job registered with warnings", "job_id", s.jobID, "warnings", resp.Warnings)
	}
	if resp != nil && resp.EvalID != "" {
		a.goTracked(func() { a.watchPlacement(ctx, s, resp.EvalID) })
	}

	// Probe every container until all answer /health or the machine fails.
	// A native service registration seen by the watcher gives the endpoint
	// at once. Discovery is asked only once every task runs (nothing is
	// registered before): when the watcher saw something, and at most every
	// resolveEvery otherwise. Each discovery call lists the instances of
	// every session, so asking it on every allocation update of many
	// concurrent starts made Nomad's load grow with their square. /health
	// is asked every HealthCheckInterval once an endpoint is known. Health,
	// not the (batched) allocation update, decides readiness.
	probes := map[string]*probe{}
	for _, c := range s.m.containers {
		probes[c] = a.newProbe(s, c)
	}
	out := &allocator.Session{ID: s.info.SessionID, SandboxID: s.info.SandboxID, Endpoints: map[string]allocator.Endpoint{}}
	t := time.NewTicker(a.cfg.HealthCheckInterval)
	defer t.Stop()
	woke := false
	for len(out.Endpoints) < len(probes) {
		a.mu.Lock()
		phase, reason, running, placed := s.m.Phase(), s.m.Reason(), s.m.TasksRunning(), s.m.AllocID() != ""
		a.mu.Unlock()
		if phase == PhaseFailed {
			a.mu.Lock()
			placement := s.placement
			a.mu.Unlock()
			if placement != nil {
				return nil, placement
			}
			return nil, fmt.Errorf("%w: %s", allocator.ErrStartFailed, reason)
		}
		switch {
		case running:
			report(allocator.PhaseHealthCheck)
		case placed:
			report(allocator.PhaseStartingContainers)
		}
		policy := resolveNever
		switch {
		case running && woke:
			policy = resolveNow
		case running:
			policy = resolveIfDue
		}
		for c, p := range probes {
			if _, done := out.Endpoints[c]; done {
				continue
			}
			if ep, ok := p.try(ctx, policy); ok {
				out.Endpoints[c] = ep
			}
		}
		if len(out.Endpoints) == len(probes) {
			break
		}
		woke = false
		select {
		case <-ctx.Done():
			var waiting []string
			for c, p := range probes {
				if _, done := out.Endpoints[c]; !done {
					last := "tasks not running yet"
					if p.lastErr != nil {
						last = p.lastErr.Error()
					}
					waiting = append(waiting, fmt.Sprintf("%s (last: %s)", c, last))
				}
			}
			sort.Strings(waiting)
			return nil, a.deadline(ctx, s, "not healthy: "+strings.Join(waiting, ", "))
		case <-s.wake:
			woke = true
		case <-t.C:
		}
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if !s.m.MarkRunning() {
		return nil, fmt.Errorf("%w: %s%s", allocator.ErrStartFailed, s.m.Reason(), a.storyLocked(s))
	}
	return out, nil
}

// deadline explains a start that ran out of time.
func (a *Allocator) deadline(ctx context.Context, s *session, what string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	s.m.Fail(what)
	msg := fmt.Sprintf("%s: %v", what, ctx.Err())
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		msg = fmt.Sprintf("%s within the start timeout (%s)", what, a.cfg.StartTimeout)
	}
	return fmt.Errorf("%w: %s%s", allocator.ErrStartFailed, msg, a.storyLocked(s))
}

// storyLocked is the tasks' last events, for error messages.
func (a *Allocator) storyLocked(s *session) string {
	if s.last == nil {
		return " (no allocation was placed)"
	}
	return s.m.taskStory(s.last)
}

// watchPlacement follows the registration's evaluation: when the scheduler
// cannot place the group (no node with the volume, no capacity, quota) the
// start fails at once with the scheduler's reasons instead of waiting out
// the deadline.
func (a *Allocator) watchPlacement(ctx context.Context, s *session, evalID string) {
	var index uint64
	for ctx.Err() == nil {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: 10 * time.Second}).WithContext(ctx)
		ev, meta, err := a.client.Evaluations().Info(evalID, q)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Debug("read evaluation", "eval_id", evalID, "error", err)
				sleep(ctx, 200*time.Millisecond)
			}
			continue
		}
		index = meta.LastIndex
		switch ev.Status {
		case "pending":
			continue
		case "complete":
			if len(ev.FailedTGAllocs) == 0 {
				return
			}
			why := placementFailure(ev.FailedTGAllocs)
			a.mu.Lock()
			// Exhausted resources are capacity (503, retry later); nodes
			// filtered out by constraints stay a failed start naming them.
			if res := exhausted(ev.FailedTGAllocs); len(res) > 0 {
				s.placement = &allocator.BackendError{Kind: allocator.ErrNoCapacity, Op: "place session " + s.info.SessionID,
					Resources: res, Err: errors.New("no node can run the session: " + why)}
			}
			s.m.Fail("no node can run the session: " + why)
			s.poke()
			a.mu.Unlock()
			return
		default: // failed, canceled, blocked
			a.mu.Lock()
			s.m.Fail(fmt.Sprintf("evaluation %s: %s", ev.Status, ev.StatusDescription))
			s.poke()
			a.mu.Unlock()
			return
		}
	}
}

// placementFailure summarises why the scheduler placed nothing.
func placementFailure(failed map[string]*api.AllocationMetric) string {
	var parts []string
	for _, group := range sortedMetricKeys(failed) {
		m := failed[group]
		if m == nil {
			continue
		}
		p := fmt.Sprintf("%d node(s) evaluated", m.NodesEvaluated)
		if m.NodesInPool == 0 && m.NodesEvaluated == 0 {
			p = "no node in the pool"
		}
		for _, k := range sortedIntKeys(m.ConstraintFiltered) {
			p += fmt.Sprintf(", %d filtered by %s", m.ConstraintFiltered[k], k)
		}
		for _, k := range sortedIntKeys(m.ClassFiltered) {
			p += fmt.Sprintf(", %d filtered by class %s", m.ClassFiltered[k], k)
		}
		for _, k := range sortedIntKeys(m.DimensionExhausted) {
			p += fmt.Sprintf(", %d exhausted %s", m.DimensionExhausted[k], k)
		}
		if len(m.QuotaExhausted) > 0 {
			p += ", quota exhausted: " + strings.Join(m.QuotaExhausted, ", ")
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "placement failed"
	}
	return strings.Join(parts, "; ")
}

// exhausted names what the scheduler found exhausted ("cpu", "memory",
// quotas); none when constraints filtered every node out.
func exhausted(failed map[string]*api.AllocationMetric) []string {
	seen := map[string]bool{}
	var out []string
	add := func(r string) {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, group := range sortedMetricKeys(failed) {
		m := failed[group]
		if m == nil {
			continue
		}
		for _, k := range sortedIntKeys(m.DimensionExhausted) {
			add(k)
		}
		for _, q := range m.QuotaExhausted {
			add("quota " + q)
		}
	}
	return out
}

func sortedMetricKeys(m map[string]*api.AllocationMetric) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedIntKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// rollback purges a failed start's job and forgets the session.
func (a *Allocator) rollback(s *session) {
	a.mu.Lock()
	s.stopping = true
	a.dropLocked(s)
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(a.ctx, 15*time.Second)
	defer cancel()
	if _, _, err := a.client.Jobs().Deregister(s.jobID, true, writeOpts(ctx)); err != nil && !isNotFound(err) {
		a.log.Warn("purge job of failed start", "job_id", s.jobID, "error", err)
	}
}

// Stop deregisters the session's job (its tasks get SIGTERM and the kill
// timeout), waits for the allocation to finish so the cargo is free, then
// purges the job. Unknown sessions are not an error.
func (a *Allocator) Stop(ctx context.Context, sessionID string) error {
	return a.release(ctx, sessionID, true)
}

// Destroy purges the session's job at once.
func (a *Allocator) Destroy(ctx context.Context, sessionID string) error {
	return a.release(ctx, sessionID, false)
}

func (a *Allocator) release(ctx context.Context, sessionID string, graceful bool) error {
	jobID, err := a.jobOf(ctx, sessionID)
	if err != nil || jobID == "" {
		return err
	}
	a.mu.Lock()
	if s := a.byJob[jobID]; s != nil {
		s.stopping = true
		for c := range s.probes {
			a.cancelProbeLocked(s, c)
		}
	}
	a.mu.Unlock()

	if graceful {
		if _, _, err := a.client.Jobs().Deregister(jobID, false, writeOpts(ctx)); err != nil {
			if isNotFound(err) {
				a.forget(jobID)
				return nil
			}
			return nomadErr(opStopJob, jobID, err)
		}
		wctx, cancel := context.WithTimeout(ctx, a.cfg.StopTimeout)
		if err := a.waitAllocsDone(wctx, jobID); err != nil {
			a.log.Warn("allocation did not finish before purge", "job_id", jobID, "error", err)
		}
		cancel()
	}
	if _, _, err := a.client.Jobs().Deregister(jobID, true, writeOpts(ctx)); err != nil && !isNotFound(err) {
		return nomadErr(opPurgeJob, jobID, err)
	}
	a.forget(jobID)
	return nil
}

func (a *Allocator) forget(jobID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s := a.byJob[jobID]; s != nil {
		a.dropLocked(s)
	}
}

// jobOf finds the job of a session: tracked, or by meta among Bay's jobs.
func (a *Allocator) jobOf(ctx context.Context, sessionID string) (string, error) {
	a.mu.Lock()
	s := a.bySession[sessionID]
	a.mu.Unlock()
	if s != nil {
		return s.jobID, nil
	}
	stubs, err := a.bayJobs(ctx)
	if err != nil {
		return "", err
	}
	for _, j := range stubs {
		if j.Meta[jobspecs.MetaSessionID] == sessionID {
			return j.ID, nil
		}
	}
	return "", nil
}

// waitAllocsDone blocks (Nomad blocking queries) until every allocation of
// the job has finished on its client.
func (a *Allocator) waitAllocsDone(ctx context.Context, jobID string) error {
	var index uint64
	for {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second}).WithContext(ctx)
		allocs, meta, err := a.client.Jobs().Allocations(jobID, true, q)
		if err != nil {
			if isNotFound(err) {
				return nil
			}
			return nomadErr(opReadAllocs, jobID, err)
		}
		done := true
		for _, al := range allocs {
			if !clientTerminal(al.ClientStatus) {
				done = false
			}
		}
		if done {
			return nil
		}
		index = meta.LastIndex
	}
}

func clientTerminal(status string) bool {
	switch status {
	case api.AllocClientStatusComplete, api.AllocClientStatusFailed, api.AllocClientStatusLost:
		return true
	}
	return false
}

// Resolve returns the endpoint of a container of a live session.
func (a *Allocator) Resolve(ctx context.Context, sessionID, container string) (allocator.Endpoint, error) {
	s, err := a.lookup(ctx, sessionID)
	if err != nil {
		return allocator.Endpoint{}, err
	}
	if s == nil {
		return allocator.Endpoint{}, fmt.Errorf("session %s: %w", sessionID, allocator.ErrSessionGone)
	}
	a.mu.Lock()
	phase, down, reason := s.m.Phase(), s.m.IsDown(container), s.m.Reason()
	rt, known := s.runtimes[container]
	a.mu.Unlock()
	switch {
	case phase == PhaseGone || phase == PhaseFailed:
		return allocator.Endpoint{}, fmt.Errorf("session %s (%s): %w", sessionID, reason, allocator.ErrSessionGone)
	case !known:
		return allocator.Endpoint{}, fmt.Errorf("session %s has no container %q", sessionID, container)
	case phase == PhaseStarting || down:
		return allocator.Endpoint{}, fmt.Errorf("session %s container %s: %w", sessionID, container, allocator.ErrContainerDown)
	}
	ep, err := a.resolver.Resolve(ctx, discovery.Query{Service: jobspecs.ServiceName(container), SandboxID: s.info.SandboxID, SessionID: sessionID, Container: container})
	if err != nil {
		if errors.Is(err, discovery.ErrNoEndpoint) {
			return allocator.Endpoint{}, fmt.Errorf("session %s container %s: %w: %w", sessionID, container, allocator.ErrContainerDown, err)
		}
		return allocator.Endpoint{}, discoveryErr(fmt.Sprintf("%s of session %s", container, sessionID), err)
	}
	return allocator.Endpoint{Container: container, RuntimeType: rt, URL: ep.URL()}, nil
}

// bayJobs lists the live jobs of this gateway instance (by meta).
func (a *Allocator) bayJobs(ctx context.Context) ([]*api.JobListStub, error) {
	q := (&api.QueryOptions{Prefix: jobPrefix}).WithContext(ctx)
	stubs, _, err := a.client.Jobs().ListOptions(&api.JobListOptions{Fields: &api.JobListFields{Meta: true}}, q)
	if err != nil {
		return nil, nomadErr(opListJobs, "", err)
	}
	var out []*api.JobListStub
	for _, j := range stubs {
		if j.Meta == nil {
			job, _, err := a.client.Jobs().Info(j.ID, queryOpts(ctx))
			if err != nil {
				if isNotFound(err) {
					continue
				}
				return nil, nomadErr(opReadJob, j.ID, err)
			}
			j.Meta = job.Meta
		}
		if j.Meta[jobspecs.MetaSessionID] == "" {
			continue
		}
		if inst := a.cfg.Job.InstanceID; inst != "" && j.Meta[jobspecs.MetaInstance] != inst {
			continue // another gateway's session
		}
		if j.Stop || j.Status == "dead" {
			continue
		}
		out = append(out, j)
	}
	return out, nil
}

// List reports the live sessions of this gateway instance. Sessions not
// tracked yet (made by an earlier gateway process) are adopted: tracked from
// now on, without restarting anything.
func (a *Allocator) List(ctx context.Context) ([]allocator.SessionInfo, error) {
	stubs, err := a.bayJobs(ctx)
	if err != nil {
		return nil, err
	}
	var out []allocator.SessionInfo
	for _, j := range stubs {
		a.mu.Lock()
		s := a.byJob[j.ID]
		a.mu.Unlock()
		if s == nil {
			if s, err = a.adopt(ctx, j.ID); err != nil {
				return nil, err
			}
			if s == nil {
				continue
			}
		}
		a.mu.Lock()
		info := s.info
		info.Down = s.m.Down()
		gone := s.m.Phase() == PhaseGone || s.m.Phase() == PhaseFailed
		a.mu.Unlock()
		if !gone {
			out = append(out, info)
		}
	}
	return out, nil
}

// adopt starts tracking a job made by an earlier gateway process.
func (a *Allocator) adopt(ctx context.Context, jobID string) (*session, error) {
	job, _, err := a.client.Jobs().Info(jobID, queryOpts(ctx))
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, nomadErr(opReadJob, jobID, err)
	}
	var group *api.TaskGroup
	for _, g := range job.TaskGroups {
		if g.Name != nil && *g.Name == jobspecs.GroupName {
			group = g
		}
	}
	if group == nil || job.Meta[jobspecs.MetaSessionID] == "" {
		return nil, nil
	}
	var containers []string
	tasks := map[string]string{}
	runtimes := map[string]string{}
	for _, t := range group.Tasks {
		name := t.Env["BAY_CONTAINER_NAME"]
		if name == "" {
			name = t.Name
		}
		containers = append(containers, name)
		tasks[name] = t.Name
		runtimes[name] = a.runtimeTypeOf(name, t)
	}
	s := &session{
		info: allocator.SessionInfo{
			SandboxID: job.Meta[jobspecs.MetaSandboxID], SessionID: job.Meta[jobspecs.MetaSessionID],
			Owner: job.Meta[jobspecs.MetaOwner], Profile: job.Meta[jobspecs.MetaProfile], CargoID: job.Meta[jobspecs.MetaCargoID],
		},
		jobID:    jobID,
		runtimes: runtimes,
		m:        AdoptMachine(containers, tasks),
		wake:     make(chan struct{}, 1),
		probes:   map[string]context.CancelFunc{},
	}
	a.mu.Lock()
	if cur := a.byJob[jobID]; cur != nil {
		a.mu.Unlock()
		return cur, nil
	}
	if a.closed {
		a.mu.Unlock()
		return nil, errors.New("nomad allocator is closed")
	}
	a.byJob[jobID] = s
	a.bySession[s.info.SessionID] = s
	a.mu.Unlock()

	// Tracked first, read second: nothing the watcher sees in between is lost.
	allocs, _, err := a.client.Jobs().Allocations(jobID, false, queryOpts(ctx))
	if err != nil {
		a.forget(jobID)
		return nil, nomadErr(opReadAllocs, jobID, err)
	}
	sort.Slice(allocs, func(i, j int) bool { return allocs[i].CreateIndex > allocs[j].CreateIndex })
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(allocs) > 0 {
		// The newest allocation is the session's (count 1, no reschedule).
		a.observeLocked(s, allocFromStub(allocs[0]))
	}
	a.log.Info("adopted session", "session_id", s.info.SessionID, "job_id", jobID, "down", s.m.Down())
	return s, nil
}

// runtimeTypeOf recovers a task's runtime type for an adopted session:
// task meta "bay.runtime_type" when the job carries it, else the configured
// runtime whose binary the task runs (the container's own name first when
// several share a binary), else the container's name.
func (a *Allocator) runtimeTypeOf(container string, t *api.Task) string {
	if rt := t.Meta["bay.runtime_type"]; rt != "" {
		return rt
	}
	cmd, _ := t.Config["command"].(string)
	var matches []string
	for rt, bin := range a.cfg.Job.Binaries {
		if cmd != "" && (bin == cmd || path.Base(bin) == path.Base(cmd)) {
			matches = append(matches, rt)
		}
	}
	sort.Strings(matches)
	switch {
	case len(matches) == 0 || slices.Contains(matches, container):
		return container
	default:
		return matches[0]
	}
}
