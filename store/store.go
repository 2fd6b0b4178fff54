// Package store defines Bay's state: sandboxes, cargos, execution history,
// blobs, idempotency records, skills and a small key/value table, and the
// Store interface a database backend implements. The backends live in
// sub-packages (store/sqlite, the embedded default; store/postgres, for
// several gateways sharing one database); store/storetest is the conformance
// suite that pins their behaviour.
//
// The store keeps facts only. Status (running, idle, degraded, ...) is never
// stored: the gateway computes it from a sandbox row and its live session, so
// nothing here can go stale when a process dies.
package store

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrNotFound means the row does not exist or belongs to another owner;
	// callers must not be able to tell the two apart.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a row with the same id (or key) already exists, or
	// a state precondition did not hold.
	ErrConflict = errors.New("conflict")
	// ErrInvalidCursor is wrapped by list calls given a cursor they did not
	// produce.
	ErrInvalidCursor = errors.New("invalid cursor")
)

// Store is everything a backend provides. Consumers should declare the few
// methods they call as their own small interface; this one is for wiring
// (cmd/bay picks a backend) and for the conformance suite.
type Store interface {
	Sandboxes
	Cargos
	Executions
	Blobs
	Idempotency
	Skills
	Meta
	Leases
	// SchemaVersion returns the highest applied migration.
	SchemaVersion(ctx context.Context) (int, error)
	// Close releases the database handles.
	Close() error
}

// Sandboxes are the sandbox rows, their tombstones and the warm pool.
type Sandboxes interface {
	CreateSandbox(ctx context.Context, sb Sandbox) error
	CreateSandboxWithCargo(ctx context.Context, sb Sandbox, c Cargo) error
	GetSandbox(ctx context.Context, owner, id string) (Sandbox, error)
	ListSandboxes(ctx context.Context, f SandboxFilter) ([]Sandbox, string, error)
	CountSandboxes(ctx context.Context, owner string) (int, error)
	DeleteSandbox(ctx context.Context, id string) error
	SetSession(ctx context.Context, id, sessionID string) error
	SetIdleExpiry(ctx context.Context, id string, t *time.Time) error
	SetExpiry(ctx context.Context, id string, t *time.Time) error
	ClaimWarm(ctx context.Context, profileID, owner string, now time.Time, ttlSeconds int64, expiresAt *time.Time) (Sandbox, bool, error)
	ListWarm(ctx context.Context, profileID string) ([]Sandbox, error)
	RetireWarm(ctx context.Context, id string) (bool, error)
	ListIdleExpired(ctx context.Context, now time.Time) ([]Sandbox, error)
	ListExpired(ctx context.Context, now time.Time) ([]Sandbox, error)
	ListWithSession(ctx context.Context) ([]Sandbox, error)
	SandboxTombstoned(ctx context.Context, owner, id string) (bool, error)
	PurgeTombstones(ctx context.Context, before time.Time) (int, error)
	// SetIntent records a stop or delete before it is carried out; a
	// delete replaces a stop, never the reverse. ErrNotFound if gone.
	SetIntent(ctx context.Context, id, intent string, at time.Time) error
	// ClearIntent drops a carried-out intent if it is still the recorded one.
	ClearIntent(ctx context.Context, id, intent string) error
	// ListIntents returns the sandboxes with an intent pending, oldest first.
	ListIntents(ctx context.Context) ([]Sandbox, error)
}

