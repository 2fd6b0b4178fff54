package store

import (
	"context"
	"strings"
	"testing"
)

// TestQueryPlans guards the indexes the hot queries rely on: a refactor that
// turns one of them into a full table scan fails here, not in production.
func TestQueryPlans(t *testing.T) {
	ctx := context.Background()
	s := memStore(t)
	cases := []struct {
		name, query string
		args        []any
		index       string
	}{
		{"idle expired", qIdleExpired,
			[]any{1}, "sandboxes_idle"},
		{"expired", qExpired,
			[]any{1}, "sandboxes_expires"},
		{"with session", qWithSession,
			nil, "sandboxes_idle"},
		{"list page", `SELECT ` + sandboxCols + ` FROM sandboxes WHERE warm = 0 AND owner = ? AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?`,
			[]any{"a", 1, "x", 51}, "sandboxes_owner_created"},
		{"count", `SELECT COUNT(*) FROM sandboxes WHERE warm = 0 AND owner = ?`, []any{"a"}, "sandboxes_owner_created"},
		{"warm pick", qWarmPick,
			[]any{"p"}, "sandboxes_warm"},
		{"cargo page", `SELECT ` + cargoCols + ` FROM cargos WHERE 1 = 1 AND owner = ? AND managed = ? AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?`,
			[]any{"a", 0, 1, "x", 51}, "cargos_owner_managed_created"},
		{"using cargo", `SELECT id FROM sandboxes WHERE cargo_id = ? ORDER BY id`, []any{"c"}, "sandboxes_cargo"},
		{"history", `SELECT ` + executionCols + ` FROM executions WHERE 1 = 1 AND owner = ? AND sandbox_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?`,
			[]any{"a", "sb", 10, 0}, "executions_sandbox_created"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows, err := s.r.QueryContext(ctx, `EXPLAIN QUERY PLAN `+c.query, c.args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			all := strings.Join(plan, "; ")
			if !strings.Contains(all, c.index) {
				t.Fatalf("plan %q does not use %s", all, c.index)
			}
			if strings.Contains(all, "SCAN sandboxes") && !strings.Contains(all, "USING") {
				t.Fatalf("plan %q scans the table", all)
			}
			t.Logf("%s: %s", c.name, all)
		})
	}
}
