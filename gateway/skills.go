package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/bay-sandbox/bay/gateway/apierr"
	"github.com/bay-sandbox/bay/gateway/service"
	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/store"
)

// skillStore is what the skills handlers need.
type skillStore interface {
	CreateSkillCandidate(ctx context.Context, c store.SkillCandidate) error
	GetSkillCandidate(ctx context.Context, owner, id string) (store.SkillCandidate, error)
	ListSkillCandidates(ctx context.Context, f store.SkillCandidateFilter) ([]store.SkillCandidate, int, error)
	EvaluateSkillCandidate(ctx context.Context, e store.SkillEvaluation) (store.SkillEvaluation, error)
	PromoteSkillCandidate(ctx context.Context, candidateID string, r store.SkillRelease) (store.SkillRelease, error)
	DeleteSkillCandidate(ctx context.Context, owner, id string, d store.Deletion) (store.SkillCandidate, error)
	GetSkillRelease(ctx context.Context, owner, id string) (store.SkillRelease, error)
	ListSkillReleases(ctx context.Context, f store.SkillReleaseFilter) ([]store.SkillRelease, int, error)
	RollbackSkillRelease(ctx context.Context, owner, id, newID, by string, now time.Time) (store.SkillRelease, error)
	DeleteSkillRelease(ctx context.Context, owner, id string, d store.Deletion) (store.SkillRelease, error)
	ActiveSkillRelease(ctx context.Context, owner, skillKey string) (store.SkillRelease, error)
	PreviousSkillRelease(ctx context.Context, r store.SkillRelease) (store.SkillRelease, error)
	RecordSkillRun(ctx context.Context, r store.SkillRun) error
	ListSkillRuns(ctx context.Context, owner, releaseID string, from, to time.Time) ([]store.SkillRun, error)
}

// Skills (API.md §1.8): payload blobs, candidates built from executions,
// evaluations, promotion into versioned releases, rollback, release health
// and the replay of a browser skill's active release. Field names follow the
// Shipyard Neo SDK's skills client.

// Release health policy: a release is watched for healthWindow after its
// promotion and compared with the release it replaced.
const (
	healthWindow           = 24 * time.Hour
	healthMinSamples       = 5
	healthMaxSuccessDrop   = 0.2
	healthMaxErrorMultiple = 2.0
	// healthErrorFloor keeps the error-rate multiplier finite when the
	// baseline never failed.
	healthErrorFloor = 0.05
)

const blobRefPrefix = "blob:"

var (
	candidateStatuses = map[string]bool{
		store.SkillDraft: true, store.SkillEvaluating: true, "promoted": true, store.SkillPromotedCanary: true,
		store.SkillPromotedStable: true, store.SkillRejected: true, store.SkillRolledBack: true,
	}
	releaseStages = map[string]bool{store.StageCanary: true, store.StageStable: true}
)

// skillErr maps store errors of the skills API: a rule violation is a 409
// conflict carrying its reason, a missing row a 404.
func skillErr(err error, kind, id string) error {
	var re *store.SkillRuleError
	switch {
	case errors.As(err, &re):
		return apierr.Conflict("%s", re.Reason)
	case errors.Is(err, store.ErrNotFound):
		return apierr.NotFound(kind, id)
	}
	return err
}

// ---- payloads ----

type skillPayloadRequest struct {
	Payload json.RawMessage `json:"payload"`
	Kind    *string         `json:"kind"`
}

func (s *Server) createSkillPayload(c *fiber.Ctx) error {
	var req skillPayloadRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	p := bytes.TrimSpace(req.Payload)
	if len(p) == 0 || (p[0] != '{' && p[0] != '[') {
		return apierr.Schema("payload", "payload must be a JSON object or array")
	}
	kind := "generic"
	if req.Kind != nil {
		kind = *req.Kind
	}
	if kind == "" {
		return apierr.Schema("kind", "kind must not be empty")
	}
	id := service.NewID("blob-")
	if err := s.store.PutBlob(c.UserContext(), store.Blob{ID: id, Owner: owner(c), Kind: kind, Data: p, CreatedAt: s.svc.Now()}); err != nil {
		return fmt.Errorf("store skill payload: %w", err)
	}
	return c.Status(http.StatusCreated).JSON(fiber.Map{"payload_ref": blobRefPrefix + id, "kind": kind})
}

