package sqlstore

import (
	"github.com/bay-sandbox/bay/store"

	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

func rule(format string, args ...any) error {
	return &store.SkillRuleError{Reason: fmt.Sprintf(format, args...)}
}

const candidateCols = `id, owner, skill_key, scenario_key, payload_ref, skill_type, summary, usage_notes,
	preconditions, postconditions, source_execution_ids, status, latest_score, latest_pass, last_evaluated_at,
	promotion_release_id, created_by, created_at, updated_at, deleted_at, deleted_by, delete_reason`

const releaseCols = `id, owner, skill_key, candidate_id, version, stage, is_active, release_mode, promoted_by,
	promoted_at, rollback_of, health_window_end_at, upgrade_of_release_id, upgrade_reason, change_summary,
	deleted_at, deleted_by, delete_reason`

func scanDeletion(at sql.NullInt64, by, reason sql.NullString) *store.Deletion {
	if !at.Valid {
		return nil
	}
	return &store.Deletion{At: fromMS(at.Int64), By: fromNullStr(by), Reason: fromNullStr(reason)}
}

func scanCandidate(r scanner) (store.SkillCandidate, error) {
	var (
		c                                 store.SkillCandidate
		pre, post                         sql.NullString
		ids                               string
		score                             sql.NullFloat64
		pass, evaluated, created, updated sql.NullInt64
		deletedAt                         sql.NullInt64
		scenario, payload, summary, usage sql.NullString
		promo, deletedBy, deleteReason    sql.NullString
	)
	if err := r.Scan(&c.ID, &c.Owner, &c.SkillKey, &scenario, &payload, &c.SkillType, &summary, &usage,
		&pre, &post, &ids, &c.Status, &score, &pass, &evaluated, &promo, &c.CreatedBy, &created, &updated,
		&deletedAt, &deletedBy, &deleteReason); err != nil {
		return store.SkillCandidate{}, err
	}
	c.ScenarioKey, c.PayloadRef = fromNullStr(scenario), fromNullStr(payload)
	c.Summary, c.UsageNotes, c.PromotionReleaseID = fromNullStr(summary), fromNullStr(usage), fromNullStr(promo)
	if pre.Valid {
		c.Preconditions = json.RawMessage(pre.String)
	}
	if post.Valid {
		c.Postconditions = json.RawMessage(post.String)
	}
	if err := json.Unmarshal([]byte(ids), &c.SourceExecutionIDs); err != nil {
		return store.SkillCandidate{}, fmt.Errorf("decode source_execution_ids: %w", err)
	}
	if score.Valid {
		c.LatestScore = &score.Float64
	}
	if pass.Valid {
		b := pass.Int64 != 0
		c.LatestPass = &b
	}
	c.LastEvaluatedAt = fromNullMS(evaluated)
	c.CreatedAt, c.UpdatedAt = fromMS(created.Int64), fromMS(updated.Int64)
	c.Deleted = scanDeletion(deletedAt, deletedBy, deleteReason)
	return c, nil
}

func scanRelease(r scanner) (store.SkillRelease, error) {
	var (
		rel                                   store.SkillRelease
		active                                int
		promoted                              int64
		window, deletedAt                     sql.NullInt64
		rollbackOf, upgradeOf, reason, change sql.NullString
		deletedBy, deleteReason               sql.NullString
	)
	if err := r.Scan(&rel.ID, &rel.Owner, &rel.SkillKey, &rel.CandidateID, &rel.Version, &rel.Stage, &active,
		&rel.ReleaseMode, &rel.PromotedBy, &promoted, &rollbackOf, &window, &upgradeOf, &reason, &change,
		&deletedAt, &deletedBy, &deleteReason); err != nil {
		return store.SkillRelease{}, err
	}
	rel.IsActive = active != 0
	rel.PromotedAt = fromMS(promoted)
	rel.RollbackOf, rel.UpgradeOfReleaseID = fromNullStr(rollbackOf), fromNullStr(upgradeOf)
	rel.UpgradeReason, rel.ChangeSummary = fromNullStr(reason), fromNullStr(change)
	rel.HealthWindowEndAt = fromNullMS(window)
	rel.Deleted = scanDeletion(deletedAt, deletedBy, deleteReason)
	return rel, nil
}

func nullRaw(r json.RawMessage) sql.NullString {
	if r == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: string(r), Valid: true}
}

func nullFloat(f *float64) sql.NullFloat64 {
	if f == nil {
		return sql.NullFloat64{}
	}
	return sql.NullFloat64{Float64: *f, Valid: true}
}