// Cargos are the workspace rows.
type Cargos interface {
	CreateCargo(ctx context.Context, c Cargo) error
	GetCargo(ctx context.Context, owner, id string) (Cargo, error)
	ListCargos(ctx context.Context, f CargoFilter) ([]Cargo, string, error)
	DeleteCargo(ctx context.Context, id string) error
	TouchCargo(ctx context.Context, id string, t time.Time) error
	SandboxesUsingCargo(ctx context.Context, cargoID string) ([]string, error)
	ListOrphanCargos(ctx context.Context) ([]Cargo, error)
	ListOrphanCargosBefore(ctx context.Context, before time.Time) ([]Cargo, error)
	// ClaimPooledCargo hands the oldest pooled cargo (owner PoolOwner) of
	// backend to sandboxID as owner's managed cargo; ok=false when none.
	ClaimPooledCargo(ctx context.Context, backend, owner, sandboxID string, now time.Time) (Cargo, bool, error)
	// CountPooledCargos counts the unclaimed pooled cargos of backend.
	CountPooledCargos(ctx context.Context, backend string) (int, error)
}

// Executions is the capability-call history.
type Executions interface {
	CreateExecution(ctx context.Context, e Execution) error
	GetExecution(ctx context.Context, owner, sandboxID, id string) (Execution, error)
	ListExecutions(ctx context.Context, f ExecutionFilter) ([]Execution, int, error)
	LastExecution(ctx context.Context, owner, sandboxID, execType string) (Execution, error)
	UpdateExecution(ctx context.Context, owner, sandboxID, id string, p ExecutionPatch) (Execution, error)
	DeleteExecutions(ctx context.Context, sandboxID string) error
}

// Blobs are opaque owner-scoped payloads.
type Blobs interface {
	PutBlob(ctx context.Context, b Blob) error
	GetBlob(ctx context.Context, owner, id string) (Blob, error)
	DeleteBlob(ctx context.Context, id string) error
}

// Idempotency keeps the outcomes of idempotent requests.
type Idempotency interface {
	BeginIdem(ctx context.Context, owner, key, fingerprint string, now time.Time, ttl time.Duration) (IdemRecord, bool, error)
	CompleteIdem(ctx context.Context, owner, key string, status int, body []byte) error
	AbandonIdem(ctx context.Context, owner, key string) error
	PurgeIdem(ctx context.Context, now time.Time) (int, error)
	GetIdem(ctx context.Context, owner, key string) (IdemRecord, error)
}

// Skills are skill candidates, evaluations, releases and runs.
type Skills interface {
	CreateSkillCandidate(ctx context.Context, c SkillCandidate) error
	GetSkillCandidate(ctx context.Context, owner, id string) (SkillCandidate, error)
	GetSkillRelease(ctx context.Context, owner, id string) (SkillRelease, error)
	ListSkillCandidates(ctx context.Context, f SkillCandidateFilter) ([]SkillCandidate, int, error)
	ListSkillReleases(ctx context.Context, f SkillReleaseFilter) ([]SkillRelease, int, error)
	EvaluateSkillCandidate(ctx context.Context, e SkillEvaluation) (SkillEvaluation, error)
	PromoteSkillCandidate(ctx context.Context, candidateID string, r SkillRelease) (SkillRelease, error)
	RollbackSkillRelease(ctx context.Context, owner, id, newID, by string, now time.Time) (SkillRelease, error)
	DeleteSkillCandidate(ctx context.Context, owner, id string, d Deletion) (SkillCandidate, error)
	DeleteSkillRelease(ctx context.Context, owner, id string, d Deletion) (SkillRelease, error)
	ActiveSkillRelease(ctx context.Context, owner, skillKey string) (SkillRelease, error)
	PreviousSkillRelease(ctx context.Context, r SkillRelease) (SkillRelease, error)
	RecordSkillRun(ctx context.Context, r SkillRun) error
	ListSkillRuns(ctx context.Context, owner, releaseID string, from, to time.Time) ([]SkillRun, error)
}

// Meta is a small key/value table (instance id, API-key hashes).
type Meta interface {
	GetMeta(ctx context.Context, key string) (string, bool, error)
	SetMeta(ctx context.Context, key, value string) error
	// InitMeta stores value unless key exists and returns the stored value
	// (the first writer's when several race).
	InitMeta(ctx context.Context, key, value string) (string, error)
}
