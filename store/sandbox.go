package store

import (
	"time"
)

// Sandbox is the stored fact of a sandbox. Its status is not here: the
// gateway derives it from SessionID and the live session.
type Sandbox struct {
	ID, Owner, ProfileID, CargoID string
	// SessionID is the current session, "" for none.
	SessionID string
	// TTLSeconds is the requested lifetime, 0 for no expiry.
	TTLSeconds    int64
	CreatedAt     time.Time
	ExpiresAt     *time.Time
	IdleExpiresAt *time.Time
	// Warm marks an unclaimed warm-pool member: never listed to users, never
	// idle-reaped.
	Warm bool
}

// SandboxFilter selects a page of a user's sandboxes. Owner "" lists every
// owner's (operator use).
type SandboxFilter struct {
	Owner  string
	Limit  int
	Cursor string
}
