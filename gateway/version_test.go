package gateway_test

import (
	"regexp"
	"testing"
)

// versionShape is what Shipyard Neo's clients accept.
var versionShape = regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$`)

// TestVersionsHaveOneShape: the gateway's /health and every container's
// version (Ship's own /health) are plain semver with at most one hyphen and
// no build metadata, for an unstamped test build too.
func TestVersionsHaveOneShape(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	if v := str(h.must(200, "GET", "/health", nil)["version"]); !versionShape.MatchString(v) {
		t.Fatalf("gateway version %q", v)
	}
	id := str(h.create(nil)["id"])
	h.python(id, "1")
	cs := h.must(200, "GET", "/v1/sandboxes/"+id, nil)["containers"].([]any)
	if len(cs) == 0 {
		t.Fatal("no containers")
	}
	for _, c := range cs {
		v := str(c.(map[string]any)["version"])
		if !versionShape.MatchString(v) {
			t.Fatalf("container version %q", v)
		}
	}
}
