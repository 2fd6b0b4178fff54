package reconcile

import (
	"context"
	"errors"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/store"
)

type fakeStore struct {
	sandboxes map[string]store.Sandbox
	cargos    map[string]bool
}

func (f *fakeStore) ListIntents(context.Context) ([]store.Sandbox, error) {
	var out []store.Sandbox
	for _, sb := range f.sandboxes {
		if sb.Intent != "" {
			out = append(out, sb)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *fakeStore) GetSandbox(_ context.Context, _, id string) (store.Sandbox, error) {
	if sb, ok := f.sandboxes[id]; ok {
		return sb, nil
	}
	return store.Sandbox{}, store.ErrNotFound
}

func (f *fakeStore) GetCargo(_ context.Context, _, id string) (store.Cargo, error) {
	if f.cargos[id] {
		return store.Cargo{ID: id}, nil
	}
	return store.Cargo{}, store.ErrNotFound
}

type fakeSessions struct {
	carried  []string
	fail     map[string]bool
	starting map[string]string // sandbox → session being started
}

func (f *fakeSessions) CarryOut(_ context.Context, sb store.Sandbox) error {
	if f.fail[sb.ID] {
		return errors.New("nomad unreachable")
	}
	f.carried = append(f.carried, sb.Intent+" "+sb.ID)
	return nil
}

func (f *fakeSessions) SessionID(id string) string { return f.starting[id] }

type fakeCompute struct {
	running []allocator.SessionInfo
	vols    []allocator.CargoVolume
	stopped []string
	deleted []string
}

func (f *fakeCompute) List(context.Context) ([]allocator.SessionInfo, error) { return f.running, nil }
func (f *fakeCompute) Stop(_ context.Context, id string) error {
	f.stopped = append(f.stopped, id)
	return nil
}
func (f *fakeCompute) DeleteCargo(_ context.Context, c allocator.Cargo) error {
	f.deleted = append(f.deleted, c.ID)
	return nil
}
func (f *fakeCompute) ListCargoVolumes(context.Context) ([]allocator.CargoVolume, error) {
	return f.vols, nil
}

// TestOnce: pending intents are carried out (a failing one is reported and
// left for the next pass); sessions whose sandbox is gone or records
// another session are stopped, while a sandbox's own session, one being
// started and one of a sandbox being deleted stay; volumes no cargo names
// are deleted once older than the grace period, owned and young ones stay.
func TestOnce(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	st := &fakeStore{
		sandboxes: map[string]store.Sandbox{
			"sb-run":    {ID: "sb-run", SessionID: "s-run"},
			"sb-stop":   {ID: "sb-stop", SessionID: "s-stop", Intent: store.IntentStop},
			"sb-del":    {ID: "sb-del", SessionID: "s-del", Intent: store.IntentDelete},
			"sb-down":   {ID: "sb-down", Intent: store.IntentDelete},
			"sb-new":    {ID: "sb-new", SessionID: "s-new"},
			"sb-moving": {ID: "sb-moving"},
		},
		cargos: map[string]bool{"ws-owned": true},
	}
	ss := &fakeSessions{fail: map[string]bool{"sb-down": true}, starting: map[string]string{"sb-moving": "s-moving"}}
	c := &fakeCompute{
		running: []allocator.SessionInfo{
			{SandboxID: "sb-run", SessionID: "s-run"},
			{SandboxID: "sb-del", SessionID: "s-del"},
			{SandboxID: "sb-new", SessionID: "s-old"},       // replaced: stale
			{SandboxID: "sb-gone", SessionID: "s-gone"},     // no sandbox
			{SandboxID: "sb-moving", SessionID: "s-moving"}, // being started
		},
		vols: []allocator.CargoVolume{
			{Cargo: allocator.Cargo{ID: "ws-owned"}, CreatedAt: now.Add(-time.Hour)},
			{Cargo: allocator.Cargo{ID: "ws-orphan"}, CreatedAt: now.Add(-time.Hour)},
			{Cargo: allocator.Cargo{ID: "ws-young"}, CreatedAt: now.Add(-time.Minute)},
		},
	}
	l := New(Config{VolumeGrace: 10 * time.Minute, Now: func() time.Time { return now }}, st, ss, c, hclog.NewNullLogger())
	r := l.Once(context.Background())

	if want := []string{"delete sb-del", "stop sb-stop"}; !slices.Equal(ss.carried, want) {
		t.Errorf("carried out %v, want %v", ss.carried, want)
	}
	if r.Intents != 2 || len(r.Errors) != 1 {
		t.Errorf("report %+v, want 2 intents and the failing one as an error", r)
	}
	sort.Strings(c.stopped)
	if want := []string{"s-gone", "s-old"}; !slices.Equal(c.stopped, want) {
		t.Errorf("stopped %v, want %v", c.stopped, want)
	}
	if want := []string{"ws-orphan"}; !slices.Equal(c.deleted, want) {
		t.Errorf("deleted volumes %v, want %v", c.deleted, want)
	}
	if r.Sessions != 2 || r.Volumes != 1 {
		t.Errorf("report %+v", r)
	}
}