// ownedBlob resolves a "blob:<id>" ref of the caller. Any other ref is a
// 400 "Unsupported payload_ref: <ref>", in Shipyard Neo's words: a
// candidate may name a payload stored elsewhere (s3://...), which Bay keeps
// but cannot read.
func (s *Server) ownedBlob(c *fiber.Ctx, field, ref string) (store.Blob, error) {
	id, ok := strings.CutPrefix(ref, blobRefPrefix)
	if !ok {
		return store.Blob{}, apierr.Validation("Unsupported payload_ref: %s", ref).With(map[string]any{"field": field})
	}
	if id == "" {
		return store.Blob{}, apierr.Validation("Invalid payload_ref: %s", ref).With(map[string]any{"field": field})
	}
	b, err := s.store.GetBlob(c.UserContext(), owner(c), id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Blob{}, apierr.NotFound("payload", ref)
	} else if err != nil {
		return store.Blob{}, fmt.Errorf("load payload: %w", err)
	}
	return b, nil
}

func (s *Server) getSkillPayload(c *fiber.Ctx) error {
	ref := c.Params("ref")
	if u, err := url.PathUnescape(ref); err == nil {
		ref = u
	}
	b, err := s.ownedBlob(c, "payload_ref", ref)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"payload_ref": ref, "kind": b.Kind, "payload": json.RawMessage(b.Data)})
}

// ---- candidates ----

type candidateView struct {
	ID                  string          `json:"id"`
	SkillKey            string          `json:"skill_key"`
	ScenarioKey         *string         `json:"scenario_key"`
	PayloadRef          *string         `json:"payload_ref"`
	SkillType           string          `json:"skill_type"`
	AutoReleaseEligible bool            `json:"auto_release_eligible"`
	AutoReleaseReason   *string         `json:"auto_release_reason"`
	Summary             *string         `json:"summary"`
	UsageNotes          *string         `json:"usage_notes"`
	Preconditions       json.RawMessage `json:"preconditions"`
	Postconditions      json.RawMessage `json:"postconditions"`
	SourceExecutionIDs  []string        `json:"source_execution_ids"`
	Status              string          `json:"status"`
	LatestScore         *float64        `json:"latest_score"`
	LatestPass          *bool           `json:"latest_pass"`
	LastEvaluatedAt     *string         `json:"last_evaluated_at"`
	PromotionReleaseID  *string         `json:"promotion_release_id"`
	CreatedBy           *string         `json:"created_by"`
	CreatedAt           string          `json:"created_at"`
	UpdatedAt           string          `json:"updated_at"`
	deletionView
}

type deletionView struct {
	IsDeleted    bool    `json:"is_deleted"`
	DeletedAt    *string `json:"deleted_at"`
	DeletedBy    *string `json:"deleted_by"`
	DeleteReason *string `json:"delete_reason"`
}

func deletionOf(d *store.Deletion) deletionView {
	if d == nil {
		return deletionView{}
	}
	return deletionView{IsDeleted: true, DeletedAt: tsPtr(&d.At), DeletedBy: d.By, DeleteReason: d.Reason}
}

func rawOrNull(r json.RawMessage) json.RawMessage {
	if r == nil {
		return json.RawMessage("null")
	}
	return r
}

