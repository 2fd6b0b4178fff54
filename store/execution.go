package store

import (
	"time"
)

// Execution is one history entry: a capability call on a sandbox.
type Execution struct {
	ID, SandboxID, Owner string
	// SessionID is "" when unknown (null in the API).
	SessionID string
	// ExecType is python, shell, browser or browser_batch.
	ExecType        string
	Code            string
	Success         bool
	ExecutionTimeMS int64
	// Nil pointers are nulls; an empty string is stored as given.
	Output, Error, PayloadRef, Description, Tags, Notes *string
	CreatedAt                                           time.Time
	// LearnEnabled is the learn flag of a browser exec or batch. As in
	// Shipyard Neo, such an entry starts with LearnStatus "pending" (nil
	// otherwise); LearnError and LearnProcessedAt are set by whatever
	// processes it.
	LearnEnabled     bool
	LearnStatus      *string
	LearnError       *string
	LearnProcessedAt *time.Time
}

// LearnPending is the learn_status of an entry recorded with learn=true.
const LearnPending = "pending"

// ExecutionFilter selects history entries. Owner and SandboxID "" match
// any; Tags match when the stored tags contain any of them, case-insensitive
// (empty strings are ignored). Limit <= 0 means 100.
type ExecutionFilter struct {
	Owner, SandboxID                      string
	ExecType                              string
	SuccessOnly, HasNotes, HasDescription bool
	Tags                                  []string
	Limit, Offset                         int
}

// ExecutionPatch changes the user-editable fields; nil leaves a field
// unchanged.
type ExecutionPatch struct {
	Description, Tags, Notes *string
}
