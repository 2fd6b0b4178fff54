package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
)

func TestFiberErrorHandler(t *testing.T) {
	app := fiber.New(fiber.Config{ErrorHandler: FiberErrorHandler, DisableStartupMessage: true})
	app.Get("/api", func(*fiber.Ctx) error {
		return fmt.Errorf("wrapped: %w", &APIError{Status: http.StatusConflict, Code: CodeConflict, Message: "busy", Details: map[string]any{"path": "a"}})
	})
	app.Get("/validation", func(*fiber.Ctx) error { return ValidationError(nil, "bad %s", "x") })
	app.Get("/plain", func(*fiber.Ctx) error { return errors.New("boom") })

	cases := []struct {
		method, path  string
		status        int
		code, message string
		details       map[string]any
	}{
		{"GET", "/api", 409, CodeConflict, "busy", map[string]any{"path": "a"}},
		{"GET", "/validation", 400, CodeValidation, "bad x", nil},
		{"GET", "/plain", 500, CodeInternal, "boom", nil},
		{"GET", "/missing", 404, "not_found", "", nil},
		{"PUT", "/api", 405, "method_not_allowed", "", nil},
	}
	for _, tc := range cases {
		resp, err := app.Test(httptest.NewRequest(tc.method, tc.path, nil))
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		var eb ErrorBody
		if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
			t.Fatalf("%s %s: decode envelope: %v", tc.method, tc.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || eb.Error.Code != tc.code {
			t.Errorf("%s %s: %d %s; want %d %s", tc.method, tc.path, resp.StatusCode, eb.Error.Code, tc.status, tc.code)
		}
		if tc.message != "" && eb.Error.Message != tc.message {
			t.Errorf("%s %s: message %q; want %q", tc.method, tc.path, eb.Error.Message, tc.message)
		}
		if fmt.Sprint(eb.Error.Details) != fmt.Sprint(tc.details) { // nil and empty both print map[]
			t.Errorf("%s %s: details %v; want %v", tc.method, tc.path, eb.Error.Details, tc.details)
		}
	}
}