func viewCandidate(sc store.SkillCandidate) candidateView {
	return candidateView{
		ID: sc.ID, SkillKey: sc.SkillKey, ScenarioKey: sc.ScenarioKey, PayloadRef: sc.PayloadRef, SkillType: sc.SkillType,
		Summary: sc.Summary, UsageNotes: sc.UsageNotes, Preconditions: rawOrNull(sc.Preconditions),
		Postconditions: rawOrNull(sc.Postconditions), SourceExecutionIDs: sc.SourceExecutionIDs, Status: sc.Status,
		LatestScore: sc.LatestScore, LatestPass: sc.LatestPass, LastEvaluatedAt: tsPtr(sc.LastEvaluatedAt),
		PromotionReleaseID: sc.PromotionReleaseID, CreatedBy: optional(sc.CreatedBy), CreatedAt: ts(sc.CreatedAt),
		UpdatedAt: ts(sc.UpdatedAt), deletionView: deletionOf(sc.Deleted),
	}
}

type createCandidateRequest struct {
	SkillKey           *string         `json:"skill_key"`
	SourceExecutionIDs []string        `json:"source_execution_ids"`
	ScenarioKey        *string         `json:"scenario_key"`
	PayloadRef         *string         `json:"payload_ref"`
	Summary            *string         `json:"summary"`
	UsageNotes         *string         `json:"usage_notes"`
	Preconditions      json.RawMessage `json:"preconditions"`
	Postconditions     json.RawMessage `json:"postconditions"`
}

// jsonObject accepts an absent/null field or a JSON object.
func jsonObject(field string, r json.RawMessage) (json.RawMessage, error) {
	r = bytes.TrimSpace(r)
	if len(r) == 0 || string(r) == "null" {
		return nil, nil
	}
	if r[0] != '{' {
		return nil, apierr.Schema(field, "%s must be a JSON object", field)
	}
	return r, nil
}

func (s *Server) createSkillCandidate(c *fiber.Ctx) error {
	var req createCandidateRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	key, err := requiredText("skill_key", req.SkillKey)
	if err != nil {
		return err
	}
	if req.SourceExecutionIDs == nil {
		return apierr.Schema("source_execution_ids", "field \"source_execution_ids\" is required")
	}
	pre, err := jsonObject("preconditions", req.Preconditions)
	if err != nil {
		return err
	}
	post, err := jsonObject("postconditions", req.Postconditions)
	if err != nil {
		return err
	}
	ctx, who := c.UserContext(), owner(c)
	var ids []string
	seen := map[string]bool{}
	for _, id := range req.SourceExecutionIDs {
		if id = strings.TrimSpace(id); id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return apierr.Validation("source_execution_ids must name at least one execution")
	}
	// Every source must be one of the caller's executions; a browser source
	// makes a browser skill, and its stored trace is the default payload.
	skillType := "code"
	payloadRef := req.PayloadRef
	var tracePayload *string
	for _, id := range ids {
		e, err := s.store.GetExecution(ctx, who, "", id)
		if errors.Is(err, store.ErrNotFound) {
			// A 400, not a 404: the request names bad evidence, the route
			// itself exists (Shipyard Neo answers the same).
			return apierr.Validation("Execution ID not found or not owned: %s", id).
				With(map[string]any{"field": "source_execution_ids", "execution_id": id})
		} else if err != nil {
			return fmt.Errorf("load source execution: %w", err)
		}
		if e.ExecType == "browser" || e.ExecType == "browser_batch" {
			skillType = "browser"
		}
		if tracePayload == nil && e.PayloadRef != nil {
			tracePayload = e.PayloadRef
		}
	}
	// Any non-empty ref is kept as given: only a replay needs to read it
	// (and refuses what it cannot read).
	if payloadRef != nil {
		if strings.TrimSpace(*payloadRef) == "" {
			return apierr.Validation("payload_ref must not be empty").With(map[string]any{"field": "payload_ref"})
		}
	} else {
		payloadRef = tracePayload
	}
	now := s.svc.Now()
	sc := store.SkillCandidate{
		ID: service.NewID("skc-"), Owner: who, SkillKey: key, ScenarioKey: req.ScenarioKey, PayloadRef: payloadRef,
		SkillType: skillType, Summary: req.Summary, UsageNotes: req.UsageNotes, Preconditions: pre,
		Postconditions: post, SourceExecutionIDs: ids, Status: store.SkillDraft, CreatedBy: who,
		CreatedAt: now, UpdatedAt: now,
	}
	if err := s.store.CreateSkillCandidate(ctx, sc); err != nil {
		return fmt.Errorf("create skill candidate: %w", err)
	}
	return c.Status(http.StatusCreated).JSON(viewCandidate(sc))
}

