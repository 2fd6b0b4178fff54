package ship

import (
	"fmt"
	"net/http"

	"github.com/bay-sandbox/bay/runtimes/wire"
)

func validationErr(format string, args ...any) *wire.APIError {
	return wire.ValidationError(nil, format, args...)
}

func notFoundErr(rel string) *wire.APIError {
	return &wire.APIError{
		Status:  http.StatusNotFound,
		Code:    wire.CodeFileNotFound,
		Message: fmt.Sprintf("no such file or directory: %s", rel),
		Details: map[string]any{"path": rel},
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

func invalidPath(field, reason, format string, args ...any) *wire.APIError {
	return &wire.APIError{
		Status:  http.StatusBadRequest,
		Code:    wire.CodeInvalidPath,
		Message: fmt.Sprintf(format, args...),
		Details: map[string]any{"field": field, "reason": reason},
	}
}
