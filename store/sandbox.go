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
	// Intent is a stop or delete the owner asked for and the gateway has
	// not finished yet (IntentStop, IntentDelete; "" for none), recorded
	// before anything is done so it survives outages and restarts.
	Intent   string
	IntentAt *time.Time
}

// Intents a sandbox can carry (Sandbox.Intent).
const (
	// IntentStop: release the sandbox's session; the sandbox stays.
	IntentStop = "stop"
	// IntentDelete: release everything and remove the sandbox.
	IntentDelete = "delete"
)

// PoolOwner owns the cargos a pool keeps made ahead of demand. No API key
// or X-Owner header can carry it (it starts with a newline), so no user sees or
// touches a pooled cargo before it is claimed.
const PoolOwner = "\ncargo-pool"

// SandboxFilter selects a page of a user's sandboxes. Owner "" lists every
// owner's (operator use).
type SandboxFilter struct {
	Owner  string
	Limit  int
	Cursor string
}
