package gull

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/gofiber/fiber/v2"
)

// apiError is an error a handler returns to answer with a given status and
// wire code; anything else reaching the error handler is a 500.
type apiError struct {
	status  int
	code    string
	msg     string
	details map[string]any
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func validationErr(details map[string]any, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: wire.CodeValidation, msg: fmt.Sprintf(format, args...), details: details}
}

func unavailable(err error) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: wire.CodeUnavailable, msg: err.Error()}
}

// errorHandler renders every error in the wire envelope.
func errorHandler(c *fiber.Ctx, err error) error {
	var ae *apiError
	var fe *fiber.Error
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &fe):
		code := wire.CodeValidation
		switch {
		case fe.Code == http.StatusNotFound:
			code = "not_found"
		case fe.Code == http.StatusMethodNotAllowed:
			code = "method_not_allowed"
		case fe.Code >= 500:
			code = wire.CodeInternal
		}
		ae = &apiError{status: fe.Code, code: code, msg: fe.Message}
	default:
		ae = &apiError{status: http.StatusInternalServerError, code: wire.CodeInternal, msg: err.Error()}
	}
	return c.Status(ae.status).JSON(wire.ErrorBody{Error: wire.ErrorDetail{Code: ae.code, Message: ae.msg, Details: ae.details}})
}