// CreateSkillCandidate stores a new candidate; ErrConflict if the id exists.
func (s *DB) CreateSkillCandidate(ctx context.Context, c store.SkillCandidate) error {
	if c.ID == "" {
		return errors.New("create skill candidate: empty id")
	}
	ids, err := json.Marshal(c.SourceExecutionIDs)
	if err != nil {
		return fmt.Errorf("create skill candidate: %w", err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO skill_candidates (`+candidateCols+`) VALUES (`+placeholders(22)+`)`,
		c.ID, c.Owner, c.SkillKey, nullStr(c.ScenarioKey), nullStr(c.PayloadRef), c.SkillType, nullStr(c.Summary),
		nullStr(c.UsageNotes), nullRaw(c.Preconditions), nullRaw(c.Postconditions), string(ids), c.Status,
		nullFloat(c.LatestScore), nil, msPtr(c.LastEvaluatedAt), nullStr(c.PromotionReleaseID), c.CreatedBy,
		ms(c.CreatedAt), ms(c.UpdatedAt), nil, nil, nil)
	if err != nil {
		return s.insertErr("skill candidate", c.ID, err)
	}
	return nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getCandidate(ctx context.Context, q querier, owner, id string) (store.SkillCandidate, error) {
	c, err := scanCandidate(q.QueryRowContext(ctx, `SELECT `+candidateCols+
		` FROM skill_candidates WHERE id = ? AND owner = ? AND deleted_at IS NULL`, id, owner))
	if errors.Is(err, sql.ErrNoRows) {
		return store.SkillCandidate{}, fmt.Errorf("get skill candidate %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.SkillCandidate{}, fmt.Errorf("get skill candidate %s: %w", id, err)
	}
	return c, nil
}

func getRelease(ctx context.Context, q querier, owner, id string) (store.SkillRelease, error) {
	r, err := scanRelease(q.QueryRowContext(ctx, `SELECT `+releaseCols+
		` FROM skill_releases WHERE id = ? AND owner = ? AND deleted_at IS NULL`, id, owner))
	if errors.Is(err, sql.ErrNoRows) {
		return store.SkillRelease{}, fmt.Errorf("get skill release %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.SkillRelease{}, fmt.Errorf("get skill release %s: %w", id, err)
	}
	return r, nil
}

// GetSkillCandidate returns an owner's live candidate; a deleted or foreign
// one is ErrNotFound.
func (s *DB) GetSkillCandidate(ctx context.Context, owner, id string) (store.SkillCandidate, error) {
	return getCandidate(ctx, s.r, owner, id)
}

// GetSkillRelease returns an owner's live release; a deleted or foreign one
// is ErrNotFound.
func (s *DB) GetSkillRelease(ctx context.Context, owner, id string) (store.SkillRelease, error) {
	return getRelease(ctx, s.r, owner, id)
}

// ListSkillCandidates returns a page of live candidates, newest first, and
// the number matching regardless of Limit and Offset.
func (s *DB) ListSkillCandidates(ctx context.Context, f store.SkillCandidateFilter) ([]store.SkillCandidate, int, error) {
	w := ` WHERE owner = ? AND deleted_at IS NULL`
	args := []any{f.Owner}
	if f.Status != "" {
		w += ` AND status = ?`
		args = append(args, f.Status)
	}
	if f.SkillKey != "" {
		w += ` AND skill_key = ?`
		args = append(args, f.SkillKey)
	}
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM skill_candidates`+w, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count skill candidates: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+candidateCols+` FROM skill_candidates`+w+
		` ORDER BY created_at DESC, `+s.d.InsertOrder+` DESC LIMIT ? OFFSET ?`, append(args, pageLimit(f.Limit), max(f.Offset, 0))...)
	if err != nil {
		return nil, 0, fmt.Errorf("list skill candidates: %w", err)
	}
	defer rows.Close()
	out := []store.SkillCandidate{}
	for rows.Next() {
		c, err := scanCandidate(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list skill candidates: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list skill candidates: %w", err)
	}
	return out, total, nil
}

func pageLimit(n int) int {
	if n <= 0 {
		return defaultHistoryPage
	}
	return n
}

// ListSkillReleases returns a page of live releases, newest version first,
// and the number matching regardless of Limit and Offset.
func (s *DB) ListSkillReleases(ctx context.Context, f store.SkillReleaseFilter) ([]store.SkillRelease, int, error) {
	w := ` WHERE owner = ? AND deleted_at IS NULL`
	args := []any{f.Owner}
	if f.SkillKey != "" {
		w += ` AND skill_key = ?`
		args = append(args, f.SkillKey)
	}
	if f.Stage != "" {
		w += ` AND stage = ?`
		args = append(args, f.Stage)
	}
	if f.ActiveOnly {
		w += ` AND is_active = 1`
	}
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM skill_releases`+w, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count skill releases: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+releaseCols+` FROM skill_releases`+w+
		` ORDER BY promoted_at DESC, version DESC LIMIT ? OFFSET ?`, append(args, pageLimit(f.Limit), max(f.Offset, 0))...)
	if err != nil {
		return nil, 0, fmt.Errorf("list skill releases: %w", err)
	}
	defer rows.Close()
	out := []store.SkillRelease{}
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list skill releases: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list skill releases: %w", err)
	}
	return out, total, nil
}

// EvaluateSkillCandidate records an evaluation and makes it the candidate's
// latest result. A candidate not yet promoted becomes evaluating (passed) or
// rejected (failed); a promoted one keeps its status.
func (s *DB) EvaluateSkillCandidate(ctx context.Context, e store.SkillEvaluation) (store.SkillEvaluation, error) {
	err := s.tx(ctx, func(tx txn) error {
		c, err := getCandidate(ctx, tx, e.Owner, e.CandidateID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO skill_evaluations (id, owner, candidate_id, benchmark_id, score,
			passed, report, evaluated_by, created_at) VALUES (`+placeholders(9)+`)`,
			e.ID, e.Owner, e.CandidateID, nullStr(e.BenchmarkID), nullFloat(e.Score), boolInt(e.Passed),
			nullStr(e.Report), e.EvaluatedBy, ms(e.CreatedAt)); err != nil {
			return s.insertErr("skill evaluation", e.ID, err)
		}
		status := c.Status
		switch status {
		case store.SkillDraft, store.SkillEvaluating, store.SkillRejected:
			status = store.SkillRejected
			if e.Passed {
				status = store.SkillEvaluating
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE skill_candidates SET latest_score = ?, latest_pass = ?,
			last_evaluated_at = ?, status = ?, updated_at = ? WHERE id = ?`,
			nullFloat(e.Score), boolInt(e.Passed), ms(e.CreatedAt), status, ms(e.CreatedAt), c.ID)
		return err
	})
	if err != nil {
		return store.SkillEvaluation{}, fmt.Errorf("evaluate skill candidate %s: %w", e.CandidateID, err)
	}
	return e, nil
}

// PromoteSkillCandidate turns a candidate whose latest evaluation passed
// into a new active release of its skill key at r.Stage, deactivating every
// other active release of the key. r supplies ID, Owner, Stage,
// ReleaseMode, PromotedBy, PromotedAt, HealthWindowEndAt and the upgrade
// fields; the rest comes from the candidate.
func (s *DB) PromoteSkillCandidate(ctx context.Context, candidateID string, r store.SkillRelease) (store.SkillRelease, error) {
	err := s.tx(ctx, func(tx txn) error {
		c, err := getCandidate(ctx, tx, r.Owner, candidateID)
		if err != nil {
			return err
		}
		if c.LatestPass == nil || !*c.LatestPass {
			return rule("candidate %s has no passing evaluation; evaluate it with passed=true before promoting", c.ID)
		}
		if r.UpgradeOfReleaseID != nil {
			up, err := getRelease(ctx, tx, r.Owner, *r.UpgradeOfReleaseID)
			if err != nil {
				return err
			}
			if up.SkillKey != c.SkillKey {
				return rule("upgrade_of_release_id %s belongs to skill %q, not %q", up.ID, up.SkillKey, c.SkillKey)
			}
		}
		r.SkillKey, r.CandidateID, r.IsActive = c.SkillKey, c.ID, true
		if err := s.insertRelease(ctx, tx, &r); err != nil {
			return err
		}
		status := store.SkillPromotedCanary
		if r.Stage == store.StageStable {
			status = store.SkillPromotedStable
		}
		_, err = tx.ExecContext(ctx, `UPDATE skill_candidates SET status = ?, promotion_release_id = ?, updated_at = ?
			WHERE id = ?`, status, r.ID, ms(r.PromotedAt), c.ID)
		return err
	})
	if err != nil {
		return store.SkillRelease{}, fmt.Errorf("promote skill candidate %s: %w", candidateID, err)
	}
	return r, nil
}

// insertRelease numbers r (next version of its skill key, deleted releases
// included so versions are never reused), deactivates every active release
// of the key (one active release per skill key, whatever its stage, as
// Shipyard Neo's Bay does) and inserts it.
func (s *DB) insertRelease(ctx context.Context, tx txn, r *store.SkillRelease) error {
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM skill_releases
		WHERE owner = ? AND skill_key = ?`, r.Owner, r.SkillKey).Scan(&r.Version); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE skill_releases SET is_active = 0
		WHERE owner = ? AND skill_key = ? AND is_active = 1`, r.Owner, r.SkillKey); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO skill_releases (`+releaseCols+`) VALUES (`+placeholders(18)+`)`,
		r.ID, r.Owner, r.SkillKey, r.CandidateID, r.Version, r.Stage, boolInt(r.IsActive), r.ReleaseMode,
		r.PromotedBy, ms(r.PromotedAt), nullStr(r.RollbackOf), msPtr(r.HealthWindowEndAt),
		nullStr(r.UpgradeOfReleaseID), nullStr(r.UpgradeReason), nullStr(r.ChangeSummary), nil, nil, nil)
	if err != nil {
		return s.insertErr("skill release", r.ID, err)
	}
	return nil
}

// RollbackSkillRelease rolls release id back to the release of the previous
// version of its skill key (the highest lower version not deleted, whatever
// its stage): a new active release (newID, next version, rollback_of = id)
// with that release's candidate and stage, every other release of the key
// deactivated, and id's candidate marked rolled_back. So a first canary
// rolls back to the stable release before it. Refused (SkillRuleError) when
// id has no predecessor.
func (s *DB) RollbackSkillRelease(ctx context.Context, owner, id, newID, by string, now time.Time) (store.SkillRelease, error) {
	var out store.SkillRelease
	err := s.tx(ctx, func(tx txn) error {
		cur, err := getRelease(ctx, tx, owner, id)
		if err != nil {
			return err
		}
		prev, err := scanRelease(tx.QueryRowContext(ctx, `SELECT `+releaseCols+` FROM skill_releases
			WHERE owner = ? AND skill_key = ? AND version < ? AND deleted_at IS NULL
			ORDER BY version DESC LIMIT 1`, owner, cur.SkillKey, cur.Version))
		if errors.Is(err, sql.ErrNoRows) {
			return rule("rollback is unavailable: release %s has no previous release of skill %q", id, cur.SkillKey)
		}
		if err != nil {
			return err
		}
		out = store.SkillRelease{
			ID: newID, Owner: owner, SkillKey: cur.SkillKey, CandidateID: prev.CandidateID, Stage: prev.Stage,
			IsActive: true, ReleaseMode: "manual", PromotedBy: by, PromotedAt: now, RollbackOf: &cur.ID,
		}
		if err := s.insertRelease(ctx, tx, &out); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE skill_candidates SET status = ?, updated_at = ? WHERE id = ? AND owner = ?`,
			store.SkillRolledBack, ms(now), cur.CandidateID, owner)
		return err
	})
	if err != nil {
		return store.SkillRelease{}, fmt.Errorf("roll back skill release %s: %w", id, err)
	}
	return out, nil
}

// DeleteSkillCandidate soft-deletes a candidate. Refused (SkillRuleError)
// while one of its releases is active.
func (s *DB) DeleteSkillCandidate(ctx context.Context, owner, id string, d store.Deletion) (store.SkillCandidate, error) {
	var out store.SkillCandidate
	err := s.tx(ctx, func(tx txn) error {
		c, err := getCandidate(ctx, tx, owner, id)
		if err != nil {
			return err
		}
		var active string
		err = tx.QueryRowContext(ctx, `SELECT id FROM skill_releases WHERE owner = ? AND candidate_id = ?
			AND is_active = 1 AND deleted_at IS NULL LIMIT 1`, owner, id).Scan(&active)
		if err == nil {
			return rule("candidate %s backs the active release %s; roll it back or delete the release first", id, active)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE skill_candidates SET deleted_at = ?, deleted_by = ?, delete_reason = ?,
			updated_at = ? WHERE id = ?`, ms(d.At), nullStr(d.By), nullStr(d.Reason), ms(d.At), id); err != nil {
			return err
		}
		c.Deleted, c.UpdatedAt = &d, d.At
		out = c
		return nil
	})
	if err != nil {
		return store.SkillCandidate{}, fmt.Errorf("delete skill candidate %s: %w", id, err)
	}
	return out, nil
}

