package nomad

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

// The sequences below follow what a dev agent reports for a two-task bridge
// group on raw_exec: the client first acknowledges the allocation (tasks
// pending with Received / Task Setup), then each task gets Started; a killed
// task gets Terminated (state still "running"), then Restarting (state
// "pending", Restarts+1), then Started again.

var shipGull = []string{"ship", "gull"}

func tasks() map[string]string { return map[string]string{"ship": "ship", "gull": "gull"} }

func ev(typ, msg string) *api.TaskEvent {
	return &api.TaskEvent{Type: typ, DisplayMessage: msg, Time: time.Now().UnixNano()}
}

type taskSpec struct {
	state    string
	restarts uint64
	failed   bool
	events   []string // "Type" or "Type|message"
}

func alloc(index uint64, client, desired string, ts map[string]taskSpec) *api.Allocation {
	a := &api.Allocation{ID: "a1", JobID: "bay-sb-se", ClientStatus: client, DesiredStatus: desired, ModifyIndex: index, TaskStates: map[string]*api.TaskState{}}
	for name, spec := range ts {
		st := &api.TaskState{State: spec.state, Restarts: spec.restarts, Failed: spec.failed}
		for _, e := range spec.events {
			typ, msg, _ := strings.Cut(e, "|")
			st.Events = append(st.Events, ev(typ, msg))
			if typ == api.TaskStarted {
				st.StartedAt = time.Now()
			}
		}
		a.TaskStates[name] = st
	}
	return a
}

var (
	pending = taskSpec{state: "pending", events: []string{api.TaskReceived, api.TaskSetup}}
	running = taskSpec{state: "running", events: []string{api.TaskReceived, api.TaskSetup, api.TaskStarted}}
)

func kinds(cs []Change) []string {
	var out []string
	for _, c := range cs {
		s := c.Kind.String()
		if c.Container != "" {
			s += ":" + c.Container
		}
		out = append(out, s)
	}
	return out
}

func want(t *testing.T, got []Change, exp ...string) {
	t.Helper()
	g := strings.Join(kinds(got), ",")
	if g != strings.Join(exp, ",") {
		t.Fatalf("changes = [%s], want [%s]", g, strings.Join(exp, ","))
	}
}

func TestMachineStartHappyPath(t *testing.T) {
	m := NewMachine(shipGull, tasks())
	want(t, m.Observe(alloc(10, "pending", "run", nil)))
	want(t, m.Observe(alloc(11, "pending", "run", map[string]taskSpec{"ship": pending, "gull": pending})))
	want(t, m.Observe(alloc(12, "pending", "run", map[string]taskSpec{"ship": running, "gull": pending})))
	if got := m.Down(); len(got) != 1 || got[0] != "gull" {
		t.Fatalf("down while starting = %v, want [gull]", got)
	}
	want(t, m.Observe(alloc(13, "running", "run", map[string]taskSpec{"ship": running, "gull": running})), "tasks_running")
	// The same state again (stream + reconcile) changes nothing.
	want(t, m.Observe(alloc(13, "running", "run", map[string]taskSpec{"ship": running, "gull": running})))
	if m.Phase() != PhaseStarting {
		t.Fatalf("phase = %v before health, want starting", m.Phase())
	}
	if !m.TasksRunning() || !m.MarkRunning() {
		t.Fatal("MarkRunning refused a healthy start")
	}
	if m.Phase() != PhaseRunning || len(m.Down()) != 0 {
		t.Fatalf("phase %v down %v, want running and none down", m.Phase(), m.Down())
	}
}

func TestMachineStartFailsOnDriverFailure(t *testing.T) {
	m := NewMachine(shipGull, tasks())
	m.Observe(alloc(11, "pending", "run", map[string]taskSpec{"ship": pending, "gull": pending}))
	bad := taskSpec{state: "pending", events: []string{api.TaskReceived, api.TaskSetup,
		api.TaskDriverFailure + "|failed to launch command with executor: exec: \"/nope\": no such file",
		api.TaskRestarting + "|Task restarting in 1s"}}
	got := m.Observe(alloc(12, "pending", "run", map[string]taskSpec{"ship": running, "gull": bad}))
	want(t, got, "start_failed")
	if !strings.Contains(got[0].Reason, "gull") || !strings.Contains(got[0].Reason, "no such file") {
		t.Fatalf("reason %q should name the container and the driver error", got[0].Reason)
	}
	if m.Phase() != PhaseFailed {
		t.Fatalf("phase = %v, want failed", m.Phase())
	}
	// Terminal: nothing more comes out.
	want(t, m.Observe(alloc(13, "running", "run", map[string]taskSpec{"ship": running, "gull": running})))
}

