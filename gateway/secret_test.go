package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/runtimes/ship"
	"github.com/bay-sandbox/bay/runtimes/wire"
)

// TestRuntimeSecret: each session's Ship answers only calls carrying that
// session's secret. Calls straight to the Ship without it, with a wrong one
// or with another session's are refused (401) and run nothing, while the
// gateway's own calls work; the secret shows up in no API answer and no log.
func TestRuntimeSecret(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	a := h.create(nil)["id"].(string)
	b := h.create(nil)["id"].(string)
	h.python(a, "x = 1")
	h.python(b, "y = 2")
	sess := h.sessions()
	if sess[a] == "" || sess[b] == "" || sess[a] == sess[b] {
		t.Fatalf("sessions %v", sess)
	}
	secretA, secretB := h.svc.RuntimeSecret(sess[a]), h.svc.RuntimeSecret(sess[b])
	if secretA == "" || secretA == secretB {
		t.Fatal("sessions must have distinct, non-empty secrets")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ep, err := h.alloc.Resolve(ctx, sess[a], "ship")
	if err != nil {
		t.Fatal(err)
	}
	for name, hc := range map[string]*http.Client{
		"no secret":                nil,
		"wrong secret":             wire.WithSecret(nil, strings.Repeat("0", len(secretA))),
		"another session's secret": wire.WithSecret(nil, secretB),
	} {
		c := ship.NewClient(ep.URL, hc)
		if _, err := c.Health(ctx); err != nil {
			t.Fatalf("%s: /health must answer: %v", name, err)
		}
		_, err := c.PythonExec(ctx, ship.PythonExecRequest{Code: "x = 'pwned'"})
		if we, ok := wire.AsError(err); !ok || we.Status != http.StatusUnauthorized {
			t.Fatalf("%s: python exec = %v, want 401", name, err)
		}
		_, err = c.ShellExec(ctx, ship.ShellExecRequest{Command: "touch pwned"})
		if we, ok := wire.AsError(err); !ok || we.Status != http.StatusUnauthorized {
			t.Fatalf("%s: shell exec = %v, want 401", name, err)
		}
	}
	// The right secret works (and nothing above ran).
	out, err := ship.NewClient(ep.URL, wire.WithSecret(nil, secretA)).PythonExec(ctx, ship.PythonExecRequest{Code: "print(x)"})
	if err != nil || !out.Success || strings.TrimSpace(out.Output.Text) != "1" {
		t.Fatalf("with the session's secret: %+v, %v", out, err)
	}
	if r := h.python(a, "import os; print(os.path.exists('pwned'), sorted(k for k in os.environ if 'SECRET' in k))"); !strings.Contains(r["output"].(string), "False []") {
		t.Fatalf("through the gateway: %v", r)
	}

	// Nothing the gateway says carries a secret.
	for _, path := range []string{"/v1/sandboxes/" + a, "/v1/sandboxes", "/metrics", "/v1/sandboxes/" + a + "/history"} {
		r := h.do("GET", path, nil)
		if strings.Contains(string(r.Body), secretA) || strings.Contains(string(r.Body), secretB) {
			t.Fatalf("GET %s reveals a session secret", path)
		}
	}
	if logs := h.logs.String(); strings.Contains(logs, secretA) || strings.Contains(logs, secretB) {
		t.Fatal("the gateway's logs reveal a session secret")
	}
}
