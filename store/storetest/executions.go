package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/bay-sandbox/bay/store"
)

func execIDs(es []store.Execution) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func testExecutions(t *testing.T, newDB NewDB) {
	ctx := context.Background()
	s := newDB(t)()
	// e0..e9 on sb1, oldest first; e10 on sb2; e11 foreign. e8 and e9 share
	// a millisecond: insertion order decides which is newer.
	seed := []store.Execution{
		{ExecType: "python", Success: true, Tags: ptr("data,plot")},
		{ExecType: "shell", Success: false, Description: ptr("ls")},
		{ExecType: "python", Success: true, Notes: ptr("remember"), Tags: ptr("Data_Set")},
		{ExecType: "browser", Success: true, PayloadRef: ptr("blob-1")},
		{ExecType: "browser_batch", Success: false, Tags: ptr("login")},
		{ExecType: "python", Success: false, Description: ptr(""), Notes: ptr("")},
		{ExecType: "shell", Success: true, Tags: ptr("100%")},
		{ExecType: "python", Success: true, Output: ptr("42"), Error: ptr("")},
		{ExecType: "shell", Success: true},
		{ExecType: "shell", Success: true, SessionID: "sess-2"},
	}
	for i, e := range seed {
		e.ID, e.SandboxID, e.Owner, e.Code = fmt.Sprintf("e%d", i), "sb1", "alice", fmt.Sprintf("code %d", i)
		e.ExecutionTimeMS = int64(i * 10)
		e.CreatedAt = at(min(i, 8))
		if e.SessionID == "" {
			e.SessionID = "sess-1"
		}
		if err := s.CreateExecution(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []store.Execution{
		{ID: "e10", SandboxID: "sb2", Owner: "alice", ExecType: "python", Success: true, CreatedAt: at(20)},
		{ID: "e11", SandboxID: "sb3", Owner: "bob", ExecType: "python", Success: true, Tags: ptr("data"), CreatedAt: at(20)},
	} {
		if err := s.CreateExecution(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateExecution(ctx, store.Execution{ID: "e1", SandboxID: "sb1", Owner: "alice", ExecType: "shell", CreatedAt: t0}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate: %v; want ErrConflict", err)
	}

	got, err := s.GetExecution(ctx, "alice", "sb1", "e7")
	if err != nil {
		t.Fatal(err)
	}
	if got.Code != "code 7" || !got.Success || got.ExecutionTimeMS != 70 || got.SessionID != "sess-1" ||
		got.Output == nil || *got.Output != "42" || got.Error == nil || *got.Error != "" ||
		got.Tags != nil || got.Notes != nil || got.PayloadRef != nil || !got.CreatedAt.Equal(at(7)) {
		t.Fatalf("e7 = %+v", got)
	}

	base := store.ExecutionFilter{Owner: "alice", SandboxID: "sb1"}
	with := func(mod func(*store.ExecutionFilter)) store.ExecutionFilter { f := base; mod(&f); return f }
	cases := []struct {
		name  string
		f     store.ExecutionFilter
		want  []string
		total int
	}{
		{"all newest first, insertion breaks ties", base,
			[]string{"e9", "e8", "e7", "e6", "e5", "e4", "e3", "e2", "e1", "e0"}, 10},
		{"limit", with(func(f *store.ExecutionFilter) { f.Limit = 3 }), []string{"e9", "e8", "e7"}, 10},
		{"limit offset", with(func(f *store.ExecutionFilter) { f.Limit = 3; f.Offset = 8 }), []string{"e1", "e0"}, 10},
		{"offset past end", with(func(f *store.ExecutionFilter) { f.Offset = 50 }), []string{}, 10},
		{"exec type", with(func(f *store.ExecutionFilter) { f.ExecType = "python" }), []string{"e7", "e5", "e2", "e0"}, 4},
		{"success only", with(func(f *store.ExecutionFilter) { f.SuccessOnly = true; f.ExecType = "shell" }), []string{"e9", "e8", "e6"}, 3},
		{"has notes (empty is none)", with(func(f *store.ExecutionFilter) { f.HasNotes = true }), []string{"e2"}, 1},
		{"has description", with(func(f *store.ExecutionFilter) { f.HasDescription = true }), []string{"e1"}, 1},
		{"tags any, case-insensitive substring", with(func(f *store.ExecutionFilter) { f.Tags = []string{"DATA", "log"} }),
			[]string{"e4", "e2", "e0"}, 3},
		{"tag with wildcard characters is literal", with(func(f *store.ExecutionFilter) { f.Tags = []string{"0%"} }), []string{"e6"}, 1},
		{"underscore is literal", with(func(f *store.ExecutionFilter) { f.Tags = []string{"a_s"} }), []string{"e2"}, 1},
		{"blank tags ignored", with(func(f *store.ExecutionFilter) { f.Tags = []string{" ", ""} }),
			[]string{"e9", "e8", "e7", "e6", "e5", "e4", "e3", "e2", "e1", "e0"}, 10},
		{"tags and limit", with(func(f *store.ExecutionFilter) { f.Tags = []string{"data"}; f.Limit = 1 }), []string{"e2"}, 2},
		{"other sandbox", store.ExecutionFilter{Owner: "alice", SandboxID: "sb2"}, []string{"e10"}, 1},
		{"foreign owner", store.ExecutionFilter{Owner: "mallory", SandboxID: "sb1"}, []string{}, 0},
		{"every sandbox of an owner", store.ExecutionFilter{Owner: "alice", Tags: []string{"data"}}, []string{"e2", "e0"}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, total, err := s.ListExecutions(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(execIDs(got), c.want) || total != c.total {
				t.Fatalf("got %v total %d; want %v total %d", execIDs(got), total, c.want, c.total)
			}
		})
	}

	lastCases := map[string]string{"": "e9", "python": "e7", "browser": "e3", "browser_batch": "e4"}
	for typ, want := range lastCases {
		e, err := s.LastExecution(ctx, "alice", "sb1", typ)
		if err != nil || e.ID != want {
			t.Errorf("last %q = %s, %v; want %s", typ, e.ID, err, want)
		}
	}
	if _, err := s.LastExecution(ctx, "alice", "sb2", "shell"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("last of a type never run: %v; want ErrNotFound", err)
	}

	// Patch: nil leaves a field, a value sets it, an explicit empty string is kept.
	up, err := s.UpdateExecution(ctx, "alice", "sb1", "e0", store.ExecutionPatch{Notes: ptr("n1"), Description: ptr("d1")})
	if err != nil || up.Notes == nil || *up.Notes != "n1" || *up.Description != "d1" || up.Tags == nil || *up.Tags != "data,plot" {
		t.Fatalf("patch 1 = %+v, %v", up, err)
	}
	up, err = s.UpdateExecution(ctx, "alice", "sb1", "e0", store.ExecutionPatch{Tags: ptr("x,y"), Notes: ptr("")})
	if err != nil || *up.Tags != "x,y" || *up.Notes != "" || *up.Description != "d1" || up.Code != "code 0" {
		t.Fatalf("patch 2 = %+v, %v", up, err)
	}
	if again, _ := s.GetExecution(ctx, "", "", "e0"); *again.Tags != "x,y" || *again.Notes != "" {
		t.Fatalf("patch not stored: %+v", again)
	}
	if _, err := s.UpdateExecution(ctx, "alice", "sb2", "e0", store.ExecutionPatch{Notes: ptr("x")}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("patch through another sandbox: %v", err)
	}
	if _, err := s.UpdateExecution(ctx, "alice", "sb1", "nope", store.ExecutionPatch{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("patch missing: %v", err)
	}

	if err := s.DeleteExecutions(ctx, "sb1"); err != nil {
		t.Fatal(err)
	}
	if got, total, err := s.ListExecutions(ctx, base); err != nil || len(got) != 0 || total != 0 {
		t.Fatalf("after delete: %v %d %v", execIDs(got), total, err)
	}
	if _, total, _ := s.ListExecutions(ctx, store.ExecutionFilter{SandboxID: "sb2"}); total != 1 {
		t.Fatalf("other sandbox's history touched: total %d", total)
	}
}
