package sqlite

import (
	"context"
	"strings"
	"testing"
)

// TestQueryPlans guards the indexes the hot queries rely on: a refactor that
// turns one of them into a full table scan fails here, not in production.
func TestQueryPlans(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range s.HotQueries() {
		t.Run(c.Name, func(t *testing.T) {
			rows, err := s.Reader().QueryContext(ctx, `EXPLAIN QUERY PLAN `+c.Query, c.Args...)
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
			if !strings.Contains(all, c.Index) {
				t.Fatalf("plan %q does not use %s", all, c.Index)
			}
			if strings.Contains(all, "SCAN sandboxes") && !strings.Contains(all, "USING") {
				t.Fatalf("plan %q scans the table", all)
			}
			t.Logf("%s: %s", c.Name, all)
		})
	}
}
