package nomad

import (
	"fmt"
	"strings"

	"github.com/hashicorp/nomad/api"
)

// Phase is where a session's allocation is in its life.
type Phase int

const (
	// PhaseStarting: job registered, not every container healthy yet.
	PhaseStarting Phase = iota
	// PhaseRunning: every container passed /health once; containers may be
	// down and restarting in place since (DEGRADED).
	PhaseRunning
	// PhaseFailed: the start failed; terminal.
	PhaseFailed
	// PhaseGone: a running session's allocation ended; terminal.
	PhaseGone
)

func (p Phase) String() string {
	switch p {
	case PhaseStarting:
		return "starting"
	case PhaseRunning:
		return "running"
	case PhaseFailed:
		return "failed"
	case PhaseGone:
		return "gone"
	}
	return "unknown"
}

// ChangeKind is what an observation changed.
type ChangeKind int

const (
	// ChangeTasksRunning: during start, every task runs; probe their health.
	ChangeTasksRunning ChangeKind = iota + 1
	// ChangeStartFailed: during start, a task failed or the allocation ended.
	ChangeStartFailed
	// ChangeDown: a container of a running session stopped running.
	ChangeDown
	// ChangeRestarted: a down container's task runs again; probe its health
	// and call MarkUp.
	ChangeRestarted
	// ChangeGone: the running session's allocation ended for good.
	ChangeGone
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeTasksRunning:
		return "tasks_running"
	case ChangeStartFailed:
		return "start_failed"
	case ChangeDown:
		return "down"
	case ChangeRestarted:
		return "restarted"
	case ChangeGone:
		return "gone"
	}
	return "unknown"
}

// Change is one consequence of an observed allocation.
type Change struct {
	Kind      ChangeKind
	Container string // for ChangeDown and ChangeRestarted
	// Generation identifies the incarnation of the container's task (its
	// restart count) so a late health probe cannot mark up a newer, dead one.
	Generation uint64
	Reason     string
}

// Machine is the pure state machine of one session's allocation: it is fed
// allocations (from the event stream or a blocking query, in any order and
// possibly repeated) and answers what changed. It does no I/O and is not
// safe for concurrent use; the allocator serialises access.
type Machine struct {
	tasks      map[string]string // container -> task name
	containers []string          // profile order
	phase      Phase
	allocID    string
	index      uint64
	down       map[string]bool
	restarted  map[string]bool   // down containers whose task runs again, awaiting /health
	upGen      map[string]uint64 // restart count of the incarnation last seen running
	reason     string
	// tasksRunning: ChangeTasksRunning was emitted (once per start).
	tasksRunning bool
	// adopting: the next observation is the baseline of an adopted session.
	adopting bool
}

// NewMachine tracks a starting session whose containers run as the given
// tasks (container name -> Nomad task name); order is the profile order.
func NewMachine(containers []string, tasks map[string]string) *Machine {
	m := &Machine{
		tasks:      tasks,
		containers: containers,
		down:       map[string]bool{},
		restarted:  map[string]bool{},
		upGen:      map[string]uint64{},
	}
	return m
}

// AdoptMachine tracks a session found already running (gateway restart):
// it starts in PhaseRunning and the first observation decides which
// containers are down.
func AdoptMachine(containers []string, tasks map[string]string) *Machine {
	m := NewMachine(containers, tasks)
	m.phase = PhaseRunning
	m.adopting = true
	for _, c := range containers {
		m.down[c] = true // until an allocation shows it running
	}
	return m
}

// Phase reports the current phase.
func (m *Machine) Phase() Phase { return m.phase }

// TasksRunning says whether every task has been seen running during the
// start (health probes come next).
func (m *Machine) TasksRunning() bool { return m.tasksRunning }

// AllocID is the allocation being followed ("" before the first one).
func (m *Machine) AllocID() string { return m.allocID }

// Reason says why the machine failed or is gone.
func (m *Machine) Reason() string { return m.reason }