// DeleteSkillRelease soft-deletes a release; an active one stops being
// active (the skill then has no active release), and a candidate whose
// promotion_release_id named it no longer does.
func (s *DB) DeleteSkillRelease(ctx context.Context, owner, id string, d store.Deletion) (store.SkillRelease, error) {
	var out store.SkillRelease
	err := s.tx(ctx, func(tx txn) error {
		r, err := getRelease(ctx, tx, owner, id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE skill_releases SET is_active = 0, deleted_at = ?, deleted_by = ?,
			delete_reason = ? WHERE id = ?`, ms(d.At), nullStr(d.By), nullStr(d.Reason), id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE skill_candidates SET promotion_release_id = NULL, updated_at = ?
			WHERE owner = ? AND promotion_release_id = ?`, ms(d.At), owner, id); err != nil {
			return err
		}
		r.IsActive, r.Deleted = false, &d
		out = r
		return nil
	})
	if err != nil {
		return store.SkillRelease{}, fmt.Errorf("delete skill release %s: %w", id, err)
	}
	return out, nil
}

// ActiveSkillRelease returns the owner's active release of a skill key (a
// promotion or rollback leaves one; the newest if older data has several);
// ErrNotFound when there is none.
func (s *DB) ActiveSkillRelease(ctx context.Context, owner, skillKey string) (store.SkillRelease, error) {
	r, err := scanRelease(s.r.QueryRowContext(ctx, `SELECT `+releaseCols+` FROM skill_releases
		WHERE owner = ? AND skill_key = ? AND is_active = 1 AND deleted_at IS NULL
		ORDER BY version DESC LIMIT 1`, owner, skillKey))
	if errors.Is(err, sql.ErrNoRows) {
		return store.SkillRelease{}, fmt.Errorf("active release of skill %q: %w", skillKey, store.ErrNotFound)
	}
	if err != nil {
		return store.SkillRelease{}, fmt.Errorf("active release of skill %q: %w", skillKey, err)
	}
	return r, nil
}

