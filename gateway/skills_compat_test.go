package gateway_test

import (
	"net/http"
	"testing"

	"github.com/bay-sandbox/bay/profiles"
)

// TestSkillReleasesFollowUpstream pins the release rules Shipyard Neo's own
// suite relies on: one active release per skill key whatever its stage, a
// rollback goes to the previous version (whatever its stage) and marks the
// rolled-back candidate, a replay without an active release is 404 with
// upstream's message, and a payload Bay cannot read is refused at run time.
func TestSkillReleasesFollowUpstream(t *testing.T) {
	h := newHarness(t, harnessOpts{browser: true})
	sb := str(h.create(map[string]any{"profile": profiles.BrowserPython})["id"])
	e := str(h.python(sb, "1")["execution_id"])

	newPassing := func(key, payload string) string {
		body := map[string]any{"skill_key": key, "source_execution_ids": []string{e}}
		if payload != "" {
			body["payload_ref"] = payload
		}
		id := str(h.must(http.StatusCreated, "POST", "/v1/skills/candidates", body)["id"])
		h.must(200, "POST", "/v1/skills/candidates/"+id+"/evaluate", map[string]any{"passed": true})
		return id
	}
	run := "/v1/sandboxes/" + sb + "/browser/skills/flow/run"

	// No release at all.
	if e := h.wantErr(404, "not_found", "POST", run, nil); e["error"].(map[string]any)["message"] != "No active release found for skill_key: flow" {
		t.Fatalf("run without a release: %v", e)
	}

	stableC := newPassing("flow", "s3://bucket/flow.json")
	stable := h.must(200, "POST", "/v1/skills/candidates/"+stableC+"/promote", map[string]any{"stage": "stable"})
	canaryC := newPassing("flow", "")
	canary := h.must(200, "POST", "/v1/skills/candidates/"+canaryC+"/promote", map[string]any{"stage": "canary"})

	// The canary replaced the stable release: one active release per key.
	act := h.must(200, "GET", "/v1/skills/releases?skill_key=flow&active_only=true", nil)
	if items := itemsOf(t, act); num(act["total"]) != 1 || items[0]["id"] != canary["id"] {
		t.Fatalf("active releases after the canary: %v", act)
	}

	// The first canary rolls back to the stable release before it.
	rb := h.must(200, "POST", "/v1/skills/releases/"+str(canary["id"])+"/rollback", nil)
	if rb["rollback_of"] != canary["id"] || rb["candidate_id"] != stableC || rb["stage"] != "stable" || rb["is_active"] != true || num(rb["version"]) != 3 {
		t.Fatalf("rollback of the first canary: %v (stable was %v)", rb, stable["id"])
	}
	if got := h.must(200, "GET", "/v1/skills/candidates/"+canaryC, nil); got["status"] != "rolled_back" {
		t.Fatalf("rolled-back candidate: %v", got)
	}
	if got := h.must(200, "GET", "/v1/skills/releases/"+str(canary["id"])+"/health", nil); got["release_id"] != canary["id"] {
		t.Fatalf("health of the rolled-back release: %v", got)
	}

	// The active release's payload lives outside Bay: refused at run time.
	if e := h.wantErr(400, "validation_error", "POST", run, nil); e["error"].(map[string]any)["message"] != "Unsupported payload_ref: s3://bucket/flow.json" {
		t.Fatalf("run of an external payload: %v", e)
	}

	// Deleting the active release leaves none.
	h.must(200, "DELETE", "/v1/skills/releases/"+str(rb["id"]), nil)
	h.wantErr(404, "not_found", "POST", run, nil)
}
