package gull

import (
	"net/http"

	"github.com/bay-sandbox/bay/runtimes/wire"
)

func unavailable(err error) *wire.APIError {
	return &wire.APIError{Status: http.StatusServiceUnavailable, Code: wire.CodeUnavailable, Message: err.Error()}
}
