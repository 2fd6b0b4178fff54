package wire

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gofiber/fiber/v2"
)

// APIError is what a runtime handler returns to answer with a specific status
// and wire code; any other error reaching FiberErrorHandler is a 500.
type APIError struct {
	Status  int
	Code    string
	Message string
	Details map[string]any
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// NewAPIError builds an APIError without details.
func NewAPIError(status int, code, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// ValidationError is a 400 validation_error; details may be nil.
func ValidationError(details map[string]any, format string, args ...any) *APIError {
	return &APIError{Status: http.StatusBadRequest, Code: CodeValidation, Message: fmt.Sprintf(format, args...), Details: details}
}

// FiberErrorHandler renders every error in the ErrorBody envelope. Fiber's own
// errors (unknown route, wrong method, body too large) keep their status.
func FiberErrorHandler(c *fiber.Ctx, err error) error {
	var ae *APIError
	var fe *fiber.Error
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &fe):
		ae = &APIError{Status: fe.Code, Code: fiberCode(fe.Code), Message: fe.Message}
	default:
		ae = &APIError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: err.Error()}
	}
	return c.Status(ae.Status).JSON(ErrorBody{Error: ErrorDetail{Code: ae.Code, Message: ae.Message, Details: ae.Details}})
}

// fiberCode names the wire code for a status Fiber answered by itself.
func fiberCode(status int) string {
	switch {
	case status == http.StatusNotFound:
		return "not_found"
	case status == http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case status == http.StatusRequestEntityTooLarge:
		return "payload_too_large"
	case status >= 500:
		return CodeInternal
	}
	return CodeValidation
}