func pageQuery(c *fiber.Ctx) (limit, offset int, err error) {
	if limit, err = queryInt(c, "limit", 100, 1, 500); err != nil {
		return 0, 0, err
	}
	offset, err = queryInt(c, "offset", 0, 0, 1<<31-1)
	return limit, offset, err
}

func (s *Server) listSkillCandidates(c *fiber.Ctx) error {
	f := store.SkillCandidateFilter{Owner: owner(c), Status: c.Query("status"), SkillKey: c.Query("skill_key")}
	if f.Status != "" && !candidateStatuses[f.Status] {
		return apierr.Validation("invalid candidate status %q", f.Status).With(map[string]any{"field": "status"})
	}
	var err error
	if f.Limit, f.Offset, err = pageQuery(c); err != nil {
		return err
	}
	items, total, err := s.store.ListSkillCandidates(c.UserContext(), f)
	if err != nil {
		return fmt.Errorf("list skill candidates: %w", err)
	}
	out := make([]candidateView, len(items))
	for i, sc := range items {
		out[i] = viewCandidate(sc)
	}
	return c.JSON(fiber.Map{"items": out, "total": total})
}

func (s *Server) getSkillCandidate(c *fiber.Ctx) error {
	id := c.Params("cid")
	sc, err := s.store.GetSkillCandidate(c.UserContext(), owner(c), id)
	if err != nil {
		return skillErr(err, "skill candidate", id)
	}
	return c.JSON(viewCandidate(sc))
}

type deleteRequest struct {
	Reason *string `json:"reason"`
}

func (s *Server) deletion(c *fiber.Ctx) (store.Deletion, error) {
	var req deleteRequest
	if err := decodeBody(c, &req, true); err != nil {
		return store.Deletion{}, err
	}
	return store.Deletion{At: s.svc.Now(), By: strPtr(owner(c)), Reason: req.Reason}, nil
}

func deletedView(id string, d *store.Deletion) fiber.Map {
	v := deletionOf(d)
	return fiber.Map{"id": id, "deleted_at": v.DeletedAt, "deleted_by": v.DeletedBy, "delete_reason": v.DeleteReason}
}

func (s *Server) deleteSkillCandidate(c *fiber.Ctx) error {
	d, err := s.deletion(c)
	if err != nil {
		return err
	}
	id := c.Params("cid")
	sc, err := s.store.DeleteSkillCandidate(c.UserContext(), owner(c), id, d)
	if err != nil {
		return skillErr(err, "skill candidate", id)
	}
	return c.JSON(deletedView(sc.ID, sc.Deleted))
}

type evaluateRequest struct {
	Passed      *bool    `json:"passed"`
	Score       *float64 `json:"score"`
	BenchmarkID *string  `json:"benchmark_id"`
	Report      *string  `json:"report"`
}

func (s *Server) evaluateSkillCandidate(c *fiber.Ctx) error {
	var req evaluateRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	passed, err := required("passed", req.Passed)
	if err != nil {
		return err
	}
	id := c.Params("cid")
	ev, err := s.store.EvaluateSkillCandidate(c.UserContext(), store.SkillEvaluation{
		ID: service.NewID("ske-"), Owner: owner(c), CandidateID: id, BenchmarkID: req.BenchmarkID, Score: req.Score,
		Passed: passed, Report: req.Report, EvaluatedBy: owner(c), CreatedAt: s.svc.Now(),
	})
	if err != nil {
		return skillErr(err, "skill candidate", id)
	}
	return c.JSON(fiber.Map{
		"id": ev.ID, "candidate_id": ev.CandidateID, "benchmark_id": ev.BenchmarkID, "score": ev.Score,
		"passed": ev.Passed, "report": ev.Report, "evaluated_by": optional(ev.EvaluatedBy), "created_at": ts(ev.CreatedAt),
	})
}