func TestMachineStartFailsWhenTaskExitsEarly(t *testing.T) {
	m := NewMachine(shipGull, tasks())
	exited := taskSpec{state: "running", events: []string{api.TaskReceived, api.TaskStarted, api.TaskTerminated + "|Exit Code: 2"}}
	want(t, m.Observe(alloc(12, "running", "run", map[string]taskSpec{"ship": running, "gull": exited})), "start_failed")
	if !strings.Contains(m.Reason(), "Exit Code: 2") {
		t.Fatalf("reason %q lacks the exit", m.Reason())
	}
}

func TestMachineStartFailsOnAllocFailed(t *testing.T) {
	m := NewMachine(shipGull, tasks())
	got := m.Observe(alloc(12, "failed", "run", map[string]taskSpec{"ship": {state: "dead", failed: true, events: []string{api.TaskSetupFailure + "|volume not found"}}}))
	want(t, got, "start_failed")
	if !strings.Contains(got[0].Reason, "allocation failed") || !strings.Contains(got[0].Reason, "volume not found") {
		t.Fatalf("reason = %q", got[0].Reason)
	}
}

func TestMachineMarkRunningRefusedAfterFail(t *testing.T) {
	m := NewMachine(shipGull, tasks())
	m.Observe(alloc(13, "running", "run", map[string]taskSpec{"ship": running, "gull": running}))
	m.Fail("start deadline passed")
	if m.MarkRunning() {
		t.Fatal("MarkRunning succeeded on a failed machine")
	}
	if m.Phase() != PhaseFailed || m.Reason() != "start deadline passed" {
		t.Fatalf("phase %v reason %q", m.Phase(), m.Reason())
	}
}

func TestMachineDegradedAndHealed(t *testing.T) {
	m := NewMachine(shipGull, tasks())
	m.Observe(alloc(13, "running", "run", map[string]taskSpec{"ship": running, "gull": running}))
	m.MarkRunning()

	terminated := taskSpec{state: "running", events: []string{api.TaskStarted, api.TaskTerminated + "|Exit Code: 137, Signal: 9"}}
	got := m.Observe(alloc(20, "running", "run", map[string]taskSpec{"ship": running, "gull": terminated}))
	want(t, got, "down:gull")
	if !strings.Contains(got[0].Reason, "Signal: 9") {
		t.Fatalf("down reason %q", got[0].Reason)
	}
	if d := m.Down(); len(d) != 1 || d[0] != "gull" || !m.IsDown("gull") || m.IsDown("ship") {
		t.Fatalf("down = %v", d)
	}
	restarting := taskSpec{state: "pending", restarts: 1, events: []string{api.TaskStarted, api.TaskTerminated, api.TaskRestarting + "|Task restarting in 1s"}}
	want(t, m.Observe(alloc(21, "running", "run", map[string]taskSpec{"ship": running, "gull": restarting})))
	back := taskSpec{state: "running", restarts: 1, events: []string{api.TaskStarted, api.TaskTerminated, api.TaskRestarting, api.TaskStarted}}
	got = m.Observe(alloc(22, "running", "run", map[string]taskSpec{"ship": running, "gull": back}))
	want(t, got, "restarted:gull")
	if got[0].Generation != 1 {
		t.Fatalf("generation = %d, want 1", got[0].Generation)
	}
	if !m.IsDown("gull") {
		t.Fatal("gull must stay down until its /health answers")
	}
	// A stale probe of the old incarnation cannot mark it up.
	if m.MarkUp("gull", 0) {
		t.Fatal("MarkUp accepted a stale generation")
	}
	if !m.MarkUp("gull", 1) {
		t.Fatal("MarkUp refused the current generation")
	}
	if len(m.Down()) != 0 || m.Phase() != PhaseRunning {
		t.Fatalf("after heal: down %v phase %v", m.Down(), m.Phase())
	}
	if m.MarkUp("gull", 1) {
		t.Fatal("MarkUp twice must report false")
	}
}

