// Package apierr is the gateway's error vocabulary: the codes of the wire
// contract and an error type that carries the HTTP status, code and details.
// The Fiber error handler is the only place that turns errors into responses.
package apierr

import (
	"fmt"
	"net/http"
)

// Codes of the wire contract (API.md §0).
const (
	CodeValidation       = "validation_error"
	CodeInvalidPath      = "invalid_path"
	CodeCapability       = "capability_not_supported"
	CodeUnauthorized     = "unauthorized"
	CodeNotFound         = "not_found"
	CodeFileNotFound     = "file_not_found"
	CodeConflict         = "conflict"
	CodeExpired          = "sandbox_expired"
	CodeTTLInfinite      = "sandbox_ttl_infinite"
	CodeQuota            = "quota_exceeded"
	CodeLocked           = "locked"
	CodeShipError        = "ship_error"
	CodeSessionNotReady  = "session_not_ready"
	CodeTimeout          = "timeout"
	CodeInternal         = "internal_error"
	CodeMethodNotAllowed = "method_not_allowed"
	CodePayloadTooLarge  = "payload_too_large"
	CodeInsufficientDisk = "insufficient_storage"
	CodeForbidden        = "forbidden"
	CodeBadRequest       = "bad_request"
	// The compute backend (Nomad) refused or could not be reached; details
	// name the operation (and for a denial the missing ACL capability).
	CodeBackendDenied      = "backend_permission_denied"
	CodeBackendRefused     = "backend_error"
	CodeBackendUnavailable = "backend_unavailable"
)

// Error is an error the client should see as is.
type Error struct {
	Status  int
	Code    string
	Message string
	Details map[string]any
	// RetryAfterMS, when set, becomes a Retry-After header (seconds, rounded up).
	RetryAfterMS int64
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// New returns an Error.
func New(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// With returns e with details set.
func (e *Error) With(details map[string]any) *Error {
	e.Details = details
	return e
}

// Validation is a 400 validation_error (well-formed but semantically wrong).
func Validation(format string, args ...any) *Error {
	return New(http.StatusBadRequest, CodeValidation, format, args...)
}

// Schema is a 422 validation_error (the body or query does not match the schema).
func Schema(field, format string, args ...any) *Error {
	e := New(http.StatusUnprocessableEntity, CodeValidation, format, args...)
	if field != "" {
		e.Details = map[string]any{"field": field}
	}
	return e
}

// NotFound is a 404 not_found for an unknown or foreign object.
func NotFound(kind, id string) *Error {
	return New(http.StatusNotFound, CodeNotFound, "%s %q not found", kind, id)
}

// Conflict is a 409 conflict.
func Conflict(format string, args ...any) *Error {
	return New(http.StatusConflict, CodeConflict, format, args...)
}

// InvalidPath is a 400 invalid_path with {field, reason}.
func InvalidPath(field, reason, msg string) *Error {
	return New(http.StatusBadRequest, CodeInvalidPath, "%s", msg).With(map[string]any{"field": field, "reason": reason})
}

// NotReady is a 503 session_not_ready.
func NotReady(sandboxID string, retryAfterMS int64, msg string) *Error {
	e := New(http.StatusServiceUnavailable, CodeSessionNotReady, "%s", msg)
	e.Details = map[string]any{"sandbox_id": sandboxID, "retry_after_ms": retryAfterMS}
	e.RetryAfterMS = retryAfterMS
	return e
}