// Down lists the containers currently not serving, in profile order.
func (m *Machine) Down() []string {
	var out []string
	for _, c := range m.containers {
		if m.down[c] {
			out = append(out, c)
		}
	}
	return out
}

// IsDown says whether container is currently not serving.
func (m *Machine) IsDown(container string) bool { return m.down[container] }

// Fail ends a starting session (deadline, placement failure, health never
// answering).
func (m *Machine) Fail(reason string) {
	if m.phase == PhaseStarting {
		m.phase = PhaseFailed
		m.reason = reason
	}
}

// MarkRunning records that every container answered /health: the start is
// complete. The allocation as the servers know it may lag behind (clients
// batch task updates); what the probes saw is the truth. It reports false
// when the machine is no longer starting (a task failed meanwhile).
func (m *Machine) MarkRunning() bool {
	if m.phase != PhaseStarting {
		return false
	}
	m.phase = PhaseRunning
	clear(m.down)
	return true
}

// MarkUp records that a restarted container answered /health. It reports
// false when that incarnation is no longer the current one or is down again.
func (m *Machine) MarkUp(container string, gen uint64) bool {
	if m.phase != PhaseRunning || !m.down[container] || !m.restarted[container] || m.upGen[container] != gen {
		return false
	}
	delete(m.down, container)
	delete(m.restarted, container)
	return true
}

// JobStopped records that the session's job was deregistered by someone
// else. A purged job's allocations produce no more allocation events, so the
// job's own deregistration is the signal.
func (m *Machine) JobStopped(reason string) []Change {
	switch m.phase {
	case PhaseStarting:
		m.phase, m.reason = PhaseFailed, reason
		return []Change{{Kind: ChangeStartFailed, Reason: reason}}
	case PhaseRunning:
		m.phase, m.reason = PhaseGone, reason
		return []Change{{Kind: ChangeGone, Reason: reason}}
	}
	return nil
}

// ServiceGone records that the service of a running container was
// deregistered. Nomad's client deregisters a task's native service the moment
// the task exits, while the allocation update saying so is batched (about a
// second later), so this is the fastest sign of a death. A deregistration
// that was not a death heals through the next observation (the task is still
// running: ChangeRestarted, a probe, MarkUp).
func (m *Machine) ServiceGone(allocID, container string) []Change {
	if m.phase != PhaseRunning || m.adopting || allocID != m.allocID || m.down[container] {
		return nil
	}
	if _, ok := m.tasks[container]; !ok {
		return nil
	}
	m.down[container] = true
	delete(m.restarted, container)
	return []Change{{Kind: ChangeDown, Container: container, Generation: m.upGen[container], Reason: "service deregistered: the task exited"}}
}

// Observe feeds one allocation of the session's job and returns what changed.
func (m *Machine) Observe(a *api.Allocation) []Change {
	if a == nil || m.phase == PhaseFailed || m.phase == PhaseGone {
		return nil
	}
	if m.allocID == "" {
		m.allocID = a.ID
	} else if a.ID != m.allocID {
		// count = 1 and no reschedule: another allocation of the job is not
		// ours (an operator ran the job again); ours decides.
		return nil
	}
	if a.ModifyIndex != 0 && a.ModifyIndex < m.index {
		return nil // stale copy, e.g. a reconcile read racing the stream
	}
	m.index = a.ModifyIndex
	switch m.phase {
	case PhaseStarting:
		return m.observeStarting(a)
	case PhaseRunning:
		return m.observeRunning(a)
	}
	return nil
}

