package gateway

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/bay-sandbox/bay/gateway/apierr"
)

// Linux's limits (PATH_MAX, NAME_MAX), checked here so that the runtime
// never sees a path it would refuse with an unclear error.
const (
	maxPathBytes = 4096
	maxNameBytes = 255
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
	case len(p) > maxPathBytes:
		return "", apierr.InvalidPath(field, "path_too_long", fmt.Sprintf("path is %d bytes; at most %d are allowed", len(p), maxPathBytes))
	case !utf8.ValidString(p):
		return "", apierr.InvalidPath(field, "invalid_utf8", "path must be valid UTF-8")
	}
	for _, comp := range strings.Split(p, "/") {
		if len(comp) > maxNameBytes {
			return "", apierr.InvalidPath(field, "name_too_long", fmt.Sprintf("path component of %d bytes; at most %d are allowed", len(comp), maxNameBytes))
		}
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
