package local

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
)

// DefaultWorkspaceMount is where containers see their cargo, as on Nomad.
const DefaultWorkspaceMount = "/workspace"

// workspaceMount decides once whether containers get a mount namespace of
// their own with the cargo at cfg.WorkspaceMount, and logs why not when
// they do not. It returns the mount path, or "" for "cargo at its own
// path" (the behaviour without root). Only a bad path is an error.
func (a *Allocator) workspaceMount() (string, error) {
	if a.cfg.NoWorkspaceMount {
		return "", nil
	}
	target := a.cfg.WorkspaceMount
	if target == "" {
		target = DefaultWorkspaceMount
	}
	if !filepath.IsAbs(target) || filepath.Clean(target) == "/" {
		return "", fmt.Errorf("workspace mount %q must be an absolute path other than /", target)
	}
	target = filepath.Clean(target)
	why := ""
	switch {
	case runtime.GOOS != "linux":
		why = "mount namespaces need Linux"
	case os.Geteuid() != 0:
		why = "the gateway does not run as root"
	default:
		if p := a.hiddenBy(target); p != "" {
			why = fmt.Sprintf("%s lies under %s, which each container's cargo would hide", p, target)
		} else if err := probeMount(cargosDir(a.cfg.DataDir), target); err != nil {
			why = err.Error()
		}
	}
	if why != "" {
		a.log.Warn("containers see their cargo at its own path, not at the workspace mount", "mount", target, "reason", why)
		return "", nil
	}
	a.log.Info("containers see their cargo at the workspace mount, each in a mount namespace of its own", "mount", target)
	return target, nil
}

// hiddenBy returns a configured binary or absolute path in the runtimes'
// extra environment (the Python interpreter, the agent-browser CLI) that
// lies under target and would be shadowed by the cargo, or "".
func (a *Allocator) hiddenBy(target string) string {
	var paths []string
	for _, rt := range slices.Sorted(maps.Keys(a.cfg.Binaries)) {
		paths = append(paths, a.cfg.Binaries[rt])
	}
	for _, rt := range slices.Sorted(maps.Keys(a.cfg.ExtraEnv)) {
		for _, kv := range a.cfg.ExtraEnv[rt] {
			if _, v, ok := strings.Cut(kv, "="); ok && filepath.IsAbs(v) {
				paths = append(paths, v)
			}
		}
	}
	for _, p := range paths {
		c := filepath.Clean(p)
		if c == target || strings.HasPrefix(c, target+"/") {
			return p
		}
	}
	return ""
}

// probeMount does what a runtime will do at start-up, on a thread of its
// own in a throwaway mount namespace: make the mounts slaves, create the
// mount point, bind src there. Creating a missing target leaves an empty
// directory on the host.
func probeMount(src, target string) error {
	return onThrowawayThread(func() error {
		if err := syscall.Unshare(syscall.CLONE_NEWNS); err != nil {
			return fmt.Errorf("create a mount namespace: %w", err)
		}
		if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_SLAVE, ""); err != nil {
			return fmt.Errorf("make mounts private to a namespace: %w", err)
		}
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("create mount point: %w", err)
		}
		if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
			return errors.New("mount point is not a directory")
		}
		if err := syscall.Mount(src, target, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount: %w", err)
		}
		return nil
	})
}

// onThrowawayThread runs f on an OS thread that is never unlocked, so the
// Go runtime ends the thread (and whatever namespace f moved it to) when f
// returns. The main thread cannot be ended (the runtime parks it forever,
// namespace and all, and /proc/self would then show the probe's
// namespace), so when the goroutine lands on it, it keeps it locked while
// a goroutine that therefore runs elsewhere does the work.
func onThrowawayThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if syscall.Gettid() == os.Getpid() {
			errc <- onThrowawayThread(f)
			runtime.UnlockOSThread()
			return
		}
		errc <- f() // deliberately never unlocked
	}()
	return <-errc
}