func TestMachineMissedRestartIsDownThenRestarted(t *testing.T) {
	m := NewMachine(shipGull, tasks())
	m.Observe(alloc(13, "running", "run", map[string]taskSpec{"ship": running, "gull": running}))
	m.MarkRunning()
	// The stream dropped and the reconcile read shows gull already back.
	back := taskSpec{state: "running", restarts: 1, events: []string{api.TaskStarted, api.TaskTerminated, api.TaskRestarting, api.TaskStarted}}
	want(t, m.Observe(alloc(30, "running", "run", map[string]taskSpec{"ship": running, "gull": back})), "down:gull", "restarted:gull")
}

func TestMachineStaleAndForeignAllocsIgnored(t *testing.T) {
	m := NewMachine(shipGull, tasks())
	m.Observe(alloc(13, "running", "run", map[string]taskSpec{"ship": running, "gull": running}))
	m.MarkRunning()
	terminated := taskSpec{state: "dead", events: []string{api.TaskStarted, api.TaskTerminated}}
	// Older index: ignored.
	want(t, m.Observe(alloc(5, "running", "run", map[string]taskSpec{"ship": running, "gull": terminated})))
	other := alloc(40, "failed", "run", nil)
	other.ID = "a2"
	want(t, m.Observe(other))
	if m.Phase() != PhaseRunning {
		t.Fatalf("phase = %v, want running", m.Phase())
	}
}

func TestMachineGone(t *testing.T) {
	for name, a := range map[string]*api.Allocation{
		"restarts exhausted": alloc(50, "running", "run", map[string]taskSpec{"ship": running, "gull": {state: "dead", failed: true, restarts: 3, events: []string{api.TaskTerminated, api.TaskNotRestarting + "|Exceeded allowed attempts 3 in interval 5m0s"}}}),
		"alloc failed":       alloc(50, "failed", "run", map[string]taskSpec{"ship": {state: "dead", events: []string{api.TaskSiblingFailed}}, "gull": running}),
		"node lost":          alloc(50, "lost", "stop", nil),
		"stopped outside":    alloc(50, "running", "stop", map[string]taskSpec{"ship": running, "gull": running}),
	} {
		t.Run(name, func(t *testing.T) {
			m := NewMachine(shipGull, tasks())
			m.Observe(alloc(13, "running", "run", map[string]taskSpec{"ship": running, "gull": running}))
			m.MarkRunning()
			got := m.Observe(a)
			want(t, got, "gone")
			if got[0].Reason == "" || m.Phase() != PhaseGone {
				t.Fatalf("reason %q phase %v", got[0].Reason, m.Phase())
			}
			want(t, m.Observe(alloc(60, "running", "run", map[string]taskSpec{"ship": running, "gull": running})))
		})
	}
}

func TestMachineAdoptBaseline(t *testing.T) {
	m := AdoptMachine(shipGull, tasks())
	if m.Phase() != PhaseRunning {
		t.Fatalf("adopted phase = %v", m.Phase())
	}
	restarted := taskSpec{state: "running", restarts: 2, events: []string{api.TaskStarted, api.TaskTerminated, api.TaskRestarting, api.TaskStarted}}
	restarting := taskSpec{state: "pending", restarts: 1, events: []string{api.TaskStarted, api.TaskTerminated, api.TaskRestarting}}
	// Baseline: no changes; restarted-and-running ship counts as up.
	want(t, m.Observe(alloc(70, "running", "run", map[string]taskSpec{"ship": restarted, "gull": restarting})))
	if d := m.Down(); len(d) != 1 || d[0] != "gull" {
		t.Fatalf("down = %v, want [gull]", d)
	}
	back := taskSpec{state: "running", restarts: 1, events: []string{api.TaskStarted, api.TaskTerminated, api.TaskRestarting, api.TaskStarted}}
	want(t, m.Observe(alloc(71, "running", "run", map[string]taskSpec{"ship": restarted, "gull": back})), "restarted:gull")
}

func TestLastEventsFormatsFallbacks(t *testing.T) {
	ts := &api.TaskState{Events: []*api.TaskEvent{
		{Type: api.TaskReceived},
		{Type: api.TaskDriverFailure, DriverError: "boom"},
		{Type: api.TaskTerminated, ExitCode: 3},
	}}
	got := lastEvents(ts, 2)
	if got != "Driver Failure: boom; Terminated: exit code 3, signal 0" {
		t.Fatalf("lastEvents = %q", got)
	}
	if lastEvents(nil, 3) != "no task events" {
		t.Fatal("nil task state")
	}
}