// PreviousSkillRelease returns the release that preceded r (the highest
// lower version of its skill key, whatever its stage: it is the one r
// replaced; deleted ones included since their runs still describe the
// baseline); ErrNotFound for the first one.
func (s *DB) PreviousSkillRelease(ctx context.Context, r store.SkillRelease) (store.SkillRelease, error) {
	p, err := scanRelease(s.r.QueryRowContext(ctx, `SELECT `+releaseCols+` FROM skill_releases
		WHERE owner = ? AND skill_key = ? AND version < ? ORDER BY version DESC LIMIT 1`,
		r.Owner, r.SkillKey, r.Version))
	if errors.Is(err, sql.ErrNoRows) {
		return store.SkillRelease{}, fmt.Errorf("release before %s: %w", r.ID, store.ErrNotFound)
	}
	if err != nil {
		return store.SkillRelease{}, fmt.Errorf("release before %s: %w", r.ID, err)
	}
	return p, nil
}

// RecordSkillRun stores one replay of a release.
func (s *DB) RecordSkillRun(ctx context.Context, r store.SkillRun) error {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO skill_runs (owner, release_id, success, duration_ms, created_at)
		VALUES (?, ?, ?, ?, ?)`, r.Owner, r.ReleaseID, boolInt(r.Success), r.DurationMS, ms(r.CreatedAt)); err != nil {
		return fmt.Errorf("record skill run of %s: %w", r.ReleaseID, err)
	}
	return nil
}

// ListSkillRuns returns the runs of a release in [from, to), oldest first.
func (s *DB) ListSkillRuns(ctx context.Context, owner, releaseID string, from, to time.Time) ([]store.SkillRun, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT owner, release_id, success, duration_ms, created_at FROM skill_runs
		WHERE owner = ? AND release_id = ? AND created_at >= ? AND created_at < ? ORDER BY created_at, id`,
		owner, releaseID, ms(from), ms(to))
	if err != nil {
		return nil, fmt.Errorf("list skill runs of %s: %w", releaseID, err)
	}
	defer rows.Close()
	out := []store.SkillRun{}
	for rows.Next() {
		var (
			r       store.SkillRun
			success int
			created int64
		)
		if err := rows.Scan(&r.Owner, &r.ReleaseID, &success, &r.DurationMS, &created); err != nil {
			return nil, fmt.Errorf("list skill runs of %s: %w", releaseID, err)
		}
		r.Success, r.CreatedAt = success != 0, fromMS(created)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list skill runs of %s: %w", releaseID, err)
	}
	return out, nil
}
