package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/bay-sandbox/bay/store"
)

func newCandidate(t *testing.T, s store.Store, id, owner, key string, sec int) store.SkillCandidate {
	t.Helper()
	c := store.SkillCandidate{
		ID: id, Owner: owner, SkillKey: key, SkillType: "code", Status: store.SkillDraft,
		SourceExecutionIDs: []string{"exec-1", "exec-2"}, Preconditions: json.RawMessage(`{"url":"x"}`),
		CreatedBy: owner, CreatedAt: at(sec), UpdatedAt: at(sec),
	}
	if err := s.CreateSkillCandidate(context.Background(), c); err != nil {
		t.Fatalf("create candidate %s: %v", id, err)
	}
	return c
}

func evaluate(t *testing.T, s store.Store, owner, id string, passed bool, sec int) {
	t.Helper()
	_, err := s.EvaluateSkillCandidate(context.Background(), store.SkillEvaluation{
		ID: fmt.Sprintf("ev-%s-%d", id, sec), Owner: owner, CandidateID: id, Passed: passed, Score: ptr(0.5), CreatedAt: at(sec),
	})
	if err != nil {
		t.Fatalf("evaluate %s: %v", id, err)
	}
}

func promote(s store.Store, owner, candidate, relID, stage string, sec int) (store.SkillRelease, error) {
	return s.PromoteSkillCandidate(context.Background(), candidate, store.SkillRelease{
		ID: relID, Owner: owner, Stage: stage, ReleaseMode: "manual", PromotedBy: owner, PromotedAt: at(sec),
	})
}

func isRule(err error) bool {
	var re *store.SkillRuleError
	return errors.As(err, &re) && errors.Is(err, store.ErrConflict)
}

func testSkillCandidatesListAndEvaluate(t *testing.T, newDB NewDB) {
	ctx := context.Background()
	s := newDB(t)()
	newCandidate(t, s, "c1", "alice", "login", 1)
	newCandidate(t, s, "c2", "alice", "search", 2)
	newCandidate(t, s, "c3", "alice", "login", 3)
	newCandidate(t, s, "c4", "bob", "login", 4)

	got, err := s.GetSkillCandidate(ctx, "alice", "c1")
	if err != nil || got.SkillKey != "login" || !slices.Equal(got.SourceExecutionIDs, []string{"exec-1", "exec-2"}) ||
		string(got.Preconditions) != `{"url":"x"}` || got.Postconditions != nil || got.LatestPass != nil || got.Deleted != nil {
		t.Fatalf("get c1 = %+v, %v", got, err)
	}
	if _, err := s.GetSkillCandidate(ctx, "bob", "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("foreign candidate: %v", err)
	}

	items, total, err := s.ListSkillCandidates(ctx, store.SkillCandidateFilter{Owner: "alice", SkillKey: "login"})
	if err != nil || total != 2 || len(items) != 2 || items[0].ID != "c3" || items[1].ID != "c1" {
		t.Fatalf("list login = %v total %d, %v", items, total, err)
	}
	items, total, err = s.ListSkillCandidates(ctx, store.SkillCandidateFilter{Owner: "alice", Limit: 1, Offset: 1})
	if err != nil || total != 3 || len(items) != 1 || items[0].ID != "c2" {
		t.Fatalf("page = %v total %d, %v", items, total, err)
	}

	evaluate(t, s, "alice", "c1", false, 10)
	c1, _ := s.GetSkillCandidate(ctx, "alice", "c1")
	if c1.Status != store.SkillRejected || c1.LatestPass == nil || *c1.LatestPass || *c1.LatestScore != 0.5 || !c1.LastEvaluatedAt.Equal(at(10)) {
		t.Fatalf("after failing evaluation: %+v", c1)
	}
	evaluate(t, s, "alice", "c1", true, 11)
	c1, _ = s.GetSkillCandidate(ctx, "alice", "c1")
	if c1.Status != store.SkillEvaluating || !*c1.LatestPass {
		t.Fatalf("after passing evaluation: %+v", c1)
	}
	if _, total, _ := s.ListSkillCandidates(ctx, store.SkillCandidateFilter{Owner: "alice", Status: store.SkillEvaluating}); total != 1 {
		t.Fatalf("status filter total %d", total)
	}
	if _, err := s.EvaluateSkillCandidate(ctx, store.SkillEvaluation{ID: "ev-x", Owner: "bob", CandidateID: "c1", Passed: true, CreatedAt: at(12)}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("foreign evaluation: %v", err)
	}
}

