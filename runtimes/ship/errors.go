package ship

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/gofiber/fiber/v2"
)

// apiError is an error a handler returns to answer with a specific status and
// wire code; anything else reaching the error handler is a 500.
type apiError struct {
	status  int
	code    string
	msg     string
	details map[string]any
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func newAPIError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func validationErr(format string, args ...any) *apiError {
	return newAPIError(http.StatusBadRequest, wire.CodeValidation, format, args...)
}

func notFoundErr(rel string) *apiError {
	return &apiError{
		status:  http.StatusNotFound,
		code:    wire.CodeFileNotFound,
		msg:     fmt.Sprintf("no such file or directory: %s", rel),
		details: map[string]any{"path": rel},
	}
}

// Reasons for invalid_path, as named by API.md §0.
const (
	reasonEmpty        = "empty_path"
	reasonNullByte     = "null_byte"
	reasonAbsolute     = "absolute_path"
	reasonTraversal    = "path_traversal"
	reasonSymlinkEscpe = "symlink_escape"
)

func invalidPath(field, reason, format string, args ...any) *apiError {
	return &apiError{
		status:  http.StatusBadRequest,
		code:    wire.CodeInvalidPath,
		msg:     fmt.Sprintf(format, args...),
		details: map[string]any{"field": field, "reason": reason},
	}
}

// errorHandler renders every error in the wire envelope. Fiber's own errors
// (unknown route, wrong method, body too large) keep their status.
func errorHandler(c *fiber.Ctx, err error) error {
	var ae *apiError
	var fe *fiber.Error
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &fe):
		code := wire.CodeValidation
		switch fe.Code {
		case http.StatusNotFound:
			code = "not_found"
		case http.StatusMethodNotAllowed:
			code = "method_not_allowed"
		case http.StatusRequestEntityTooLarge:
			code = "payload_too_large"
		default:
			if fe.Code >= 500 {
				code = wire.CodeInternal
			}
		}
		ae = &apiError{status: fe.Code, code: code, msg: fe.Message}
	default:
		ae = &apiError{status: http.StatusInternalServerError, code: wire.CodeInternal, msg: err.Error()}
	}
	return c.Status(ae.status).JSON(wire.ErrorBody{Error: wire.ErrorDetail{Code: ae.code, Message: ae.msg, Details: ae.details}})
}
