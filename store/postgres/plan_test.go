package postgres

import (
	"context"
	"strings"
	"testing"
)

// TestQueryPlans checks that every hot query can run on an index. The test
// tables are empty, so sequential scans are switched off for the session: a
// query that still plans a Seq Scan has no usable index. Which index is
// PostgreSQL's cost-based choice (on empty tables it may pick a sibling of
// the one SQLite's test pins), so only the absence of a scan is checked.
func TestQueryPlans(t *testing.T) {
	ctx := context.Background()
	s := open(t, pg.DB(t))
	c, err := s.Reader().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	for _, q := range s.HotQueries() {
		t.Run(q.Name, func(t *testing.T) {
			rows, err := c.QueryContext(ctx, `EXPLAIN `+s.Rebind(q.Query), q.Args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, strings.TrimSpace(line))
			}
			all := strings.Join(plan, "; ")
			if strings.Contains(all, "Seq Scan") || !strings.Contains(all, "Index") {
				t.Fatalf("plan %q scans the table (want an index such as %s)", all, q.Index)
			}
			t.Logf("%s: %s", q.Name, all)
		})
	}
}
