package ship

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/bay-sandbox/bay/runtimes/wire"
)

// maxSymlinkHops bounds symlink resolution like the kernel's ELOOP limit.
const maxSymlinkHops = 40

// workspace resolves caller-supplied paths inside the cargo. Resolution is
// done twice on purpose: resolve walks the path with symlinks followed to
// classify escapes with a clear reason, and every file operation then goes
// through os.Root on the resolved, symlink-free path, so a symlink swapped in
// between the two (by code running in the sandbox) still cannot escape.
type workspace struct {
	mount string   // the path as configured (absolute, cleaned)
	real  string   // mount with symlinks resolved
	root  *os.Root // every file operation goes through it
}

func openWorkspace(path string) (*workspace, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("workspace path: %w", err)
	}
	// A Ship started without its cargo mounted still gets a workspace.
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("create workspace: %w", err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("resolve workspace: %w", err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("stat workspace: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("workspace %s is not a directory", abs)
	}
	root, err := os.OpenRoot(real)
	if err != nil {
		return nil, fmt.Errorf("open workspace: %w", err)
	}
	return &workspace{mount: abs, real: real, root: root}, nil
}

func (w *workspace) close() error { return w.root.Close() }

// target is a path the caller named, resolved inside the workspace.
type target struct {
	rel  string // normalised as the caller named it ("." for the root)
	real string // relative to the real root, symlinks resolved ("." for the root)
}

// abs is the target's absolute real path (for cwd of child processes).
func (w *workspace) abs(t target) string { return filepath.Join(w.real, t.real) }

// clean applies the lexical rules of API.md §0 and returns a relative,
// normalised path. Absolute paths are accepted only when they lie inside the
// workspace (as mounted or as resolved), for clients that send /workspace/x.
func (w *workspace) clean(field, p string) (string, error) {
	if p == "" {
		return "", invalidPath(field, reasonEmpty, "%s must not be empty", field)
	}
	if strings.ContainsRune(p, 0) {
		return "", invalidPath(field, reasonNullByte, "%s contains a NUL byte", field)
	}
	if filepath.IsAbs(p) {
		c := filepath.Clean(p)
		for _, base := range []string{w.mount, w.real} {
			if rel, ok := within(base, c); ok {
				return rel, nil
			}
		}
		return "", invalidPath(field, reasonAbsolute, "%s %q is absolute and outside the workspace %s", field, p, w.mount)
	}
	c := filepath.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", invalidPath(field, reasonTraversal, "%s %q escapes the workspace", field, p)
	}
	return c, nil
}

// within reports whether abs lies in base, and returns it relative to base.
func within(base, abs string) (string, bool) {
	if abs == base {
		return ".", true
	}
	if base == "/" {
		return strings.TrimPrefix(abs, "/"), true
	}
	if strings.HasPrefix(abs, base+"/") {
		return abs[len(base)+1:], true
	}
	return "", false
}

// resolve cleans p and follows its symlinks (the last component's only when
// followLast). Anything that ends up outside the workspace is refused.
func (w *workspace) resolve(field, p string, followLast bool) (target, error) {
	rel, err := w.clean(field, p)
	if err != nil {
		return target{}, err
	}
	cur, err := w.walk(rel, followLast)
	if err != nil {
		return target{}, invalidPath(field, reasonSymlinkEscpe, "%s %q: %v", field, p, err)
	}
	realRel, ok := within(w.real, cur)
	if !ok {
		return target{}, invalidPath(field, reasonSymlinkEscpe, "%s %q resolves through a symlink to outside the workspace", field, p)
	}
	return target{rel: rel, real: realRel}, nil
}

// walk resolves rel under the real root component by component. A missing
// component ends symlink resolution: the rest cannot exist, so it is taken
// literally (and a dangling symlink is still followed, so creating through
// it cannot escape).
func (w *workspace) walk(rel string, followLast bool) (string, error) {
	parts := strings.Split(rel, "/")
	cur := w.real
	hops := 0
	for len(parts) > 0 {
		c := parts[0]
		parts = parts[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, c)
		if len(parts) == 0 && !followLast {
			cur = next
			break
		}
		fi, err := os.Lstat(next)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		hops++
		if hops > maxSymlinkHops {
			return "", errors.New("too many levels of symbolic links")
		}
		link, err := os.Readlink(next)
		if err != nil {
			cur = next
			continue
		}
		if filepath.IsAbs(link) {
			cur = "/"
		}
		parts = append(strings.Split(link, "/"), parts...)
	}
	return cur, nil
}

// fsError maps an error from a file operation on t to the wire contract:
// missing → 404, escape → invalid_path, directory where a file is needed →
// not_a_file. Anything else is a real failure of action.
func fsError(field string, t target, action string, err error) error {
	var errno syscall.Errno
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.As(err, &errno) && errno == syscall.ENOTDIR:
		return notFoundErr(t.rel)
	case strings.Contains(err.Error(), "path escapes from parent"):
		return invalidPath(field, reasonSymlinkEscpe, "%s %q resolves to outside the workspace", field, t.rel)
	case errors.As(err, &errno) && errno == syscall.EISDIR:
		return notAFile(t.rel)
	case errors.Is(err, fs.ErrPermission):
		return wire.NewAPIError(http.StatusForbidden, "permission_denied", "%s %s: permission denied", action, t.rel)
	case errors.As(err, &errno) && errno == syscall.ELOOP:
		return invalidPath(field, reasonSymlinkEscpe, "%s %q: too many levels of symbolic links", field, t.rel)
	case diskFull(err):
		return &wire.APIError{Status: http.StatusInsufficientStorage, Code: "insufficient_storage",
			Message: fmt.Sprintf("%s %s: no space left in the workspace", action, t.rel), Details: map[string]any{"field": field, "path": t.rel}}
	case errors.As(err, &errno) && errno == syscall.ENAMETOOLONG:
		return invalidPath(field, "name_too_long", "%s %q: a file name is too long", field, t.rel)
	case errors.As(err, &errno) && errno == syscall.EFBIG:
		return &wire.APIError{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
			Message: fmt.Sprintf("%s %s: file too large", action, t.rel), Details: map[string]any{"field": field, "path": t.rel}}
	case errors.As(err, &errno) && errno == syscall.EROFS:
		return wire.NewAPIError(http.StatusForbidden, "permission_denied", "%s %s: read-only file system", action, t.rel)
	}
	return fmt.Errorf("%s %s: %w", action, t.rel, err)
}

func notAFile(rel string) error {
	return &wire.APIError{Status: http.StatusBadRequest, Code: wire.CodeNotAFile, Message: fmt.Sprintf("%s is not a regular file", rel), Details: map[string]any{"path": rel}}
}