func (m *Machine) observeStarting(a *api.Allocation) []Change {
	if why, ended := allocEnded(a); ended {
		m.phase = PhaseFailed
		m.reason = why + m.taskStory(a)
		return []Change{{Kind: ChangeStartFailed, Reason: m.reason}}
	}
	allUp := true
	for _, c := range m.containers {
		ts := a.TaskStates[m.tasks[c]]
		st := taskStatus(ts)
		if st == taskFailed || (st == taskDown && ts != nil && startedOnce(ts)) || (ts != nil && ts.Restarts > 0) {
			// A runtime that exits while starting will not fix itself; failing
			// now beats waiting out the restart policy.
			m.phase = PhaseFailed
			m.reason = fmt.Sprintf("container %s failed to start: %s", c, lastEvents(ts, 3))
			return []Change{{Kind: ChangeStartFailed, Reason: m.reason}}
		}
		if st != taskUp {
			allUp = false
			m.down[c] = true
		} else {
			delete(m.down, c)
			m.upGen[c] = ts.Restarts
		}
	}
	if allUp && !m.tasksRunning {
		m.tasksRunning = true
		return []Change{{Kind: ChangeTasksRunning}}
	}
	return nil
}

func (m *Machine) observeRunning(a *api.Allocation) []Change {
	if why, ended := allocEnded(a); ended {
		m.phase = PhaseGone
		m.reason = why + m.taskStory(a)
		return []Change{{Kind: ChangeGone, Reason: m.reason}}
	}
	var out []Change
	adopting := m.adopting
	m.adopting = false
	for _, c := range m.containers {
		ts := a.TaskStates[m.tasks[c]]
		st := taskStatus(ts)
		var gen uint64
		if ts != nil {
			gen = ts.Restarts
		}
		if adopting {
			// Baseline: whatever runs now is taken as serving.
			m.upGen[c] = gen
			if st == taskUp {
				delete(m.down, c)
			} else {
				m.down[c] = true
			}
			continue
		}
		if st == taskFailed {
			// Restarts exhausted: Nomad fails the whole allocation next; the
			// session cannot come back.
			m.phase = PhaseGone
			m.reason = fmt.Sprintf("container %s failed: %s", c, lastEvents(ts, 3))
			return []Change{{Kind: ChangeGone, Reason: m.reason}}
		}
		switch {
		case st == taskPending && gen == m.upGen[c] && !m.down[c]:
			// Never reported started yet, but it answered /health: the
			// servers have not caught up with the client.
		case st != taskUp:
			if !m.down[c] {
				m.down[c] = true
				delete(m.restarted, c)
				out = append(out, Change{Kind: ChangeDown, Container: c, Generation: gen, Reason: lastEvents(ts, 3)})
			}
		case m.down[c]:
			if !m.restarted[c] || m.upGen[c] != gen {
				m.restarted[c] = true
				m.upGen[c] = gen
				out = append(out, Change{Kind: ChangeRestarted, Container: c, Generation: gen})
			}
		case gen != m.upGen[c]:
			// It died and came back between two observations: it is a new
			// process that has not answered /health yet.
			m.down[c] = true
			m.restarted[c] = true
			m.upGen[c] = gen
			out = append(out,
				Change{Kind: ChangeDown, Container: c, Generation: gen, Reason: lastEvents(ts, 3)},
				Change{Kind: ChangeRestarted, Container: c, Generation: gen})
		}
	}
	return out
}

// Generations returns each container's current task incarnation, as seen by
// the last observation.
func (m *Machine) Generations() map[string]uint64 {
	out := make(map[string]uint64, len(m.upGen))
	for k, v := range m.upGen {
		out[k] = v
	}
	return out
}

