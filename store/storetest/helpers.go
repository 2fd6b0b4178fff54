package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/store"
)

// t0 is a fixed, millisecond-aligned instant: stored times have millisecond
// precision.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func ptr[T any](v T) *T { return &v }

func mustCreateSandbox(t *testing.T, s store.Store, sb store.Sandbox) {
	t.Helper()
	if sb.ProfileID == "" {
		sb.ProfileID = "python-default"
	}
	if err := s.CreateSandbox(context.Background(), sb); err != nil {
		t.Fatalf("create sandbox %s: %v", sb.ID, err)
	}
}

func ids(sbs []store.Sandbox) []string {
	out := make([]string, 0, len(sbs))
	for _, sb := range sbs {
		out = append(out, sb.ID)
	}
	return out
}

func sortedIDs(sbs []store.Sandbox) []string {
	out := ids(sbs)
	slices.Sort(out)
	return out
}

func testSandboxCRUD(t *testing.T, newDB NewDB) {
	ctx := context.Background()
	s := newDB(t)()
	created := time.Date(2025, 3, 1, 12, 0, 0, 123_456_789, time.FixedZone("x", 3600))
	exp := created.Add(time.Hour)
	sb := store.Sandbox{ID: "sb1", Owner: "alice", ProfileID: "browser-python", CargoID: "c1", TTLSeconds: 3600,
		CreatedAt: created, ExpiresAt: &exp}
	if err := s.CreateSandbox(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSandbox(ctx, sb); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate create: %v; want ErrConflict", err)
	}
	if err := s.CreateSandbox(ctx, store.Sandbox{Owner: "alice"}); err == nil {
		t.Fatal("create with empty id succeeded")
	}

	for _, owner := range []string{"alice", ""} {
		got, err := s.GetSandbox(ctx, owner, "sb1")
		if err != nil {
			t.Fatalf("get (owner %q): %v", owner, err)
		}
		if got.CreatedAt.Location() != time.UTC || !got.CreatedAt.Equal(created.Truncate(time.Millisecond)) {
			t.Fatalf("created_at = %v; want %v in UTC", got.CreatedAt, created.Truncate(time.Millisecond))
		}
		if got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp.Truncate(time.Millisecond)) || got.IdleExpiresAt != nil {
			t.Fatalf("expiry fields = %v, %v", got.ExpiresAt, got.IdleExpiresAt)
		}
		if got.ProfileID != "browser-python" || got.CargoID != "c1" || got.TTLSeconds != 3600 || got.SessionID != "" || got.Warm {
			t.Fatalf("got %+v", got)
		}
	}

	idle := at(600)
	steps := []struct {
		name  string
		apply func(id string) error
		check func(store.Sandbox) bool
	}{
		{"set session", func(id string) error { return s.SetSession(ctx, id, "sess1") },
			func(g store.Sandbox) bool { return g.SessionID == "sess1" }},
		{"set idle expiry", func(id string) error { return s.SetIdleExpiry(ctx, id, &idle) },
			func(g store.Sandbox) bool { return g.IdleExpiresAt != nil && g.IdleExpiresAt.Equal(idle) }},
		{"clear expiry", func(id string) error { return s.SetExpiry(ctx, id, nil) },
			func(g store.Sandbox) bool { return g.ExpiresAt == nil }},
		{"clear session", func(id string) error { return s.SetSession(ctx, id, "") },
			func(g store.Sandbox) bool { return g.SessionID == "" }},
		{"clear idle expiry", func(id string) error { return s.SetIdleExpiry(ctx, id, nil) },
			func(g store.Sandbox) bool { return g.IdleExpiresAt == nil }},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.apply("sb1"); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetSandbox(ctx, "", "sb1")
			if err != nil || !st.check(got) {
				t.Fatalf("after %s: %+v, %v", st.name, got, err)
			}
			if err := st.apply("missing"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s on missing sandbox: %v; want ErrNotFound", st.name, err)
			}
		})
	}

	for i := 0; i < 2; i++ { // idempotent
		if err := s.DeleteSandbox(ctx, "sb1"); err != nil {
			t.Fatalf("delete %d: %v", i, err)
		}
	}
	if _, err := s.GetSandbox(ctx, "", "sb1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get after delete: %v; want ErrNotFound", err)
	}
}

