package gateway

import (
	"path"
	"strings"

	"github.com/bay-sandbox/bay/gateway/apierr"
)

// workspacePath validates a workspace-relative path (API.md §0 "Paths") and
// returns its normalised form, which is what is forwarded to the runtime.
func workspacePath(field, p string, allowRoot bool) (string, error) {
	switch {
	case p == "":
		if allowRoot {
			return ".", nil
		}
		return "", apierr.InvalidPath(field, "empty_path", "path must not be empty")
	case strings.ContainsRune(p, 0):
		return "", apierr.InvalidPath(field, "null_byte", "path must not contain a NUL byte")
	case strings.HasPrefix(p, "/"):
		return "", apierr.InvalidPath(field, "absolute_path", "path must be relative to /workspace")
	}
	clean := path.Clean(p)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", apierr.InvalidPath(field, "path_traversal", "path escapes the workspace")
	}
	if clean == "." && !allowRoot {
		return "", apierr.InvalidPath(field, "empty_path", "path must name a file inside the workspace")
	}
	return clean, nil
}