func TestMachineServiceGoneIsFirstSignOfDeath(t *testing.T) {
	m := NewMachine(shipGull, tasks())
	m.Observe(alloc(13, "running", "run", map[string]taskSpec{"ship": running, "gull": running}))
	// Not running yet: a deregistration during start is left to the
	// allocation events.
	want(t, m.ServiceGone("a1", "gull"))
	m.MarkRunning()

	want(t, m.ServiceGone("other-alloc", "gull"))
	want(t, m.ServiceGone("a1", "nope"))
	got := m.ServiceGone("a1", "gull")
	want(t, got, "down:gull")
	want(t, m.ServiceGone("a1", "gull")) // once
	// The batched allocation update confirms it: no second down.
	restarting := taskSpec{state: "pending", restarts: 1, events: []string{api.TaskStarted, api.TaskTerminated, api.TaskRestarting}}
	want(t, m.Observe(alloc(20, "running", "run", map[string]taskSpec{"ship": running, "gull": restarting})))
	back := taskSpec{state: "running", restarts: 1, events: []string{api.TaskStarted, api.TaskTerminated, api.TaskRestarting, api.TaskStarted}}
	want(t, m.Observe(alloc(21, "running", "run", map[string]taskSpec{"ship": running, "gull": back})), "restarted:gull")
	if !m.MarkUp("gull", 1) {
		t.Fatal("MarkUp after restart refused")
	}
}

func TestMachineServiceGoneWithoutDeathHeals(t *testing.T) {
	m := NewMachine(shipGull, tasks())
	m.Observe(alloc(13, "running", "run", map[string]taskSpec{"ship": running, "gull": running}))
	m.MarkRunning()
	want(t, m.ServiceGone("a1", "ship"), "down:ship")
	// The task never stopped: the next observation asks for a probe.
	want(t, m.Observe(alloc(14, "running", "run", map[string]taskSpec{"ship": running, "gull": running})), "restarted:ship")
	if !m.MarkUp("ship", 0) || len(m.Down()) != 0 {
		t.Fatalf("ship not healed: down %v", m.Down())
	}
}

func TestMachineJobStopped(t *testing.T) {
	m := NewMachine(shipGull, tasks())
	want(t, m.JobStopped("job deregistered outside Bay"), "start_failed")
	if m.Phase() != PhaseFailed {
		t.Fatalf("phase %v", m.Phase())
	}
	m = NewMachine(shipGull, tasks())
	m.Observe(alloc(13, "running", "run", map[string]taskSpec{"ship": running, "gull": running}))
	m.MarkRunning()
	want(t, m.JobStopped("job deregistered outside Bay"), "gone")
	want(t, m.JobStopped("again"))
	if m.Reason() != "job deregistered outside Bay" {
		t.Fatalf("reason %q", m.Reason())
	}
}

func TestMachineHealthBeatsLaggingAllocation(t *testing.T) {
	// The probes saw both containers healthy before the servers heard the
	// tasks started (clients batch task updates).
	m := NewMachine(shipGull, tasks())
	want(t, m.Observe(alloc(11, "pending", "run", map[string]taskSpec{"ship": pending, "gull": pending})))
	if !m.MarkRunning() {
		t.Fatal("MarkRunning refused")
	}
	if len(m.Down()) != 0 {
		t.Fatalf("down after MarkRunning = %v", m.Down())
	}
	// The lagging copy (and a stale one) must not read as deaths.
	want(t, m.Observe(alloc(12, "pending", "run", map[string]taskSpec{"ship": pending, "gull": running})))
	want(t, m.Observe(alloc(13, "running", "run", map[string]taskSpec{"ship": running, "gull": running})))
	if len(m.Down()) != 0 {
		t.Fatalf("down = %v", m.Down())
	}
	// A real death after that still counts.
	dead := taskSpec{state: "running", events: []string{api.TaskStarted, api.TaskTerminated}}
	want(t, m.Observe(alloc(14, "running", "run", map[string]taskSpec{"ship": running, "gull": dead})), "down:gull")
}