func testSkillPromoteRollbackDelete(t *testing.T, newDB NewDB) {
	ctx := context.Background()
	s := newDB(t)()
	newCandidate(t, s, "c1", "alice", "login", 1)
	newCandidate(t, s, "c2", "alice", "login", 2)

	// No evaluation, then a failing one: refused as a rule violation.
	if _, err := promote(s, "alice", "c1", "r0", store.StageCanary, 3); !isRule(err) {
		t.Fatalf("promote unevaluated: %v", err)
	}
	evaluate(t, s, "alice", "c1", false, 4)
	if _, err := promote(s, "alice", "c1", "r0", store.StageCanary, 5); !isRule(err) {
		t.Fatalf("promote after failing evaluation: %v", err)
	}
	if _, err := promote(s, "bob", "c1", "r0", store.StageCanary, 5); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("foreign promote: %v", err)
	}
	evaluate(t, s, "alice", "c1", true, 6)
	r1, err := promote(s, "alice", "c1", "r1", store.StageStable, 7)
	if err != nil || r1.Version != 1 || !r1.IsActive || r1.SkillKey != "login" || r1.CandidateID != "c1" {
		t.Fatalf("promote c1 = %+v, %v", r1, err)
	}
	if c, _ := s.GetSkillCandidate(ctx, "alice", "c1"); c.Status != store.SkillPromotedStable || *c.PromotionReleaseID != "r1" {
		t.Fatalf("c1 after promote: %+v", c)
	}
	// Rollback of the first release: nothing to go back to.
	if _, err := s.RollbackSkillRelease(ctx, "alice", "r1", "rx", "alice", at(8)); !isRule(err) {
		t.Fatalf("rollback first release: %v", err)
	}

	evaluate(t, s, "alice", "c2", true, 9)
	r2, err := promote(s, "alice", "c2", "r2", store.StageStable, 10)
	if err != nil || r2.Version != 2 {
		t.Fatalf("promote c2 = %+v, %v", r2, err)
	}
	if got, _ := s.GetSkillRelease(ctx, "alice", "r1"); got.IsActive {
		t.Fatal("r1 still active after r2 replaced it")
	}
	if act, err := s.ActiveSkillRelease(ctx, "alice", "login"); err != nil || act.ID != "r2" {
		t.Fatalf("active = %+v, %v", act, err)
	}
	// One active release per skill key: a canary replaces the stable one.
	if _, err := promote(s, "alice", "c1", "r3", store.StageCanary, 11); err != nil {
		t.Fatal(err)
	}
	if act, _ := s.ActiveSkillRelease(ctx, "alice", "login"); act.ID != "r3" {
		t.Fatalf("active after a canary promotion = %s, want r3", act.ID)
	}
	if got, _ := s.GetSkillRelease(ctx, "alice", "r2"); got.IsActive {
		t.Fatal("r2 still active after the canary r3 replaced it")
	}
	// Deleting a candidate backing an active release is refused.
	if _, err := s.DeleteSkillCandidate(ctx, "alice", "c1", store.Deletion{At: at(12)}); !isRule(err) {
		t.Fatalf("delete active candidate: %v", err)
	}

	// Rolling the first canary back goes to the stable release before it,
	// whatever the stage: a new release of r2's candidate at r2's stage.
	r4, err := s.RollbackSkillRelease(ctx, "alice", "r3", "r4", "alice", at(13))
	if err != nil || r4.Version != 4 || r4.CandidateID != "c2" || *r4.RollbackOf != "r3" || !r4.IsActive || r4.Stage != store.StageStable {
		t.Fatalf("rollback r3 = %+v, %v", r4, err)
	}
	if got, _ := s.GetSkillRelease(ctx, "alice", "r3"); got.IsActive {
		t.Fatal("r3 still active after rollback")
	}
	if c, _ := s.GetSkillCandidate(ctx, "alice", "c1"); c.Status != store.SkillRolledBack {
		t.Fatalf("c1 status %s, want rolled_back", c.Status)
	}
	if prev, err := s.PreviousSkillRelease(ctx, r4); err != nil || prev.ID != "r3" {
		t.Fatalf("previous of r4 = %+v, %v", prev, err)
	}
	// The previous version of r4 is r3 (a canary of c1).
	r5, err := s.RollbackSkillRelease(ctx, "alice", "r4", "r5", "alice", at(14))
	if err != nil || r5.Version != 5 || r5.CandidateID != "c1" || r5.Stage != store.StageCanary || *r5.RollbackOf != "r4" {
		t.Fatalf("rollback r4 = %+v, %v", r5, err)
	}
	if c, _ := s.GetSkillCandidate(ctx, "alice", "c2"); c.Status != store.SkillRolledBack {
		t.Fatalf("c2 status %s, want rolled_back", c.Status)
	}

	items, total, err := s.ListSkillReleases(ctx, store.SkillReleaseFilter{Owner: "alice", ActiveOnly: true})
	if err != nil || total != 1 || items[0].ID != "r5" {
		t.Fatalf("active releases = %v total %d, %v", items, total, err)
	}
	if _, total, _ := s.ListSkillReleases(ctx, store.SkillReleaseFilter{Owner: "alice", Stage: store.StageCanary}); total != 2 {
		t.Fatalf("canary total %d", total)
	}

	// Deletes are soft and owner scoped; versions are never reused; a
	// deleted release is no candidate's promotion_release_id any more.
	if _, err := s.DeleteSkillRelease(ctx, "bob", "r5", store.Deletion{At: at(15)}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("foreign delete: %v", err)
	}
	if c, _ := s.GetSkillCandidate(ctx, "alice", "c1"); c.PromotionReleaseID == nil || *c.PromotionReleaseID != "r3" {
		t.Fatalf("c1 promotion_release_id = %v, want r3", c.PromotionReleaseID)
	}
	if _, err := s.DeleteSkillRelease(ctx, "alice", "r3", store.Deletion{At: at(15)}); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.GetSkillCandidate(ctx, "alice", "c1"); c.PromotionReleaseID != nil {
		t.Fatalf("c1 promotion_release_id = %v after its release was deleted", *c.PromotionReleaseID)
	}
	if c, _ := s.GetSkillCandidate(ctx, "alice", "c2"); c.PromotionReleaseID == nil || *c.PromotionReleaseID != "r2" {
		t.Fatalf("c2 promotion_release_id = %v, want r2 untouched", c.PromotionReleaseID)
	}
	d, err := s.DeleteSkillRelease(ctx, "alice", "r5", store.Deletion{At: at(15), By: ptr("alice"), Reason: ptr("bad")})
	if err != nil || d.IsActive || d.Deleted == nil || *d.Deleted.Reason != "bad" {
		t.Fatalf("delete r5 = %+v, %v", d, err)
	}
	if _, err := s.GetSkillRelease(ctx, "alice", "r5"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted release still visible: %v", err)
	}
	if _, err := s.ActiveSkillRelease(ctx, "alice", "login"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("active release after deleting the active one: %v", err)
	}
	if _, err := s.DeleteSkillCandidate(ctx, "alice", "c2", store.Deletion{At: at(16)}); err != nil {
		t.Fatalf("delete c2: %v", err)
	}
	if _, total, _ := s.ListSkillCandidates(ctx, store.SkillCandidateFilter{Owner: "alice"}); total != 1 {
		t.Fatalf("candidates after delete: %d", total)
	}
	evaluate(t, s, "alice", "c1", true, 17)
	if r, err := promote(s, "alice", "c1", "r6", store.StageStable, 18); err != nil || r.Version != 6 {
		t.Fatalf("version after deletes = %+v, %v", r, err)
	}
}

func testSkillRuns(t *testing.T, newDB NewDB) {
	ctx := context.Background()
	s := newDB(t)()
	for i, ok := range []bool{true, false, true} {
		if err := s.RecordSkillRun(ctx, store.SkillRun{Owner: "alice", ReleaseID: "r1", Success: ok, DurationMS: int64(i), CreatedAt: at(i)}); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := s.ListSkillRuns(ctx, "alice", "r1", at(1), at(3))
	if err != nil || len(runs) != 2 || runs[0].Success || !runs[1].Success || runs[1].DurationMS != 2 {
		t.Fatalf("runs = %+v, %v", runs, err)
	}
	if runs, _ := s.ListSkillRuns(ctx, "bob", "r1", at(0), at(9)); len(runs) != 0 {
		t.Fatalf("foreign runs: %v", runs)
	}
}
