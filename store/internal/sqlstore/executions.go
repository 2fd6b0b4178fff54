package sqlstore

import (
	"github.com/bay-sandbox/bay/store"

	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

const defaultHistoryPage = 100

const executionCols = `id, sandbox_id, owner, session_id, exec_type, code, success, execution_time_ms,
	output, error, payload_ref, description, tags, notes, created_at,
	learn_enabled, learn_status, learn_error, learn_processed_at`

func scanExecution(r scanner) (store.Execution, error) {
	var (
		e                                        store.Execution
		success                                  int
		created                                  int64
		output, errS, payload, desc, tags, notes sql.NullString
		learn                                    int
		learnStatus, learnErr                    sql.NullString
		learnAt                                  sql.NullInt64
	)
	if err := r.Scan(&e.ID, &e.SandboxID, &e.Owner, &e.SessionID, &e.ExecType, &e.Code, &success,
		&e.ExecutionTimeMS, &output, &errS, &payload, &desc, &tags, &notes, &created,
		&learn, &learnStatus, &learnErr, &learnAt); err != nil {
		return store.Execution{}, err
	}
	e.Success = success != 0
	e.Output, e.Error, e.PayloadRef = fromNullStr(output), fromNullStr(errS), fromNullStr(payload)
	e.Description, e.Tags, e.Notes = fromNullStr(desc), fromNullStr(tags), fromNullStr(notes)
	e.CreatedAt = fromMS(created)
	e.LearnEnabled = learn != 0
	e.LearnStatus, e.LearnError = fromNullStr(learnStatus), fromNullStr(learnErr)
	if learnAt.Valid {
		t := fromMS(learnAt.Int64)
		e.LearnProcessedAt = &t
	}
	return e, nil
}

// CreateExecution records a history entry; ErrConflict if the id exists.
func (s *DB) CreateExecution(ctx context.Context, e store.Execution) error {
	if e.ID == "" {
		return errors.New("create execution: empty id")
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO executions (`+executionCols+`) VALUES (`+placeholders(19)+`)`,
		e.ID, e.SandboxID, e.Owner, e.SessionID, e.ExecType, e.Code, boolInt(e.Success), e.ExecutionTimeMS,
		nullStr(e.Output), nullStr(e.Error), nullStr(e.PayloadRef), nullStr(e.Description), nullStr(e.Tags),
		nullStr(e.Notes), ms(e.CreatedAt), boolInt(e.LearnEnabled), nullStr(e.LearnStatus), nullStr(e.LearnError),
		msPtr(e.LearnProcessedAt))
	if err != nil {
		return s.insertErr("execution", e.ID, err)
	}
	return nil
}

// execScope builds the WHERE clause shared by single-entry reads.
func execScope(owner, sandboxID string) (string, []any) {
	w := ``
	var args []any
	if owner != "" {
		w += ` AND owner = ?`
		args = append(args, owner)
	}
	if sandboxID != "" {
		w += ` AND sandbox_id = ?`
		args = append(args, sandboxID)
	}
	return w, args
}

// GetExecution returns one entry of a sandbox. owner or sandboxID "" match
// any; a mismatch is ErrNotFound.
func (s *DB) GetExecution(ctx context.Context, owner, sandboxID, id string) (store.Execution, error) {
	w, args := execScope(owner, sandboxID)
	e, err := scanExecution(s.r.QueryRowContext(ctx,
		`SELECT `+executionCols+` FROM executions WHERE id = ?`+w, append([]any{id}, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Execution{}, fmt.Errorf("get execution %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Execution{}, fmt.Errorf("get execution %s: %w", id, err)
	}
	return e, nil
}

// ListExecutions returns a page of entries, newest first, and how many match
// the filter regardless of Limit and Offset.
func (s *DB) ListExecutions(ctx context.Context, f store.ExecutionFilter) ([]store.Execution, int, error) {
	w, args := execScope(f.Owner, f.SandboxID)
	if f.ExecType != "" {
		w += ` AND exec_type = ?`
		args = append(args, f.ExecType)
	}
	if f.SuccessOnly {
		w += ` AND success = 1`
	}
	if f.HasNotes {
		w += ` AND notes IS NOT NULL AND notes != ''`
	}
	if f.HasDescription {
		w += ` AND description IS NOT NULL AND description != ''`
	}
	var tagTerms []string
	for _, t := range f.Tags {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		// A substring test, not LIKE: a tag may contain % or _.
		tagTerms = append(tagTerms, s.d.Contains(`lower(tags)`, `?`))
		args = append(args, strings.ToLower(t))
	}
	if len(tagTerms) > 0 {
		w += ` AND tags IS NOT NULL AND (` + strings.Join(tagTerms, ` OR `) + `)`
	}

	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM executions WHERE 1 = 1`+w, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count executions: %w", err)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultHistoryPage
	}
	offset := max(f.Offset, 0)
	// InsertOrder breaks ties between entries of the same millisecond in
	// insertion order.
	rows, err := s.r.QueryContext(ctx, `SELECT `+executionCols+` FROM executions WHERE 1 = 1`+w+
		` ORDER BY created_at DESC, `+s.d.InsertOrder+` DESC LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list executions: %w", err)
	}
	defer rows.Close()
	out := []store.Execution{}
	for rows.Next() {
		e, err := scanExecution(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list executions: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list executions: %w", err)
	}
	return out, total, nil
}

// LastExecution returns the newest entry of a sandbox, of execType ("" =
// any). ErrNotFound when there is none.
func (s *DB) LastExecution(ctx context.Context, owner, sandboxID, execType string) (store.Execution, error) {
	w, args := execScope(owner, sandboxID)
	if execType != "" {
		w += ` AND exec_type = ?`
		args = append(args, execType)
	}
	e, err := scanExecution(s.r.QueryRowContext(ctx, `SELECT `+executionCols+` FROM executions WHERE 1 = 1`+w+
		` ORDER BY created_at DESC, `+s.d.InsertOrder+` DESC LIMIT 1`, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Execution{}, fmt.Errorf("last execution of sandbox %s: %w", sandboxID, store.ErrNotFound)
	}
	if err != nil {
		return store.Execution{}, fmt.Errorf("last execution of sandbox %s: %w", sandboxID, err)
	}
	return e, nil
}

// UpdateExecution applies p to one entry and returns the updated entry.
// ErrNotFound if it does not exist or is out of the owner/sandbox scope.
func (s *DB) UpdateExecution(ctx context.Context, owner, sandboxID, id string, p store.ExecutionPatch) (store.Execution, error) {
	w, args := execScope(owner, sandboxID)
	// CASE keeps a column whose patch field is nil; a bound NULL flag
	// cannot be told apart from "set to null" otherwise.
	q := `UPDATE executions SET
		description = CASE WHEN ? THEN ? ELSE description END,
		tags        = CASE WHEN ? THEN ? ELSE tags END,
		notes       = CASE WHEN ? THEN ? ELSE notes END
		WHERE id = ?` + w + ` RETURNING ` + executionCols
	all := []any{
		p.Description != nil, nullStr(p.Description),
		p.Tags != nil, nullStr(p.Tags),
		p.Notes != nil, nullStr(p.Notes),
		id,
	}
	e, err := scanExecution(s.w.QueryRowContext(ctx, q, append(all, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Execution{}, fmt.Errorf("update execution %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Execution{}, fmt.Errorf("update execution %s: %w", id, err)
	}
	return e, nil
}

// DeleteExecutions removes a sandbox's whole history.
func (s *DB) DeleteExecutions(ctx context.Context, sandboxID string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM executions WHERE sandbox_id = ?`, sandboxID); err != nil {
		return fmt.Errorf("delete executions of sandbox %s: %w", sandboxID, err)
	}
	return nil
}
