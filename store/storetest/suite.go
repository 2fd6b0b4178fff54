// Package storetest is the conformance suite of store.Store: every backend
// runs it, so the behaviour the gateway relies on is pinned in one place.
//
//	func TestConformance(t *testing.T) { storetest.Run(t, newDB) }
package storetest

import (
	"testing"
	"time"

	"github.com/bay-sandbox/bay/store"
)

// PendingLease is the idempotency pending lease (store.Idempotency) the
// backend must give the stores it opens for the suite.
const PendingLease = 2 * time.Minute

// NewDB creates an empty database for one test and returns how to open a
// handle on it. Each call of open is a new handle, standing in for another
// gateway process on the same database; the backend closes the handles and
// drops the database when the test ends.
type NewDB func(t *testing.T) (open func() store.Store)

// Run runs the whole suite against a backend, one subtest per behaviour.
func Run(t *testing.T, newDB NewDB) {
	tests := []struct {
		name string
		fn   func(*testing.T, NewDB)
	}{
		{"SandboxCRUD", testSandboxCRUD},
		{"OwnerIsolation", testOwnerIsolation},
		{"ListSandboxesPagination", testListSandboxesPagination},
		{"ClaimWarm", testClaimWarm},
		{"GCListings", testGCListings},
		{"Cargos", testCargos},
		{"BlobsAndMeta", testBlobsAndMeta},
		{"DeleteLeavesTombstoneForOwnerOnly", testDeleteLeavesTombstoneForOwnerOnly},
		{"RetireWarmLosesToClaim", testRetireWarmLosesToClaim},
		{"Executions", testExecutions},
		{"Idempotency", testIdempotency},
		{"BeginIdemConcurrent", testBeginIdemConcurrent},
		{"SkillCandidatesListAndEvaluate", testSkillCandidatesListAndEvaluate},
		{"SkillPromoteRollbackDelete", testSkillPromoteRollbackDelete},
		{"SkillRuns", testSkillRuns},
		{"Leases", testLeases},
		{"Intents", testIntents},
		{"CargoPool", testCargoPool},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newDB) })
	}
}
