package store

import (
	"time"
)

// IdemRecord is the stored outcome of an idempotent request, scoped to
// (Owner, Key). Pending means its first use is still executing; only
// successes are ever completed.
type IdemRecord struct {
	Owner, Key, Fingerprint string
	Pending                 bool
	Status                  int
	Body                    []byte
	CreatedAt, ExpiresAt    time.Time
}
