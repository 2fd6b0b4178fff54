// Package wire holds what the runtimes (Ship, Gull) and their clients share on
// the wire: the error envelope, the common health/meta shapes and a small JSON
// request helper. It imports nothing of Bay so both sides can depend on it.
package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ErrorBody is the envelope every runtime error is returned in. It mirrors the
// gateway's envelope so a runtime error can be relayed without translation.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inner part of ErrorBody.
type ErrorDetail struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// Error is what a client returns when a runtime answered with a non-2xx status.
// Transport failures are returned as they are (wrapped), never as *Error, so the
// gateway can tell "the runtime said no" from "the runtime is unreachable".
type Error struct {
	Status  int
	Code    string
	Message string
	Details map[string]any
}

func (e *Error) Error() string {
	return fmt.Sprintf("runtime answered %d %s: %s", e.Status, e.Code, e.Message)
}

// AsError reports whether err carries a runtime *Error.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Common error codes used by the runtimes.
const (
	CodeValidation   = "validation_error"
	CodeInvalidPath  = "invalid_path"
	CodeFileNotFound = "file_not_found"
	CodeNotAFile     = "not_a_file"
	CodeConflict     = "conflict"
	CodeTimeout      = "timeout"
	CodeInternal     = "internal_error"
	CodeUnavailable  = "unavailable"
	// CodeCargoFull (507) is a write refused because the cargo would grow
	// past its size_limit_mb.
	CodeCargoFull = "cargo_full"
)

// Health is the body of GET /health on every runtime. Gull adds browser fields.
type Health struct {
	Status        string `json:"status"`
	Version       string `json:"version"`
	BrowserActive *bool  `json:"browser_active,omitempty"`
	BrowserReady  *bool  `json:"browser_ready,omitempty"`
	Session       string `json:"session,omitempty"`
}

// Meta is the body of GET /meta on every runtime.
type Meta struct {
	Runtime      RuntimeInfo    `json:"runtime"`
	Workspace    WorkspaceInfo  `json:"workspace"`
	Capabilities map[string]any `json:"capabilities"`
}

// RuntimeInfo names a runtime and its version.
type RuntimeInfo struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	APIVersion string `json:"api_version"`
}

// WorkspaceInfo tells where the cargo is mounted inside the runtime.
type WorkspaceInfo struct {
	MountPath string `json:"mount_path"`
}

// DoJSON sends in (when non-nil) as JSON to method url and decodes a 2xx body
// into out (when non-nil). A non-2xx answer becomes *Error.
func DoJSON(ctx context.Context, hc *http.Client, method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	SetDeadline(req, ctx)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := CheckResponse(resp); err != nil {
		return err
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// CheckResponse turns a non-2xx response into *Error, reading (a bounded part
// of) its body. It leaves a 2xx response untouched.
func CheckResponse(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb ErrorBody
	if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != "" {
		return &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, Details: eb.Error.Details}
	}
	msg := string(bytes.TrimSpace(raw))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &Error{Status: resp.StatusCode, Code: CodeInternal, Message: msg}
}