func testOwnerIsolation(t *testing.T, newDB NewDB) {
	ctx := context.Background()
	s := newDB(t)()
	mustCreateSandbox(t, s, store.Sandbox{ID: "sb1", Owner: "alice", CreatedAt: t0})
	mustCreateSandbox(t, s, store.Sandbox{ID: "warm1", Owner: "alice", CreatedAt: t0, Warm: true})
	if err := s.CreateCargo(ctx, store.Cargo{ID: "c1", Owner: "alice", CreatedAt: t0, LastAccessedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateExecution(ctx, store.Execution{ID: "e1", SandboxID: "sb1", Owner: "alice", ExecType: "python", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob(ctx, store.Blob{ID: "b1", Owner: "alice", Kind: "trace", Data: []byte("x"), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}

	get := map[string]func(owner string) error{
		"sandbox": func(o string) error { _, err := s.GetSandbox(ctx, o, "sb1"); return err },
		"cargo":   func(o string) error { _, err := s.GetCargo(ctx, o, "c1"); return err },
		"execution": func(o string) error {
			_, err := s.GetExecution(ctx, o, "sb1", "e1")
			return err
		},
		"execution patch": func(o string) error {
			_, err := s.UpdateExecution(ctx, o, "sb1", "e1", store.ExecutionPatch{Notes: ptr("n")})
			return err
		},
		"last execution": func(o string) error { _, err := s.LastExecution(ctx, o, "sb1", ""); return err },
		"blob":           func(o string) error { _, err := s.GetBlob(ctx, o, "b1"); return err },
	}
	for name, fn := range get {
		t.Run(name, func(t *testing.T) {
			if err := fn("alice"); err != nil {
				t.Fatalf("owner: %v", err)
			}
			if err := fn(""); err != nil {
				t.Fatalf("any owner: %v", err)
			}
			if err := fn("mallory"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("foreign owner: %v; want ErrNotFound", err)
			}
		})
	}
	// A warm row is internal even when its owner field matches.
	if _, err := s.GetSandbox(ctx, "alice", "warm1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("user get of a warm sandbox: %v; want ErrNotFound", err)
	}
	if _, err := s.GetSandbox(ctx, "", "warm1"); err != nil {
		t.Fatalf("internal get of a warm sandbox: %v", err)
	}
	if list, _, err := s.ListSandboxes(ctx, store.SandboxFilter{Owner: "mallory"}); err != nil || len(list) != 0 {
		t.Fatalf("foreign list = %v, %v", ids(list), err)
	}
	if _, err := s.GetExecution(ctx, "alice", "other-sandbox", "e1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("execution through another sandbox: %v; want ErrNotFound", err)
	}
}

// pageAll pages through ListSandboxes and returns the ids in order.
func pageAll(t *testing.T, s store.Store, f store.SandboxFilter) []string {
	t.Helper()
	var out []string
	for i := 0; ; i++ {
		page, next, err := s.ListSandboxes(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > f.Limit {
			t.Fatalf("page of %d > limit %d", len(page), f.Limit)
		}
		out = append(out, ids(page)...)
		if next == "" {
			return out
		}
		if i > 1000 {
			t.Fatal("pagination does not end")
		}
		f.Cursor = next
	}
}

func testListSandboxesPagination(t *testing.T, newDB NewDB) {
	ctx := context.Background()
	s := newDB(t)()
	// 25 of alice's; groups of three share a millisecond so the id breaks ties.
	var want []string
	for i := 0; i < 25; i++ {
		id := fmt.Sprintf("a%02d", i)
		mustCreateSandbox(t, s, store.Sandbox{ID: id, Owner: "alice", CreatedAt: at(i / 3)})
		want = append(want, id)
	}
	slices.SortFunc(want, func(x, y string) int { // newest first, id DESC within a tie
		var i, j int
		fmt.Sscanf(x, "a%d", &i)
		fmt.Sscanf(y, "a%d", &j)
		if i/3 != j/3 {
			return j/3 - i/3
		}
		return j - i
	})
	for i := 0; i < 4; i++ {
		mustCreateSandbox(t, s, store.Sandbox{ID: fmt.Sprintf("b%02d", i), Owner: "bob", CreatedAt: at(i)})
		mustCreateSandbox(t, s, store.Sandbox{ID: fmt.Sprintf("w%02d", i), Owner: "alice", CreatedAt: at(i), Warm: true})
	}

	if got := pageAll(t, s, store.SandboxFilter{Owner: "alice", Limit: 7}); !slices.Equal(got, want) {
		t.Fatalf("pages = %v\nwant    %v", got, want)
	}
	if got := pageAll(t, s, store.SandboxFilter{Owner: "alice", Limit: 25}); !slices.Equal(got, want) {
		t.Fatalf("single exact page = %v", got)
	}
	if got := pageAll(t, s, store.SandboxFilter{Limit: 10}); len(got) != 29 {
		t.Fatalf("all owners = %d rows; want 29 (no warm)", len(got))
	}
	page, next, err := s.ListSandboxes(ctx, store.SandboxFilter{Owner: "alice"})
	if err != nil || len(page) != 25 || next != "" {
		t.Fatalf("default limit: %d rows, next %q, %v", len(page), next, err)
	}

	// Page 1, then newer rows arrive (one in the cursor's own millisecond),
	// then the rest continues exactly where page 1 stopped.
	page1, next, err := s.ListSandboxes(ctx, store.SandboxFilter{Owner: "alice", Limit: 10})
	if err != nil || next == "" {
		t.Fatalf("page 1: %v, next %q", err, next)
	}
	last := page1[len(page1)-1]
	for i := 0; i < 5; i++ {
		mustCreateSandbox(t, s, store.Sandbox{ID: fmt.Sprintf("n%02d", i), Owner: "alice", CreatedAt: at(100 + i)})
	}
	mustCreateSandbox(t, s, store.Sandbox{ID: "a99", Owner: "alice", CreatedAt: last.CreatedAt}) // sorts before last: already passed
	rest := pageAll(t, s, store.SandboxFilter{Owner: "alice", Limit: 10, Cursor: next})
	if got := append(ids(page1), rest...); !slices.Equal(got, want) {
		t.Fatalf("pages across inserts = %v\nwant %v", got, want)
	}

	for _, c := range []string{"!!!", "djE6", "Z2FyYmFnZQ", "djE" /* a truncated valid cursor */, "djE6YWJjOng", "djE6MTIzOg"} {
		_, _, err := s.ListSandboxes(ctx, store.SandboxFilter{Owner: "alice", Cursor: c})
		if !errors.Is(err, store.ErrInvalidCursor) {
			t.Errorf("cursor %q: %v; want ErrInvalidCursor", c, err)
		}
		_, _, err = s.ListCargos(ctx, store.CargoFilter{Owner: "alice", Cursor: c})
		if !errors.Is(err, store.ErrInvalidCursor) {
			t.Errorf("cargo cursor %q: %v; want ErrInvalidCursor", c, err)
		}
	}

	for owner, want := range map[string]int{"alice": 31, "bob": 4, "": 35, "nobody": 0} {
		if n, err := s.CountSandboxes(ctx, owner); err != nil || n != want {
			t.Errorf("count %q = %d, %v; want %d", owner, n, err, want)
		}
	}
}

func testClaimWarm(t *testing.T, newDB NewDB) {
	ctx := context.Background()
	open := newDB(t)
	s1 := open()
	s2 := open() // a second handle stands in for another gateway process
	const warm = 10
	for i := 0; i < warm; i++ {
		id := fmt.Sprintf("p%02d", i)
		cargo := store.Cargo{ID: "c-" + id, Owner: "", Managed: true, ManagedBySandboxID: id, CreatedAt: at(i), LastAccessedAt: at(i)}
		sb := store.Sandbox{ID: id, ProfileID: "p", CargoID: cargo.ID, SessionID: "s-" + id, CreatedAt: at(i), Warm: true}
		if err := s1.CreateSandboxWithCargo(ctx, sb, cargo); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		mustCreateSandbox(t, s1, store.Sandbox{ID: fmt.Sprintf("q%02d", i), ProfileID: "q", CreatedAt: at(i), Warm: true})
	}

	now := at(1000)
	exp := now.Add(time.Hour)
	type result struct {
		sb    store.Sandbox
		ok    bool
		owner string
	}
	results := make(chan result, 20)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < 20; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			s := s1
			if g%2 == 1 {
				s = s2
			}
			owner := fmt.Sprintf("user%d", g)
			sb, ok, err := s.ClaimWarm(ctx, "p", owner, now, 3600, &exp)
			if err != nil {
				t.Errorf("claim %d: %v", g, err)
				return
			}
			results <- result{sb, ok, owner}
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	claimed := map[string]string{}
	misses := 0
	for r := range results {
		if !r.ok {
			misses++
			continue
		}
		if prev, dup := claimed[r.sb.ID]; dup {
			t.Fatalf("%s claimed twice (by %s and %s)", r.sb.ID, prev, r.owner)
		}
		claimed[r.sb.ID] = r.owner
		if r.sb.Warm || r.sb.Owner != r.owner || !r.sb.CreatedAt.Equal(now) || r.sb.TTLSeconds != 3600 ||
			r.sb.ExpiresAt == nil || !r.sb.ExpiresAt.Equal(exp) || r.sb.SessionID != "s-"+r.sb.ID {
			t.Fatalf("claimed row = %+v", r.sb)
		}
	}
	if len(claimed) != warm || misses != 20-warm {
		t.Fatalf("claimed %d, missed %d; want %d and %d", len(claimed), misses, warm, 20-warm)
	}
	for id, owner := range claimed {
		c, err := s1.GetCargo(ctx, owner, "c-"+id)
		if err != nil {
			t.Fatalf("managed cargo of %s not handed to %s: %v", id, owner, err)
		}
		if !c.Managed || c.ManagedBySandboxID != id {
			t.Fatalf("cargo = %+v", c)
		}
		if _, err := s1.GetSandbox(ctx, owner, id); err != nil {
			t.Fatalf("claimed sandbox not visible to its owner: %v", err)
		}
	}
	if left, err := s1.ListWarm(ctx, "p"); err != nil || len(left) != 0 {
		t.Fatalf("warm p left = %v, %v", ids(left), err)
	}
	if left, err := s2.ListWarm(ctx, ""); err != nil || !slices.Equal(ids(left), []string{"q00", "q01", "q02"}) {
		t.Fatalf("warm all = %v, %v", ids(left), err)
	}
	// Oldest first, and a claimed row shows up in listings.
	sb, ok, err := s1.ClaimWarm(ctx, "q", "zed", now, 0, nil)
	if err != nil || !ok || sb.ID != "q00" || sb.ExpiresAt != nil {
		t.Fatalf("claim q = %+v, %v, %v; want q00", sb, ok, err)
	}
	if list, _, err := s1.ListSandboxes(ctx, store.SandboxFilter{Owner: "zed"}); err != nil || !slices.Equal(ids(list), []string{"q00"}) {
		t.Fatalf("zed's list = %v, %v", ids(list), err)
	}
	if _, ok, err := s1.ClaimWarm(ctx, "nope", "zed", now, 0, nil); ok || err != nil {
		t.Fatalf("claim from an empty pool: ok=%v err=%v", ok, err)
	}
}

func testGCListings(t *testing.T, newDB NewDB) {
	ctx := context.Background()
	s := newDB(t)()
	now := at(1000)
	before, after := at(999), at(1001)
	rows := []store.Sandbox{
		{ID: "idle-expired", SessionID: "s", IdleExpiresAt: &before},
		{ID: "idle-live", SessionID: "s", IdleExpiresAt: &after},
		{ID: "idle-exactly-now", SessionID: "s", IdleExpiresAt: &now},
		{ID: "idle-no-session", IdleExpiresAt: &before},
		{ID: "idle-warm", SessionID: "s", IdleExpiresAt: &before, Warm: true},
		{ID: "ttl-expired", ExpiresAt: &before},
		{ID: "ttl-live", ExpiresAt: &after, SessionID: "s"},
		{ID: "ttl-warm-expired", ExpiresAt: &before, Warm: true},
		{ID: "no-deadlines"},
	}
	for _, sb := range rows {
		sb.Owner, sb.CreatedAt = "alice", t0
		mustCreateSandbox(t, s, sb)
	}
	cases := []struct {
		name string
		list func() ([]store.Sandbox, error)
		want []string
	}{
		{"idle expired", func() ([]store.Sandbox, error) { return s.ListIdleExpired(ctx, now) },
			[]string{"idle-expired"}},
		{"expired", func() ([]store.Sandbox, error) { return s.ListExpired(ctx, now) },
			[]string{"ttl-expired", "ttl-warm-expired"}},
		{"with session", func() ([]store.Sandbox, error) { return s.ListWithSession(ctx) },
			[]string{"idle-exactly-now", "idle-expired", "idle-live", "idle-warm", "ttl-live"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.list()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sortedIDs(got), c.want) {
				t.Fatalf("got %v; want %v", sortedIDs(got), c.want)
			}
		})
	}
}

func testCargos(t *testing.T, newDB NewDB) {
	ctx := context.Background()
	s := newDB(t)()
	external := store.Cargo{ID: "ext1", Owner: "alice", Backend: "local_dir", Locator: "/data/cargos/ext1", SizeLimitMB: 1024,
		CreatedAt: at(1), LastAccessedAt: at(1)}
	if err := s.CreateCargo(ctx, external); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCargo(ctx, external); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate: %v; want ErrConflict", err)
	}
	got, err := s.GetCargo(ctx, "alice", "ext1")
	if err != nil || got != external {
		t.Fatalf("get = %+v, %v; want %+v", got, err, external)
	}
	if err := s.TouchCargo(ctx, "ext1", at(50)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetCargo(ctx, "", "ext1"); !got.LastAccessedAt.Equal(at(50)) {
		t.Fatalf("last accessed = %v", got.LastAccessedAt)
	}
	if err := s.TouchCargo(ctx, "missing", at(50)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("touch missing: %v", err)
	}

	// Managed cargos: one with its sandbox, one orphaned; plus more externals.
	if err := s.CreateSandboxWithCargo(ctx,
		store.Sandbox{ID: "sb1", Owner: "alice", ProfileID: "p", CargoID: "m1", CreatedAt: at(2)},
		store.Cargo{ID: "m1", Owner: "alice", Managed: true, ManagedBySandboxID: "sb1", CreatedAt: at(2), LastAccessedAt: at(2)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCargo(ctx, store.Cargo{ID: "m2", Owner: "alice", Managed: true, ManagedBySandboxID: "gone", CreatedAt: at(3), LastAccessedAt: at(3)}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := s.CreateCargo(ctx, store.Cargo{ID: fmt.Sprintf("ext%d", i+2), Owner: "alice", CreatedAt: at(10 + i), LastAccessedAt: at(10 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateCargo(ctx, store.Cargo{ID: "bobs", Owner: "bob", CreatedAt: at(5), LastAccessedAt: at(5)}); err != nil {
		t.Fatal(err)
	}
	mustCreateSandbox(t, s, store.Sandbox{ID: "sb2", Owner: "alice", CargoID: "ext1", CreatedAt: at(4)})
	mustCreateSandbox(t, s, store.Sandbox{ID: "w1", CargoID: "ext1", CreatedAt: at(4), Warm: true})

	listAll := func(f store.CargoFilter) []string {
		var out []string
		for {
			page, next, err := s.ListCargos(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page {
				out = append(out, c.ID)
			}
			if next == "" {
				return out
			}
			f.Cursor = next
		}
	}
	listCases := []struct {
		name    string
		managed *bool
		want    []string
	}{
		{"external", ptr(false), []string{"ext6", "ext5", "ext4", "ext3", "ext2", "ext1"}},
		{"managed", ptr(true), []string{"m2", "m1"}},
		{"all", nil, []string{"ext6", "ext5", "ext4", "ext3", "ext2", "m2", "m1", "ext1"}},
	}
	for _, c := range listCases {
		t.Run("list "+c.name, func(t *testing.T) {
			if got := listAll(store.CargoFilter{Owner: "alice", Managed: c.managed, Limit: 3}); !slices.Equal(got, c.want) {
				t.Fatalf("got %v; want %v", got, c.want)
			}
		})
	}

	using, err := s.SandboxesUsingCargo(ctx, "ext1")
	if err != nil || !slices.Equal(using, []string{"sb2", "w1"}) {
		t.Fatalf("using ext1 = %v, %v", using, err)
	}
	if using, err := s.SandboxesUsingCargo(ctx, "ext2"); err != nil || len(using) != 0 {
		t.Fatalf("using ext2 = %v, %v", using, err)
	}

	orphans, err := s.ListOrphanCargos(ctx)
	if err != nil || len(orphans) != 1 || orphans[0].ID != "m2" {
		t.Fatalf("orphans = %+v, %v; want [m2]", orphans, err)
	}
	if err := s.DeleteSandbox(ctx, "sb1"); err != nil {
		t.Fatal(err)
	}
	if orphans, _ := s.ListOrphanCargos(ctx); len(orphans) != 2 {
		t.Fatalf("orphans after deleting sb1 = %+v; want m1 and m2", orphans)
	}
	// m1 was created at 2s, m2 at 3s: a grace cut-off keeps the younger.
	for cut, want := range map[int][]string{2: nil, 3: {"m1"}, 4: {"m1", "m2"}} {
		orphans, err := s.ListOrphanCargosBefore(ctx, at(cut))
		var got []string
		for _, c := range orphans {
			got = append(got, c.ID)
		}
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("orphans before %ds = %v, %v; want %v", cut, got, err, want)
		}
	}

	// The combined insert is all or nothing.
	err = s.CreateSandboxWithCargo(ctx, store.Sandbox{ID: "sb2", Owner: "alice", CreatedAt: at(9)},
		store.Cargo{ID: "m3", Owner: "alice", Managed: true, ManagedBySandboxID: "sb2", CreatedAt: at(9), LastAccessedAt: at(9)})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("combined insert with a taken sandbox id: %v; want ErrConflict", err)
	}
	if _, err := s.GetCargo(ctx, "", "m3"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cargo of a failed combined insert exists: %v", err)
	}

	for i := 0; i < 2; i++ {
		if err := s.DeleteCargo(ctx, "m2"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.GetCargo(ctx, "", "m2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get deleted cargo: %v", err)
	}
}

func testBlobsAndMeta(t *testing.T, newDB NewDB) {
	ctx := context.Background()
	s := newDB(t)()
	b := store.Blob{ID: "b1", Owner: "alice", Kind: "trace", Data: []byte{0, 1, 2, 0xff}, CreatedAt: at(1)}
	if err := s.PutBlob(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob(ctx, store.Blob{ID: "b1", Owner: "mallory", Data: []byte("evil")}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("overwrite: %v; want ErrConflict", err)
	}
	got, err := s.GetBlob(ctx, "alice", "b1")
	if err != nil || string(got.Data) != string(b.Data) || got.Kind != "trace" || !got.CreatedAt.Equal(b.CreatedAt) {
		t.Fatalf("get = %+v, %v", got, err)
	}
	if err := s.PutBlob(ctx, store.Blob{ID: "empty", Owner: "alice"}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetBlob(ctx, "alice", "empty"); err != nil || len(got.Data) != 0 {
		t.Fatalf("empty blob = %+v, %v", got, err)
	}
	if err := s.DeleteBlob(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBlob(ctx, "", "b1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted blob: %v", err)
	}

	if _, ok, err := s.GetMeta(ctx, "instance_id"); ok || err != nil {
		t.Fatalf("missing meta: ok=%v err=%v", ok, err)
	}
	for _, v := range []string{"one", "two"} {
		if err := s.SetMeta(ctx, "instance_id", v); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := s.GetMeta(ctx, "instance_id"); !ok || err != nil || got != v {
			t.Fatalf("meta = %q, %v, %v; want %q", got, ok, err, v)
		}
	}
	// InitMeta: the first value stays, every caller learns it.
	for _, v := range []string{"first", "second"} {
		if got, err := s.InitMeta(ctx, "init_key", v); err != nil || got != "first" {
			t.Fatalf("InitMeta(%q) = %q, %v; want the first value", v, got, err)
		}
	}
	if got, err := s.InitMeta(ctx, "instance_id", "other"); err != nil || got != "two" {
		t.Fatalf("InitMeta on a set key = %q, %v; want the set value", got, err)
	}
}
