package store

import (
	"time"
)

// Cargo is a stored workspace. A managed cargo belongs to one sandbox
// (ManagedBySandboxID) and is deleted with it; an external one is created
// and deleted by the user.
type Cargo struct {
	ID, Owner          string
	Managed            bool
	ManagedBySandboxID string // "" for external
	// Backend names the storage kind, Locator where the allocator put it.
	Backend, Locator          string
	SizeLimitMB               int
	CreatedAt, LastAccessedAt time.Time
}

// CargoFilter selects a page of cargos. Owner "" lists every owner's.
// Managed nil lists both kinds; the API default (external only) is &false.
type CargoFilter struct {
	Owner   string
	Managed *bool
	Limit   int
	Cursor  string
}
