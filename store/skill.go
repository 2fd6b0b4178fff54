package store

import (
	"encoding/json"
	"time"
)

// Skill candidate statuses and release stages (API.md §1.8, as the Shipyard
// Neo SDK names them).
const (
	SkillDraft          = "draft"
	SkillEvaluating     = "evaluating"
	SkillPromotedCanary = "promoted_canary"
	SkillPromotedStable = "promoted_stable"
	SkillRejected       = "rejected"
	SkillRolledBack     = "rolled_back"

	StageCanary = "canary"
	StageStable = "stable"
)

// SkillRuleError is a refused skill lifecycle transition (promote without a
// passing evaluation, rollback without a previous release, ...). It is an
// ErrConflict; Reason is meant for the client.
type SkillRuleError struct{ Reason string }

func (e *SkillRuleError) Error() string { return e.Reason }

// Unwrap makes a rule error an ErrConflict.
func (e *SkillRuleError) Unwrap() error { return ErrConflict }

// Deletion is the soft-delete stamp of a candidate or release.
type Deletion struct {
	At         time.Time
	By, Reason *string
}

// SkillCandidate is a proposed skill built from executions.
type SkillCandidate struct {
	ID, Owner, SkillKey           string
	ScenarioKey, PayloadRef       *string
	SkillType                     string
	Summary, UsageNotes           *string
	Preconditions, Postconditions json.RawMessage // nil = null
	SourceExecutionIDs            []string
	Status                        string
	LatestScore                   *float64
	LatestPass                    *bool
	LastEvaluatedAt               *time.Time
	PromotionReleaseID            *string
	CreatedBy                     string
	CreatedAt, UpdatedAt          time.Time
	Deleted                       *Deletion
}

// SkillEvaluation is one evaluation of a candidate.
type SkillEvaluation struct {
	ID, Owner, CandidateID string
	BenchmarkID            *string
	Score                  *float64
	Passed                 bool
	Report                 *string
	EvaluatedBy            string
	CreatedAt              time.Time
}

// SkillRelease is a versioned, promoted candidate. At most one release per
// (owner, skill key, stage) is active.
type SkillRelease struct {
	ID, Owner, SkillKey, CandidateID string
	Version                          int
	Stage                            string
	IsActive                         bool
	ReleaseMode                      string
	PromotedBy                       string
	PromotedAt                       time.Time
	RollbackOf                       *string
	HealthWindowEndAt                *time.Time
	UpgradeOfReleaseID               *string
	UpgradeReason, ChangeSummary     *string
	Deleted                          *Deletion
}

// SkillRun is one replay of a release, the input of release health.
type SkillRun struct {
	Owner, ReleaseID string
	Success          bool
	DurationMS       int64
	CreatedAt        time.Time
}

// SkillCandidateFilter selects candidates; empty fields match any. Limit <=
// 0 means 100.
type SkillCandidateFilter struct {
	Owner, Status, SkillKey string
	Limit, Offset           int
}

// SkillReleaseFilter selects releases; empty fields match any.
type SkillReleaseFilter struct {
	Owner, SkillKey, Stage string
	ActiveOnly             bool
	Limit, Offset          int
}
