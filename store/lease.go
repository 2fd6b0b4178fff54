package store

import (
	"context"
	"time"
)

// Leases are named, expiring claims that several gateways on one database
// use to agree on who does what: the leader (GC, warm pools, reconcile)
// and who runs a sandbox's cold start. A holder that stops renewing loses
// its lease at expiry. Times come from the caller's clock, so gateways'
// clocks must agree to well within a lease's TTL.
type Leases interface {
	// AcquireLease takes the lease name for holder until now+ttl, or
	// extends it when holder already has it. ok=false when another holder's
	// lease is still unexpired at now.
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (ok bool, err error)
	// ReleaseLease gives the lease up if holder has it; otherwise nothing
	// happens.
	ReleaseLease(ctx context.Context, name, holder string) error
	// GetLease returns the lease's holder and expiry; ErrNotFound when
	// nobody ever held it or it was released.
	GetLease(ctx context.Context, name string) (holder string, expiresAt time.Time, err error)
}
