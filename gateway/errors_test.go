package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/bay-sandbox/bay/store"
)

// TestErrorMapping checks the one place errors become responses: every
// class of failure gets its contract status and code, never a bare 500.
func TestErrorMapping(t *testing.T) {
	s := &Server{log: hclog.NewNullLogger()}
	cases := []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter string
	}{
		{"start failed", fmt.Errorf("start session: %w: gull exited 1", allocator.ErrStartFailed), 503, "session_not_ready", "1"},
		{"backend down", fmt.Errorf("create volume: %w", allocator.ErrUnavailable), 503, "session_not_ready", "5"},
		{"cargo in use", fmt.Errorf("delete: %w", allocator.ErrCargoInUse), 409, "conflict", ""},
		{"store not found", fmt.Errorf("load: %w", store.ErrNotFound), 404, "not_found", ""},
		{"runtime 404", &wire.Error{Status: 404, Code: "file_not_found", Message: "no such file"}, 404, "file_not_found", ""},
		{"runtime bad path", &wire.Error{Status: 400, Code: "invalid_path", Message: "symlink escapes"}, 400, "invalid_path", ""},
		{"runtime 500", &wire.Error{Status: 500, Code: "internal_error", Message: "boom"}, 502, "ship_error", ""},
		{"runtime timeout", context.DeadlineExceeded, 504, "timeout", ""},
		{"runtime unreachable", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, 502, "ship_error", ""},
		{"route not found", fiber.ErrNotFound, 404, "not_found", ""},
		{"bug", errors.New("nil map"), 500, "internal_error", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := fiber.New(fiber.Config{ErrorHandler: s.errorHandler})
			app.Get("/v1/sandboxes/:id", func(c *fiber.Ctx) error { return tc.err })
			resp, err := app.Test(httptest.NewRequest("GET", "/v1/sandboxes/sandbox-1", nil))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			var env envelope
			if err := json.Unmarshal(body, &env); err != nil {
				t.Fatalf("not an envelope: %s", body)
			}
			if resp.StatusCode != tc.status || env.Error.Code != tc.code || env.Error.Message == "" {
				t.Fatalf("got %d %s %q, want %d %s", resp.StatusCode, env.Error.Code, env.Error.Message, tc.status, tc.code)
			}
			if got := resp.Header.Get("Retry-After"); got != tc.retryAfter {
				t.Fatalf("Retry-After %q, want %q", got, tc.retryAfter)
			}
		})
	}
}

// TestBackendErrorMapping: Nomad's refusals and outages, classified by the
// allocator, become the contract's errors: a denial names the capability
// and is not retryable (no Retry-After), an outage or full cluster is a 503
// with Retry-After, on sandbox routes the session_not_ready clients retry.
func TestBackendErrorMapping(t *testing.T) {
	s := &Server{log: hclog.NewNullLogger()}
	denied := &allocator.BackendError{Kind: allocator.ErrDenied, Op: "register job bay-x", Capability: `namespace capability "submit-job"`, Err: errors.New("nomad answered 403: Permission denied")}
	refused := &allocator.BackendError{Kind: allocator.ErrRefused, Op: "register job bay-x", Err: errors.New("nomad answered 400: namespace not found")}
	down := &allocator.BackendError{Kind: allocator.ErrUnavailable, Op: "create volume bay-cargo-ws-1", Err: errors.New("nomad answered 500: No path to node")}
	full := &allocator.BackendError{Kind: allocator.ErrNoCapacity, Op: "place session sess-1", Resources: []string{"cpu"}, Err: errors.New("1 exhausted cpu")}
	cases := []struct {
		name, method, path string
		err                error
		status             int
		code, retryAfter   string
		detail             string // a details key that must be present
	}{
		{"denied on create", "POST", "/v1/sandboxes", fmt.Errorf("create cargo storage: %w", denied), 502, "backend_permission_denied", "", "capability"},
		{"denied on exec", "POST", "/v1/sandboxes/sandbox-1/python/exec", fmt.Errorf("start session: %w", denied), 502, "backend_permission_denied", "", "capability"},
		{"refused", "POST", "/v1/sandboxes", refused, 502, "backend_error", "", "operation"},
		{"unreachable on create", "POST", "/v1/sandboxes", down, 503, "backend_unavailable", "5", "retry_after_ms"},
		{"unreachable on exec", "POST", "/v1/sandboxes/sandbox-1/python/exec", down, 503, "session_not_ready", "5", "sandbox_id"},
		{"no capacity", "POST", "/v1/sandboxes/sandbox-1/python/exec", full, 503, "session_not_ready", "10", "resources"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := fiber.New(fiber.Config{ErrorHandler: s.errorHandler})
			app.Post("/v1/sandboxes", func(c *fiber.Ctx) error { return tc.err })
			app.Post("/v1/sandboxes/:id/python/exec", func(c *fiber.Ctx) error { return tc.err })
			resp, err := app.Test(httptest.NewRequest(tc.method, tc.path, nil))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			var env envelope
			if err := json.Unmarshal(body, &env); err != nil {
				t.Fatalf("not an envelope: %s", body)
			}
			if resp.StatusCode != tc.status || env.Error.Code != tc.code {
				t.Fatalf("got %d %s %q, want %d %s", resp.StatusCode, env.Error.Code, env.Error.Message, tc.status, tc.code)
			}
			if got := resp.Header.Get("Retry-After"); got != tc.retryAfter {
				t.Fatalf("Retry-After %q, want %q", got, tc.retryAfter)
			}
			if _, ok := env.Error.Details[tc.detail]; !ok {
				t.Fatalf("details %v lack %q", env.Error.Details, tc.detail)
			}
			if tc.code == "backend_permission_denied" && !strings.Contains(env.Error.Message, "submit-job") {
				t.Fatalf("denial message %q does not name the capability", env.Error.Message)
			}
		})
	}
}
