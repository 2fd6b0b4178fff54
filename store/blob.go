package store

import (
	"time"
)

// Blob is an opaque payload kept for later retrieval (browser traces, large
// outputs), addressed by id and scoped to an owner.
type Blob struct {
	ID, Owner, Kind string
	Data            []byte
	CreatedAt       time.Time
}
