package drain

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/store"
	"github.com/bay-sandbox/bay/store/sqlite"
)

// sessions stands in for the service: Stop releases the session the way
// the service does (store cleared, compute stopped), DeleteSandbox removes
// the row and its managed cargo.
type sessions struct {
	st      *sqlite.Store
	compute *compute
	failFor string
}

func (s *sessions) Stop(ctx context.Context, sb store.Sandbox) error {
	if sb.ID == s.failFor {
		return errors.New("nomad said no")
	}
	if err := s.compute.Stop(ctx, sb.SessionID); err != nil {
		return err
	}
	return s.st.SetSession(ctx, sb.ID, "")
}

func (s *sessions) DeleteSandbox(ctx context.Context, sb store.Sandbox) error {
	if err := s.st.DeleteSandbox(ctx, sb.ID); err != nil {
		return err
	}
	cg, err := s.st.GetCargo(ctx, "", sb.CargoID)
	if err != nil {
		return err
	}
	if cg.Managed && cg.ManagedBySandboxID == sb.ID {
		if err := s.compute.DeleteCargo(ctx, allocator.Cargo{ID: cg.ID}); err != nil {
			return err
		}
		return s.st.DeleteCargo(ctx, cg.ID)
	}
	return nil
}

// compute is an allocator with running sessions and cargo storage.
type compute struct {
	running map[string]allocator.SessionInfo
	volumes map[string]bool
}

func (c *compute) List(context.Context) ([]allocator.SessionInfo, error) {
	var out []allocator.SessionInfo
	for _, s := range c.running {
		out = append(out, s)
	}
	return out, nil
}

func (c *compute) Stop(_ context.Context, id string) error {
	delete(c.running, id)
	return nil
}

func (c *compute) DeleteCargo(_ context.Context, cg allocator.Cargo) error {
	delete(c.volumes, cg.ID)
	return nil
}

// fixture: 150 sandboxes (more than one page), each with a managed cargo
// and a running session, one external cargo, and one orphan session.
func fixture(t *testing.T) (*sqlite.Store, *sessions, *compute) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &compute{running: map[string]allocator.SessionInfo{}, volumes: map[string]bool{}}
	now := time.Now().UTC()
	for i := 0; i < 150; i++ {
		id := fmt.Sprintf("sb-%03d", i)
		cg := store.Cargo{ID: "cg-" + id, Owner: "o", Managed: true, ManagedBySandboxID: id, Backend: "b", Locator: "l",
			CreatedAt: now.Add(time.Duration(i) * time.Millisecond), LastAccessedAt: now}
		sb := store.Sandbox{ID: id, Owner: "o", ProfileID: "p", CargoID: cg.ID, CreatedAt: now.Add(time.Duration(i) * time.Millisecond)}
		if err := st.CreateSandboxWithCargo(ctx, sb, cg); err != nil {
			t.Fatal(err)
		}
		if err := st.SetSession(ctx, id, "sess-"+id); err != nil {
			t.Fatal(err)
		}
		c.running["sess-"+id] = allocator.SessionInfo{SandboxID: id, SessionID: "sess-" + id}
		c.volumes[cg.ID] = true
	}
	if err := st.CreateCargo(ctx, store.Cargo{ID: "cg-external", Owner: "o2", Backend: "b", Locator: "l", CreatedAt: now, LastAccessedAt: now}); err != nil {
		t.Fatal(err)
	}
	c.volumes["cg-external"] = true
	if err := st.CreateCargo(ctx, store.Cargo{ID: "cg-pooled", Owner: store.PoolOwner, Managed: true, Backend: "b", Locator: "l", CreatedAt: now, LastAccessedAt: now}); err != nil {
		t.Fatal(err)
	}
	c.volumes["cg-pooled"] = true
	c.running["sess-orphan"] = allocator.SessionInfo{SandboxID: "gone", SessionID: "sess-orphan"}
	return st, &sessions{st: st, compute: c}, c
}

