package gateway_test

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func (h *harness) countSandboxes(opts ...opt) int {
	h.t.Helper()
	return len(h.must(200, "GET", "/v1/sandboxes?limit=200", nil, opts...)["items"].([]any))
}

func TestIdempotentCreateReplaysByteForByte(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	first := h.do("POST", "/v1/sandboxes", "{}", idemKey("create-1"))
	if first.Status != http.StatusCreated {
		t.Fatalf("first create: %d %s", first.Status, first.Body)
	}
	if first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("a first use must not be marked as replayed")
	}
	id := str(first.json(t)["id"])
	// Let state move on (the warm-up makes it ready): the replay still
	// returns the stored bytes, not a fresh view.
	h.waitFor("warm-up", 30*time.Second, func() bool { return h.sessions()[id] != "" })

	// {} and the same request with the defaults spelled out (or null) are one request.
	for _, body := range []string{
		"{}", "", `{"profile":"python-default","ttl":0}`, `{"ttl":null,"cargo_id":null}`, ` { "ttl" : 0 } `,
	} {
		r := h.do("POST", "/v1/sandboxes", body, idemKey("create-1"))
		if r.Status != first.Status || !bytes.Equal(r.Body, first.Body) {
			t.Fatalf("replay of %q: %d %s, want %d %s", body, r.Status, r.Body, first.Status, first.Body)
		}
		if r.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay of %q not marked", body)
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("replay content type %q", ct)
		}
	}
	if n := h.countSandboxes(); n != 1 {
		t.Fatalf("%d sandboxes after replays, want 1", n)
	}

	// Same key, different request: 409, nothing created.
	h.wantErr(409, "conflict", "POST", "/v1/sandboxes", map[string]any{"ttl": 60}, idemKey("create-1"))
	// Bad keys: 409 and nothing created.
	h.wantErr(409, "conflict", "POST", "/v1/sandboxes", map[string]any{}, idemKey("has space"))
	h.wantErr(409, "conflict", "POST", "/v1/sandboxes", map[string]any{}, idemKey(strings.Repeat("k", 129)))
	h.wantErr(409, "conflict", "POST", "/v1/sandboxes", map[string]any{}, idemKey("semi;colon"))
	if n := h.countSandboxes(); n != 1 {
		t.Fatalf("%d sandboxes after refused requests, want 1", n)
	}
	// 128 characters of the allowed alphabet is a good key.
	long := strings.Repeat("aZ0_-", 25) + "xyz"
	h.must(201, "POST", "/v1/sandboxes", map[string]any{}, idemKey(long))

	// Scope is (owner, key): another owner's use of the key is its own.
	other := h.must(201, "POST", "/v1/sandboxes", "{}", idemKey("create-1"), owner("bob"))
	if other["id"] == id {
		t.Fatal("another owner got the first owner's replay")
	}

	// After the idempotency TTL (1 h) the key is fresh again.
	h.clk.Advance(61 * time.Minute)
	again := h.must(201, "POST", "/v1/sandboxes", "{}", idemKey("create-1"))
	if again["id"] == id {
		t.Fatal("an expired key still replayed")
	}
}

func TestIdempotencyStoresOnlySuccesses(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.wantErr(400, "validation_error", "POST", "/v1/sandboxes", map[string]any{"profile": "nope"}, idemKey("k1"))
	// The failure was not stored: the same key executes a different request.
	ok := h.must(201, "POST", "/v1/sandboxes", map[string]any{}, idemKey("k1"))
	// ...and now the failing request is a different request for that key.
	h.wantErr(409, "conflict", "POST", "/v1/sandboxes", map[string]any{"profile": "nope"}, idemKey("k1"))
	if n := h.countSandboxes(); n != 1 {
		t.Fatalf("%d sandboxes, want 1 (%v)", n, ok["id"])
	}
}

func TestIdempotentConcurrentFirstUse(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	const n = 8
	var wg sync.WaitGroup
	results := make([]resp, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = h.do("POST", "/v1/sandboxes", `{"ttl":300}`, idemKey("race"))
		}()
	}
	close(start)
	wg.Wait()
	for i, r := range results {
		if r.Status != http.StatusCreated || !bytes.Equal(r.Body, results[0].Body) {
			t.Fatalf("request %d: %d %s, want the same 201 as request 0: %s", i, r.Status, r.Body, results[0].Body)
		}
	}
	if c := h.countSandboxes(); c != 1 {
		t.Fatalf("%d sandboxes from %d concurrent first uses of one key, want 1", c, n)
	}
	cargos := h.must(200, "GET", "/v1/cargos?managed=true", nil)["items"].([]any)
	if len(cargos) != 1 {
		t.Fatalf("%d managed cargos, want 1", len(cargos))
	}
}

func TestIdempotentCargoAndExtendTTL(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	// Cargo: an absent body and the defaults spelled out are one request.
	c1 := h.do("POST", "/v1/cargos", nil, idemKey("cargo"))
	if c1.Status != 201 {
		t.Fatalf("create cargo: %d %s", c1.Status, c1.Body)
	}
	c2 := h.do("POST", "/v1/cargos", `{"size_limit_mb":1024}`, idemKey("cargo"))
	if c2.Status != 201 || !bytes.Equal(c1.Body, c2.Body) {
		t.Fatalf("cargo replay %d %s, want %s", c2.Status, c2.Body, c1.Body)
	}
	h.wantErr(409, "conflict", "POST", "/v1/cargos", map[string]any{"size_limit_mb": 10}, idemKey("cargo"))
	if items := h.must(200, "GET", "/v1/cargos", nil)["items"].([]any); len(items) != 1 {
		t.Fatalf("%d external cargos, want 1", len(items))
	}

	// extend_ttl: a replay does not extend twice.
	now := h.clk.Now()
	id := str(h.create(map[string]any{"ttl": 100})["id"])
	e1 := h.do("POST", sbPath(id, "/extend_ttl"), `{"extend_by":50}`, idemKey("ext"))
	if e1.Status != 200 {
		t.Fatalf("extend: %d %s", e1.Status, e1.Body)
	}
	h.clk.Advance(10 * time.Second)
	e2 := h.do("POST", sbPath(id, "/extend_ttl"), `{"extend_by":50}`, idemKey("ext"))
	if e2.Status != 200 || !bytes.Equal(e1.Body, e2.Body) {
		t.Fatalf("extend replay %d %s, want %s", e2.Status, e2.Body, e1.Body)
	}
	if got := parseTS(t, h.must(200, "GET", sbPath(id), nil)["expires_at"]); !got.Equal(now.Add(150 * time.Second)) {
		t.Fatalf("expires_at %v after a replayed extend, want %v", got, now.Add(150*time.Second))
	}
	// The key is bound to the path: the same body on another sandbox conflicts.
	id2 := str(h.create(map[string]any{"ttl": 100})["id"])
	h.wantErr(409, "conflict", "POST", sbPath(id2, "/extend_ttl"), map[string]any{"extend_by": 50}, idemKey("ext"))
}