// taskStory summarises the tasks' last events for an error message.
func (m *Machine) taskStory(a *api.Allocation) string {
	var parts []string
	for _, c := range m.containers {
		ts := a.TaskStates[m.tasks[c]]
		if ts == nil || len(ts.Events) == 0 {
			continue
		}
		parts = append(parts, c+": "+lastEvents(ts, 3))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// allocEnded reports whether the allocation is over or being stopped.
func allocEnded(a *api.Allocation) (string, bool) {
	switch a.DesiredStatus {
	case api.AllocDesiredStatusStop, api.AllocDesiredStatusEvict:
		why := "allocation stopped"
		if a.DesiredDescription != "" {
			why += ": " + a.DesiredDescription
		}
		return why, true
	}
	switch a.ClientStatus {
	case api.AllocClientStatusFailed, api.AllocClientStatusLost, api.AllocClientStatusComplete:
		why := "allocation " + a.ClientStatus
		if a.ClientDescription != "" {
			why += ": " + a.ClientDescription
		}
		return why, true
	}
	return "", false
}

type taskCond int

const (
	taskPending taskCond = iota // not started yet (or waiting to restart)
	taskUp
	taskDown
	taskFailed
)

// lifecycle events are the task events that say whether the process runs;
// the latest of them wins over the (lagging) State field.
var lifecycle = map[string]bool{
	api.TaskStarted:                true,
	api.TaskTerminated:             true,
	api.TaskKilling:                true,
	api.TaskKilled:                 true,
	api.TaskRestarting:             true,
	api.TaskNotRestarting:          true,
	api.TaskDriverFailure:          true,
	api.TaskSetupFailure:           true,
	api.TaskFailedValidation:       true,
	api.TaskSiblingFailed:          true,
	api.TaskArtifactDownloadFailed: true,
}

func taskStatus(ts *api.TaskState) taskCond {
	if ts == nil {
		return taskPending
	}
	if ts.Failed {
		return taskFailed
	}
	last := ""
	for i := len(ts.Events) - 1; i >= 0; i-- {
		if e := ts.Events[i]; e != nil && lifecycle[e.Type] {
			last = e.Type
			break
		}
	}
	switch ts.State {
	case "running":
		if last == "" || last == api.TaskStarted {
			return taskUp
		}
		return taskDown
	case "dead":
		return taskDown
	}
	if last == "" || last == api.TaskStarted {
		return taskPending
	}
	return taskDown
}

func startedOnce(ts *api.TaskState) bool {
	if !ts.StartedAt.IsZero() {
		return true
	}
	for _, e := range ts.Events {
		if e != nil && (e.Type == api.TaskDriverFailure || e.Type == api.TaskSetupFailure ||
			e.Type == api.TaskFailedValidation || e.Type == api.TaskTerminated) {
			return true
		}
	}
	return false
}

// lastEvents formats the task's last n events, oldest first.
func lastEvents(ts *api.TaskState, n int) string {
	if ts == nil || len(ts.Events) == 0 {
		return "no task events"
	}
	evs := ts.Events
	if len(evs) > n {
		evs = evs[len(evs)-n:]
	}
	parts := make([]string, 0, len(evs))
	for _, e := range evs {
		if e == nil {
			continue
		}
		msg := e.DisplayMessage
		if msg == "" {
			msg = firstNonEmpty(e.DriverError, e.SetupError, e.ValidationError, e.KillError, e.RestartReason, e.Message)
		}
		if msg == "" && e.Type == api.TaskTerminated {
			msg = fmt.Sprintf("exit code %d, signal %d", e.ExitCode, e.Signal)
		}
		if msg != "" {
			parts = append(parts, e.Type+": "+msg)
		} else {
			parts = append(parts, e.Type)
		}
	}
	return strings.Join(parts, "; ")
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// allocFromStub makes the part of an allocation the machine reads out of a
// list stub (the blocking-query fallback returns stubs).
func allocFromStub(s *api.AllocationListStub) *api.Allocation {
	return &api.Allocation{
		ID:                 s.ID,
		Namespace:          s.Namespace,
		EvalID:             s.EvalID,
		Name:               s.Name,
		NodeID:             s.NodeID,
		NodeName:           s.NodeName,
		JobID:              s.JobID,
		TaskGroup:          s.TaskGroup,
		AllocatedResources: s.AllocatedResources,
		DesiredStatus:      s.DesiredStatus,
		DesiredDescription: s.DesiredDescription,
		ClientStatus:       s.ClientStatus,
		ClientDescription:  s.ClientDescription,
		TaskStates:         s.TaskStates,
		CreateIndex:        s.CreateIndex,
		ModifyIndex:        s.ModifyIndex,
		CreateTime:         s.CreateTime,
		ModifyTime:         s.ModifyTime,
	}
}