func TestRunStopsSessionsAndKeepsCargos(t *testing.T) {
	st, ss, c := fixture(t)
	r, err := Run(context.Background(), st, ss, c, false, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.running) != 0 {
		t.Errorf("still running after the drain: %v", c.running)
	}
	if r.SessionsStopped != 151 || r.SandboxesDeleted != 0 || r.CargosDeleted != 1 || r.CargosKept != 151 {
		t.Errorf("report %+v, want 151 stopped (one orphan), 151 cargos kept, the pooled one deleted", r)
	}
	if len(c.volumes) != 151 || c.volumes["cg-pooled"] {
		t.Errorf("%d volumes left, want the 151 of users kept and the pooled one gone", len(c.volumes))
	}
	left, err := st.ListWithSession(context.Background())
	if err != nil || len(left) != 0 {
		t.Errorf("sandboxes still recorded with a session: %d %v", len(left), err)
	}
	n, err := st.CountSandboxes(context.Background(), "")
	if err != nil || n != 150 {
		t.Errorf("sandboxes = %d (%v), want every one kept", n, err)
	}
}

func TestRunDeleteCargosRemovesEverything(t *testing.T) {
	st, ss, c := fixture(t)
	r, err := Run(context.Background(), st, ss, c, true, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.running) != 0 || len(c.volumes) != 0 {
		t.Errorf("left behind: sessions %v, volumes %v", c.running, c.volumes)
	}
	if r.SandboxesDeleted != 150 || r.CargosDeleted != 2 || r.CargosKept != 0 {
		t.Errorf("report %+v, want 150 sandboxes, the external and the pooled cargo deleted", r)
	}
	cgs, _, err := st.ListCargos(context.Background(), store.CargoFilter{})
	if err != nil || len(cgs) != 0 {
		t.Errorf("cargos left in the store: %d %v", len(cgs), err)
	}
}

func TestRunCarriesOnPastFailures(t *testing.T) {
	st, ss, c := fixture(t)
	ss.failFor = "sb-007"
	r, err := Run(context.Background(), st, ss, c, false, hclog.NewNullLogger())
	if err == nil || !strings.Contains(err.Error(), "stop session of sb-007: nomad said no") {
		t.Fatalf("error %v, want the failed stop named", err)
	}
	// The failed one is still caught by the allocator's listing.
	if len(c.running) != 0 || r.SessionsStopped != 151 {
		t.Errorf("running %v, report %+v", c.running, r)
	}
}

func TestDeliberate(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	var asked []string
	lookup := func(stopped, found bool, err error) JobLookup {
		return func(_ context.Context, ns, id string) (bool, bool, error) {
			asked = append(asked, ns+"/"+id)
			return stopped, found, err
		}
	}
	cases := []struct {
		name   string
		getenv func(string) string
		lookup JobLookup
		want   bool
		reason string
	}{
		{"outside nomad", env(), nil, true, "not running under Nomad"},
		{"job stopped", env("NOMAD_JOB_ID", "bay", "NOMAD_NAMESPACE", "apps"), lookup(true, true, nil), true, "job bay was stopped"},
		{"job purged", env("NOMAD_JOB_ID", "bay"), lookup(false, false, nil), true, "job bay was purged"},
		{"update or restart", env("NOMAD_JOB_ID", "bay"), lookup(false, true, nil), false, "still registered"},
		{"nomad unreachable", env("NOMAD_JOB_ID", "bay"), lookup(false, false, errors.New("connection refused")), false, "connection refused"},
		{"no client", env("NOMAD_JOB_ID", "bay"), nil, false, "no Nomad client"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, why := Deliberate(context.Background(), tc.getenv, tc.lookup)
			if got != tc.want || !strings.Contains(why, tc.reason) {
				t.Errorf("Deliberate = %v, %q; want %v with %q", got, why, tc.want, tc.reason)
			}
		})
	}
	sort.Strings(asked)
	if want := []string{"apps/bay", "default/bay", "default/bay", "default/bay"}; !slices.Equal(asked, want) {
		t.Errorf("looked up %v, want %v (NOMAD_NAMESPACE, default when unset)", asked, want)
	}
}
