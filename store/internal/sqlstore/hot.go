package sqlstore

// HotQuery is a query the gateway runs often, with sample arguments and the
// index it must use: the backends' tests check that their planner keeps it
// on that index, so a refactor that turns one into a full table scan fails
// there rather than in production.
type HotQuery struct {
	Name, Query string
	Args        []any
	Index       string
}

// HotQueries returns the hot queries, in the dialect's SQL but with ?
// placeholders (Rebind turns them into the dialect's).
func (s *DB) HotQueries() []HotQuery {
	return []HotQuery{
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
		{"history", `SELECT ` + executionCols + ` FROM executions WHERE 1 = 1 AND owner = ? AND sandbox_id = ? ORDER BY created_at DESC, ` + s.d.InsertOrder + ` DESC LIMIT ? OFFSET ?`,
			[]any{"a", "sb", 10, 0}, "executions_sandbox_created"},
	}
}

// Rebind rewrites a query's ? placeholders into the dialect's.
func (s *DB) Rebind(q string) string { return s.d.rebind(q) }
