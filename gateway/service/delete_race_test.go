package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/gateway/service"
	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/store"
	"github.com/bay-sandbox/bay/store/sqlite"
)

// hookStore runs beforeDelete inside DeleteSandbox, before the row goes.
type hookStore struct {
	*sqlite.Store
	beforeDelete func()
}

func (h *hookStore) DeleteSandbox(ctx context.Context, id string) error {
	if h.beforeDelete != nil {
		h.beforeDelete()
	}
	return h.Store.DeleteSandbox(ctx, id)
}

// TestDeleteRacingColdStartLeavesNoCompute: a capability call that starts a
// session while the sandbox is being deleted must not leave compute running
// for a sandbox that no longer exists.
func TestDeleteRacingColdStartLeavesNoCompute(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hs := &hookStore{Store: st}
	p := &profiles.Profile{ID: "p", IdleTimeout: time.Minute, Containers: []profiles.Container{
		{Name: "ship", RuntimeType: "ship", Capabilities: []string{"python"}},
	}}
	fa := newFakeAlloc()
	svc := service.New(service.Config{StartTimeout: 5 * time.Second, StartWait: 5 * time.Second}, hs, fa, profileSet{"p": p}, hclog.NewNullLogger())
	defer svc.Wait()
	cg, err := svc.CreateCargo(ctx, "alice", "sandbox-00000000000a", 0)
	if err != nil {
		t.Fatal(err)
	}
	sb := store.Sandbox{ID: "sandbox-00000000000a", Owner: "alice", ProfileID: "p", CargoID: cg.ID, CreatedAt: time.Now()}
	if err := st.CreateSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}

	routed := make(chan error, 1)
	hs.beforeDelete = func() {
		// A call arrives in the middle of the delete; give it every chance
		// to start a session before the row goes.
		go func() { _, _, err := svc.Route(ctx, sb, "python"); routed <- err }()
		select {
		case <-routed:
			routed <- nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err := svc.DeleteSandbox(ctx, sb); err != nil {
		t.Fatalf("delete: %v", err)
	}
	<-routed
	svc.Wait()
	if list, _ := fa.List(ctx); len(list) != 0 {
		t.Fatalf("compute outlived its deleted sandbox: %v", list)
	}
}
