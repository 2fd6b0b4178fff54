// Package drain empties a gateway that is being shut down on purpose: it
// stops every session (and, when asked, deletes every sandbox and cargo), so
// that removing a deployment (nomad job stop, terraform destroy) leaves no
// compute behind. Whether a shutdown is deliberate is decided by Deliberate;
// a restart, a rolling update or a node drain keeps sessions for re-adoption.
package drain

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/store"
)

// Store is what a drain reads and removes.
type Store interface {
	ListWithSession(ctx context.Context) ([]store.Sandbox, error)
	ListSandboxes(ctx context.Context, f store.SandboxFilter) ([]store.Sandbox, string, error)
	ListCargos(ctx context.Context, f store.CargoFilter) ([]store.Cargo, string, error)
	DeleteCargo(ctx context.Context, id string) error
}

// Sessions is the sandbox service as a drain uses it.
type Sessions interface {
	Stop(ctx context.Context, sb store.Sandbox) error
	DeleteSandbox(ctx context.Context, sb store.Sandbox) error
}

// Compute is the allocator as a drain uses it.
type Compute interface {
	List(ctx context.Context) ([]allocator.SessionInfo, error)
	Stop(ctx context.Context, sessionID string) error
	DeleteCargo(ctx context.Context, c allocator.Cargo) error
}

// Report says what a drain did.
type Report struct {
	SessionsStopped  int
	SandboxesDeleted int
	CargosDeleted    int
	// CargosKept is the number of cargos left in place (user data).
	CargosKept int
}

// Run stops every session the store or the allocator knows of; with
// deleteCargos it then deletes every sandbox and every cargo. It carries on
// past failures and returns them all.
func Run(ctx context.Context, st Store, ss Sessions, c Compute, deleteCargos bool, log hclog.Logger) (Report, error) {
	var r Report
	var errs []error
	stopped := map[string]bool{}

	withSession, err := st.ListWithSession(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("list sandboxes with sessions: %w", err))
	}
	for _, sb := range withSession {
		if err := ss.Stop(ctx, sb); err != nil {
			errs = append(errs, fmt.Errorf("stop session of %s: %w", sb.ID, err))
			continue
		}
		stopped[sb.SessionID] = true
		r.SessionsStopped++
	}
	// Sessions no sandbox refers to (an orphan, a start cut short).
	running, err := c.List(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("list sessions: %w", err))
	}
	for _, s := range running {
		if stopped[s.SessionID] {
			continue
		}
		if err := c.Stop(ctx, s.SessionID); err != nil {
			errs = append(errs, fmt.Errorf("stop session %s: %w", s.SessionID, err))
			continue
		}
		r.SessionsStopped++
	}

	if deleteCargos {
		n, err := eachPage(ctx, func(ctx context.Context, cursor string) ([]store.Sandbox, string, error) {
			return st.ListSandboxes(ctx, store.SandboxFilter{Cursor: cursor, Limit: 100})
		}, func(sb store.Sandbox) error {
			if err := ss.DeleteSandbox(ctx, sb); err != nil {
				return fmt.Errorf("delete sandbox %s: %w", sb.ID, err)
			}
			return nil
		})
		r.SandboxesDeleted = n
		errs = append(errs, err...)
	}
	// What remains: cargos not managed by a sandbox (or all of them when
	// they are kept), and the pool's spare ones, deleted either way.
	n, cerrs := eachPage(ctx, func(ctx context.Context, cursor string) ([]store.Cargo, string, error) {
		return st.ListCargos(ctx, store.CargoFilter{Cursor: cursor, Limit: 100})
	}, func(cg store.Cargo) error {
		// Pooled cargos, made ahead of demand, hold no one's data.
		if !deleteCargos && cg.Owner != store.PoolOwner {
			r.CargosKept++
			return nil
		}
		if err := c.DeleteCargo(ctx, allocator.Cargo{ID: cg.ID, Backend: cg.Backend, Locator: cg.Locator}); err != nil {
			return fmt.Errorf("delete cargo storage %s: %w", cg.ID, err)
		}
		if err := st.DeleteCargo(ctx, cg.ID); err != nil {
			return fmt.Errorf("delete cargo %s: %w", cg.ID, err)
		}
		return nil
	})
	r.CargosDeleted = n - r.CargosKept
	errs = append(errs, cerrs...)

	if r.CargosKept > 0 {
		log.Info("drained: sessions stopped, cargos kept (user data; shutdown { delete_cargos = true } deletes them)",
			"sessions_stopped", r.SessionsStopped, "cargos_kept", r.CargosKept)
	} else {
		log.Info("drained", "sessions_stopped", r.SessionsStopped, "sandboxes_deleted", r.SandboxesDeleted, "cargos_deleted", r.CargosDeleted)
	}
	return r, errors.Join(errs...)
}

// eachPage applies fn to every item of a keyset-paged listing and counts
// the successes. Items fn removes do not shift the pages: the cursor is a
// key, not an offset.
func eachPage[T any](ctx context.Context, list func(context.Context, string) ([]T, string, error), fn func(T) error) (int, []error) {
	var errs []error
	n := 0
	cursor := ""
	for {
		items, next, err := list(ctx, cursor)
		if err != nil {
			return n, append(errs, fmt.Errorf("list: %w", err))
		}
		for _, it := range items {
			if err := fn(it); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
		if next == "" || ctx.Err() != nil {
			if ctx.Err() != nil {
				errs = append(errs, ctx.Err())
			}
			return n, errs
		}
		cursor = next
	}
}

// JobLookup reads a Nomad job: stopped is its Stop flag, found false when
// the job no longer exists (purged).
type JobLookup func(ctx context.Context, namespace, id string) (stopped, found bool, err error)

// Deliberate says whether this shutdown is on purpose, and why. Under Nomad
// (getenv gives the task's NOMAD_JOB_ID) it is when the gateway's own job is
// stopped or gone; a job still running means a restart, an update, a
// rescheduling or a node drain, and sessions stay for the next gateway.
// When the job cannot be read the answer is no: keeping sessions loses
// nothing. Outside Nomad every SIGTERM/SIGINT is deliberate.
func Deliberate(ctx context.Context, getenv func(string) string, lookup JobLookup) (bool, string) {
	job := getenv("NOMAD_JOB_ID")
	if job == "" {
		return true, "not running under Nomad: every stop signal is deliberate"
	}
	ns := getenv("NOMAD_NAMESPACE")
	if ns == "" {
		ns = "default"
	}
	if lookup == nil {
		return false, "cannot read the gateway's own job " + job + ": no Nomad client"
	}
	stopped, found, err := lookup(ctx, ns, job)
	switch {
	case err != nil:
		return false, fmt.Sprintf("cannot read the gateway's own job %s: %v", job, err)
	case !found:
		return true, "the gateway's job " + job + " was purged"
	case stopped:
		return true, "the gateway's job " + job + " was stopped"
	default:
		return false, "the gateway's job " + job + " is still registered (restart, update, rescheduling or node drain)"
	}
}
