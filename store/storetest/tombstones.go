package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/store"
)

func testDeleteLeavesTombstoneForOwnerOnly(t *testing.T, newDB NewDB) {
	ctx := context.Background()
	s := newDB(t)()
	mustCreateSandbox(t, s, store.Sandbox{ID: "sb-user", Owner: "alice", ProfileID: "p", CreatedAt: at(0)})
	mustCreateSandbox(t, s, store.Sandbox{ID: "sb-warm", Owner: "__pool__", ProfileID: "p", CreatedAt: at(0), Warm: true})
	if gone, err := s.SandboxTombstoned(ctx, "alice", "sb-user"); err != nil || gone {
		t.Fatalf("live sandbox tombstoned: %v %v", gone, err)
	}
	for _, id := range []string{"sb-user", "sb-warm", "sb-missing"} {
		if err := s.DeleteSandbox(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		owner, id string
		want      bool
	}{{"alice", "sb-user", true}, {"bob", "sb-user", false}, {"__pool__", "sb-warm", false}, {"alice", "sb-missing", false}} {
		if gone, err := s.SandboxTombstoned(ctx, c.owner, c.id); err != nil || gone != c.want {
			t.Fatalf("tombstone(%s, %s) = %v %v, want %v", c.owner, c.id, gone, err, c.want)
		}
	}
	// Purge by age: a cut-off in the past keeps it, one in the future drops it.
	if n, err := s.PurgeTombstones(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("purge old: %d %v", n, err)
	}
	if n, err := s.PurgeTombstones(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
	if gone, _ := s.SandboxTombstoned(ctx, "alice", "sb-user"); gone {
		t.Fatal("tombstone survived its purge")
	}
}

func testRetireWarmLosesToClaim(t *testing.T, newDB NewDB) {
	ctx := context.Background()
	s := newDB(t)()
	for _, id := range []string{"sb-w1", "sb-w2"} {
		mustCreateSandbox(t, s, store.Sandbox{ID: id, Owner: "__pool__", ProfileID: "p", CreatedAt: at(0), Warm: true})
	}
	claimed, ok, err := s.ClaimWarm(ctx, "p", "alice", at(5), 0, nil)
	if err != nil || !ok || claimed.ID != "sb-w1" {
		t.Fatalf("claim %+v %v %v", claimed, ok, err)
	}
	if ok, err := s.RetireWarm(ctx, "sb-w1"); err != nil || ok {
		t.Fatalf("retired a claimed sandbox: %v %v", ok, err)
	}
	if _, err := s.GetSandbox(ctx, "alice", "sb-w1"); err != nil {
		t.Fatalf("claimed sandbox gone: %v", err)
	}
	if ok, err := s.RetireWarm(ctx, "sb-w2"); err != nil || !ok {
		t.Fatalf("retire warm: %v %v", ok, err)
	}
	if _, ok, _ := s.ClaimWarm(ctx, "p", "bob", at(6), 0, nil); ok {
		t.Fatal("claimed a retired sandbox")
	}
	if ok, _ := s.RetireWarm(ctx, "sb-w2"); ok {
		t.Fatal("retired twice")
	}
}
