package gateway_test

import (
	"net/http"
	"testing"

	"github.com/bay-sandbox/bay/gateway"
)

const (
	aliceKey = "alice-key-0123456789"
	bobKey   = "bob-key-0123456789"
	rootKey  = "root-key-0123456789"
)

func bearer(k string) opt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+k) }
}

// TestKeysBoundToOwners: a key acts for its owner only; X-Owner is
// refused for it and honoured for admin keys; admin routes need an admin
// key; keys can be replaced without a restart.
func TestKeysBoundToOwners(t *testing.T) {
	keys := []gateway.Key{
		{Name: "alice", Hash: gateway.HashKey(aliceKey), Owner: "alice"},
		{Name: "bob", Hash: gateway.HashKey(bobKey), Owner: "bob"},
		{Name: "root", Hash: gateway.HashKey(rootKey), Owner: "ops", Admin: true},
	}
	h := newHarness(t, harnessOpts{gateway: func(c *gateway.Config) { c.Keys = keys }})
	sb := h.create(map[string]any{"ttl": 600}, bearer(aliceKey))
	id := str(sb["id"])

	// Bob never reaches Alice's sandbox, with or without X-Owner.
	h.wantErr(404, "not_found", "GET", sbPath(id), nil, bearer(bobKey))
	h.wantErr(404, "not_found", "POST", sbPath(id, "/python/exec"), map[string]any{"code": "1"}, bearer(bobKey))
	h.wantErr(403, "forbidden", "GET", sbPath(id), nil, bearer(bobKey), owner("alice"))
	h.wantErr(403, "forbidden", "DELETE", sbPath(id), nil, bearer(bobKey), owner("alice"))
	if n := len(h.must(200, "GET", "/v1/sandboxes", nil, bearer(bobKey))["items"].([]any)); n != 0 {
		t.Fatalf("bob lists %d sandboxes", n)
	}
	// Alice may name herself.
	h.must(200, "GET", sbPath(id), nil, bearer(aliceKey), owner("alice"))
	// Lower-case scheme is accepted.
	h.must(200, "GET", sbPath(id), nil, func(r *http.Request) { r.Header.Set("Authorization", "bearer "+aliceKey) })
	// An admin key acts as any owner; without X-Owner, as its own.
	h.must(200, "GET", sbPath(id), nil, bearer(rootKey), owner("alice"))
	h.wantErr(404, "not_found", "GET", sbPath(id), nil, bearer(rootKey))
	// The legacy key (api_keys) is an admin key of "default".
	h.must(200, "GET", sbPath(id), nil, owner("alice"))

	// Admin routes.
	h.wantErr(403, "forbidden", "GET", "/v1/admin/gc/status", nil, bearer(aliceKey))
	h.must(200, "GET", "/v1/admin/gc/status", nil, bearer(rootKey))
	h.must(200, "GET", "/v1/admin/gc/status", nil)

	// Revoke Bob, keep Alice: no restart.
	h.srv.SetKeys(keys[:1])
	h.wantErr(401, "unauthorized", "GET", "/v1/sandboxes", nil, bearer(bobKey))
	h.must(200, "GET", sbPath(id), nil, bearer(aliceKey))
	h.wantErr(401, "unauthorized", "GET", "/v1/admin/gc/status", nil, bearer(rootKey))
}