// ---- releases ----

type releaseView struct {
	ID                 string  `json:"id"`
	SkillKey           string  `json:"skill_key"`
	CandidateID        string  `json:"candidate_id"`
	Version            int     `json:"version"`
	Stage              string  `json:"stage"`
	IsActive           bool    `json:"is_active"`
	ReleaseMode        string  `json:"release_mode"`
	PromotedBy         *string `json:"promoted_by"`
	PromotedAt         string  `json:"promoted_at"`
	RollbackOf         *string `json:"rollback_of"`
	AutoPromotedFrom   *string `json:"auto_promoted_from"`
	HealthWindowEndAt  *string `json:"health_window_end_at"`
	UpgradeOfReleaseID *string `json:"upgrade_of_release_id"`
	UpgradeReason      *string `json:"upgrade_reason"`
	ChangeSummary      *string `json:"change_summary"`
	deletionView
}

func viewRelease(r store.SkillRelease) releaseView {
	return releaseView{
		ID: r.ID, SkillKey: r.SkillKey, CandidateID: r.CandidateID, Version: r.Version, Stage: r.Stage,
		IsActive: r.IsActive, ReleaseMode: r.ReleaseMode, PromotedBy: optional(r.PromotedBy), PromotedAt: ts(r.PromotedAt),
		RollbackOf: r.RollbackOf, HealthWindowEndAt: tsPtr(r.HealthWindowEndAt), UpgradeOfReleaseID: r.UpgradeOfReleaseID,
		UpgradeReason: r.UpgradeReason, ChangeSummary: r.ChangeSummary, deletionView: deletionOf(r.Deleted),
	}
}

type promoteRequest struct {
	Stage              *string `json:"stage"`
	UpgradeOfReleaseID *string `json:"upgrade_of_release_id"`
	UpgradeReason      *string `json:"upgrade_reason"`
	ChangeSummary      *string `json:"change_summary"`
}

func (s *Server) promoteSkillCandidate(c *fiber.Ctx) error {
	var req promoteRequest
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	stage := store.StageCanary
	if req.Stage != nil {
		stage = *req.Stage
	}
	if !releaseStages[stage] {
		return apierr.Validation("invalid release stage %q (canary or stable)", stage).With(map[string]any{"field": "stage"})
	}
	id := c.Params("cid")
	now := s.svc.Now()
	end := now.Add(healthWindow)
	r, err := s.store.PromoteSkillCandidate(c.UserContext(), id, store.SkillRelease{
		ID: service.NewID("skr-"), Owner: owner(c), Stage: stage, ReleaseMode: "manual", PromotedBy: owner(c),
		PromotedAt: now, HealthWindowEndAt: &end, UpgradeOfReleaseID: req.UpgradeOfReleaseID,
		UpgradeReason: req.UpgradeReason, ChangeSummary: req.ChangeSummary,
	})
	if err != nil {
		var re *store.SkillRuleError
		if !errors.As(err, &re) && errors.Is(err, store.ErrNotFound) && req.UpgradeOfReleaseID != nil {
			// Either the candidate or the release to upgrade is missing.
			if _, cerr := s.store.GetSkillCandidate(c.UserContext(), owner(c), id); cerr == nil {
				return apierr.NotFound("skill release", *req.UpgradeOfReleaseID)
			}
		}
		return skillErr(err, "skill candidate", id)
	}
	return c.JSON(viewRelease(r))
}

func (s *Server) listSkillReleases(c *fiber.Ctx) error {
	f := store.SkillReleaseFilter{Owner: owner(c), SkillKey: c.Query("skill_key"), Stage: c.Query("stage")}
	if f.Stage != "" && !releaseStages[f.Stage] {
		return apierr.Validation("invalid release stage %q (canary or stable)", f.Stage).With(map[string]any{"field": "stage"})
	}
	active, err := queryBool(c, "active_only")
	if err != nil {
		return err
	}
	f.ActiveOnly = active != nil && *active
	if f.Limit, f.Offset, err = pageQuery(c); err != nil {
		return err
	}
	items, total, err := s.store.ListSkillReleases(c.UserContext(), f)
	if err != nil {
		return fmt.Errorf("list skill releases: %w", err)
	}
	out := make([]releaseView, len(items))
	for i, r := range items {
		out[i] = viewRelease(r)
	}
	return c.JSON(fiber.Map{"items": out, "total": total})
}

