package opstest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/allocator/nomad"
	"github.com/bay-sandbox/bay/allocator/nomad/devagent"
	"github.com/bay-sandbox/bay/internal/testutil"
)

// aclAgent starts a normal agent with ACLs and returns it with a token of
// examples/acl/bay-policy.hcl and a read-only token.
func aclAgent(t *testing.T) (agent *devagent.Agent, bayToken, readToken string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no Nomad agent")
	}
	bin := testutil.Nomad(t)
	agent, err := devagent.StartWith(bin, devagent.Options{ACL: true, Within: 90 * time.Second})
	if err != nil {
		t.Fatalf("start nomad agent with ACLs: %v", err)
	}
	t.Cleanup(agent.Stop)
	c, err := agent.Client()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "examples", "acl", "bay-policy.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name, rules string) string {
		if _, err := c.ACLPolicies().Upsert(&api.ACLPolicy{Name: name, Rules: rules}, nil); err != nil {
			t.Fatalf("apply policy %s: %v", name, err)
		}
		tok, _, err := c.ACLTokens().Create(&api.ACLToken{Name: name, Type: "client", Policies: []string{name}}, nil)
		if err != nil {
			t.Fatalf("create token %s: %v", name, err)
		}
		return tok.SecretID
	}
	return agent, mk("bay", string(rules)), mk("read-only", `namespace "default" { policy = "read" }`)
}

func newAlloc(t *testing.T, addr, token string) *nomad.Allocator {
	t.Helper()
	a, err := nomad.New(nomad.Config{Address: addr, Token: token, Discovery: nomad.DiscoveryNomad}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	go func() {
		for range a.Events() {
		}
	}()
	return a
}

// TestACLPolicy: the shipped policy grants everything the token check
// probes and a cargo's whole life; a read-only token is told, capability by
// capability, what it cannot do, and creating a cargo with it is a denial
// naming host-volume-create (not an unavailable backend, not a 500).
func TestACLPolicy(t *testing.T) {
	agent, bayToken, readToken := aclAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	bay := newAlloc(t, agent.Addr, bayToken)
	missing, err := bay.CheckAccess(ctx)
	if err != nil || len(missing) != 0 {
		t.Fatalf("bay policy: missing %s, err %v", nomad.FormatMissing(missing), err)
	}
	cg, err := bay.CreateCargo(ctx, allocator.CargoSpec{ID: "ws-acl"})
	if err != nil {
		t.Fatalf("create cargo with the bay policy: %v", err)
	}
	if err := bay.DeleteCargo(ctx, cg); err != nil {
		t.Fatalf("delete cargo with the bay policy: %v", err)
	}

	ro := newAlloc(t, agent.Addr, readToken)
	missing, err = ro.CheckAccess(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := nomad.FormatMissing(missing)
	for _, want := range []string{"submit-job", "host-volume-create", "host-volume-delete"} {
		if !strings.Contains(got, want) {
			t.Errorf("read-only token: missing %q not reported (got %s)", want, got)
		}
	}
	for _, allowed := range []string{"list-jobs", "read-job", "host-volume-read"} {
		if strings.Contains(got, `"`+allowed+`"`) {
			t.Errorf("read-only token reported missing %q, which it has (got %s)", allowed, got)
		}
	}
	_, err = ro.CreateCargo(ctx, allocator.CargoSpec{ID: "ws-ro"})
	var be *allocator.BackendError
	if !errors.As(err, &be) || !errors.Is(err, allocator.ErrDenied) || !strings.Contains(be.Capability, "host-volume-create") {
		t.Fatalf("create cargo with a read-only token = %v, want ErrDenied naming host-volume-create", err)
	}

	bogus := newAlloc(t, agent.Addr, "00000000-1111-2222-3333-444444444444")
	missing, err = bogus.CheckAccess(ctx)
	if err != nil || len(missing) != 1 || !strings.Contains(missing[0].Capability, "valid ACL token") {
		t.Fatalf("unknown token: missing %s, err %v", nomad.FormatMissing(missing), err)
	}
}
