// Package nsmount puts a runtime's workspace where the contract says it is.
// On Nomad the cargo is mounted at /workspace by the task driver; the local
// allocator instead starts each runtime in a mount namespace of its own
// (CLONE_NEWNS) and asks it, with --mount-workspace, to bind-mount its cargo
// there itself before serving. Shell commands, Python, the agent-browser
// daemon and Chromium inherit the namespace, so every process of a container
// sees its own cargo at the same path while the host and other sessions do
// not.
package nsmount

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
)

// ErrSharedNamespace is returned when the process is still in the mount
// namespace of its parent or of init: mounting there would change the
// host's mount table.
var ErrSharedNamespace = errors.New("process is not in a mount namespace of its own (start it with CLONE_NEWNS, e.g. unshare -m)")

// checkTarget validates the mount point path.
func checkTarget(target string) (string, error) {
	if !filepath.IsAbs(target) {
		return "", fmt.Errorf("mount point %q is not absolute", target)
	}
	t := filepath.Clean(target)
	if t == "/" {
		return "", errors.New("mount point must not be /")
	}
	return t, nil
}

// checkSource resolves the directory to mount.
func checkSource(src string) (string, error) {
	abs, err := filepath.Abs(src)
	if err != nil {
		return "", fmt.Errorf("workspace path: %w", err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("resolve workspace: %w", err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("stat workspace: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("workspace %s is not a directory", abs)
	}
	return real, nil
}

// Workspace is what a runtime's main calls for --mount-workspace: it binds
// src at target and returns the workspace to serve (target), or, when that
// fails, logs why and returns src as it was given. Either way
// BAY_WORKSPACE_PATH is set to the returned path, so the runtime's children
// see where their workspace really is.
func Workspace(src, target string, log hclog.Logger) string {
	ws := target
	if err := Bind(src, target); err != nil {
		log.Warn("workspace not mounted; serving it at its own path", "workspace", src, "mount", target, "error", err)
		ws = src
	} else {
		log.Info("workspace mounted", "workspace", src, "mount", target)
	}
	if abs, err := filepath.Abs(ws); err == nil {
		ws = abs
	}
	_ = os.Setenv("BAY_WORKSPACE_PATH", ws)
	return ws
}