func (s *Server) rollbackSkillRelease(c *fiber.Ctx) error {
	id := c.Params("rid")
	r, err := s.store.RollbackSkillRelease(c.UserContext(), owner(c), id, service.NewID("skr-"), owner(c), s.svc.Now())
	if err != nil {
		return skillErr(err, "skill release", id)
	}
	return c.JSON(viewRelease(r))
}

func (s *Server) deleteSkillRelease(c *fiber.Ctx) error {
	d, err := s.deletion(c)
	if err != nil {
		return err
	}
	id := c.Params("rid")
	r, err := s.store.DeleteSkillRelease(c.UserContext(), owner(c), id, d)
	if err != nil {
		return skillErr(err, "skill release", id)
	}
	return c.JSON(deletedView(r.ID, r.Deleted))
}

type runStats struct {
	samples              int
	successRate, errRate float64
	p95                  int64
}

func statsOf(runs []store.SkillRun) runStats {
	st := runStats{samples: len(runs)}
	if len(runs) == 0 {
		return st
	}
	ok := 0
	d := make([]int64, len(runs))
	for i, r := range runs {
		if r.Success {
			ok++
		}
		d[i] = r.DurationMS
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	// Nearest rank: the smallest duration at or above 95 % of the runs.
	rank := (95*len(d) + 99) / 100
	st.p95 = d[rank-1]
	st.successRate = float64(ok) / float64(len(runs))
	st.errRate = 1 - st.successRate
	return st
}

// skillReleaseHealth compares a release's runs during its health window with
// the runs of the release it replaced, before it was replaced.
func (s *Server) skillReleaseHealth(c *fiber.Ctx) error {
	ctx, id := c.UserContext(), c.Params("rid")
	r, err := s.store.GetSkillRelease(ctx, owner(c), id)
	if err != nil {
		return skillErr(err, "skill release", id)
	}
	start := r.PromotedAt
	end := start.Add(healthWindow)
	if r.HealthWindowEndAt != nil {
		end = *r.HealthWindowEndAt
	}
	now := s.svc.Now()
	runs, err := s.store.ListSkillRuns(ctx, r.Owner, r.ID, start, end)
	if err != nil {
		return err
	}
	cur := statsOf(runs)
	var base runStats
	if prev, err := s.store.PreviousSkillRelease(ctx, r); err == nil {
		prevRuns, err := s.store.ListSkillRuns(ctx, r.Owner, prev.ID, prev.PromotedAt, r.PromotedAt)
		if err != nil {
			return err
		}
		base = statsOf(prevRuns)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	var drop float64
	multiplier := 1.0
	if cur.samples > 0 && base.samples > 0 {
		drop = max(0, base.successRate-cur.successRate)
		multiplier = cur.errRate / max(base.errRate, healthErrorFloor)
	}
	reasons := []string{}
	if cur.samples >= healthMinSamples && base.samples >= healthMinSamples {
		if drop > healthMaxSuccessDrop {
			reasons = append(reasons, fmt.Sprintf("success rate dropped by %.2f (max %.2f)", drop, healthMaxSuccessDrop))
		}
		if multiplier > healthMaxErrorMultiple {
			reasons = append(reasons, fmt.Sprintf("error rate is %.2fx the baseline (max %.2fx)", multiplier, healthMaxErrorMultiple))
		}
	}
	return c.JSON(fiber.Map{
		"release_id": r.ID, "skill_key": r.SkillKey, "stage": r.Stage,
		"window_start_at": ts(start), "window_end_at": ts(end), "window_complete": !now.Before(end),
		"samples": cur.samples, "success_rate": cur.successRate, "error_rate": cur.errRate, "p95_duration": cur.p95,
		"baseline_success_rate": base.successRate, "baseline_error_rate": base.errRate, "baseline_samples": base.samples,
		"success_drop": drop, "error_rate_multiplier": multiplier,
		"healthy": len(reasons) == 0, "should_rollback": len(reasons) > 0, "rollback_reasons": reasons,
		"thresholds": fiber.Map{
			"min_samples": healthMinSamples, "max_success_drop": healthMaxSuccessDrop,
			"max_error_rate_multiplier": healthMaxErrorMultiple, "window_hours": healthWindow.Hours(),
		},
	})
}

// ---- browser skill replay ----

// payloadCommands reads the browser commands of a payload: {commands:[..]},
// a trace's {steps:[{cmd}]}, or a bare array of commands.
func payloadCommands(data []byte) []string {
	var doc struct {
		Commands []string `json:"commands"`
		Steps    []struct {
			Cmd string `json:"cmd"`
		} `json:"steps"`
	}
	var cmds []string
	if err := json.Unmarshal(data, &doc); err == nil {
		cmds = doc.Commands
		if len(cmds) == 0 {
			for _, st := range doc.Steps {
				cmds = append(cmds, st.Cmd)
			}
		}
	} else if err := json.Unmarshal(data, &cmds); err != nil {
		return nil
	}
	out := cmds[:0]
	for _, c := range cmds {
		if strings.TrimSpace(c) != "" {
			out = append(out, c)
		}
	}
	return out
}

type skillRunRequest struct {
	Timeout      *int  `json:"timeout"`
	StopOnError  *bool `json:"stop_on_error"`
	IncludeTrace bool  `json:"include_trace"`
	execMeta
}

// runBrowserSkill replays the active release of a skill key (there is one
// at most: promotion and rollback keep it so) as one browser batch, recorded in history like exec_batch and
// counted for the release's health.
func (s *Server) runBrowserSkill(c *fiber.Ctx) error {
	var req skillRunRequest
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	timeout, err := intRange("timeout", req.Timeout, 60, 1, 600)
	if err != nil {
		return err
	}
	stop := true
	if req.StopOnError != nil {
		stop = *req.StopOnError
	}
	// Refuse a missing sandbox, capability or release before any compute starts.
	if _, err := s.capableSandbox(c, profiles.CapBrowser); err != nil {
		return err
	}
	ctx, key := c.UserContext(), c.Params("key")
	rel, err := s.store.ActiveSkillRelease(ctx, owner(c), key)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(http.StatusNotFound, apierr.CodeNotFound, "No active release found for skill_key: %s", key)
	} else if err != nil {
		return err
	}
	cand, err := s.store.GetSkillCandidate(ctx, owner(c), rel.CandidateID)
	if err != nil {
		return skillErr(err, "skill candidate", rel.CandidateID)
	}
	if cand.PayloadRef == nil {
		return apierr.Validation("release %s of skill %q has no payload to replay", rel.ID, key)
	}
	blob, err := s.ownedBlob(c, "payload_ref", *cand.PayloadRef)
	if err != nil {
		return err
	}
	cmds := payloadCommands(blob.Data)
	if len(cmds) == 0 {
		return apierr.Validation("payload %s of release %s holds no browser commands", *cand.PayloadRef, rel.ID)
	}

	run, err := s.runBatch(c, cmds, timeout, stop, req.execMeta, browserMeta{IncludeTrace: req.IncludeTrace},
		map[string]any{"skill_key": key, "release_id": rel.ID})
	if err != nil {
		return err
	}
	if err := s.store.RecordSkillRun(ctx, store.SkillRun{
		Owner: rel.Owner, ReleaseID: rel.ID, Success: run.res.Success, DurationMS: run.elapsed.Milliseconds(), CreatedAt: s.svc.Now(),
	}); err != nil {
		s.log.Warn("record skill run", "release_id", rel.ID, "error", err)
	}
	body := run.fields()
	body["skill_key"] = key
	body["release_id"] = rel.ID
	return c.JSON(body)
}
