package gull

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
)

// lookupEnv returns the value of key in env (KEY=VALUE pairs); the last
// occurrence wins, as it does for a child process.
func lookupEnv(env []string, key string) (string, bool) {
	val, ok := "", false
	for _, kv := range env {
		if k, v, found := strings.Cut(kv, "="); found && k == key {
			val, ok = v, true
		}
	}
	return val, ok
}

// socketBaseDir mirrors agent-browser's choice of where a daemon keeps its
// socket and pid file: AGENT_BROWSER_SOCKET_DIR, then
// $XDG_RUNTIME_DIR/agent-browser, then ~/.agent-browser, then the temp dir.
// Gull passes the result to the CLI explicitly, so both always agree.
func socketBaseDir(env []string) string {
	if d, _ := lookupEnv(env, "AGENT_BROWSER_SOCKET_DIR"); d != "" {
		return d
	}
	if d, _ := lookupEnv(env, "XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "agent-browser")
	}
	if h, _ := lookupEnv(env, "HOME"); h != "" {
		return filepath.Join(h, ".agent-browser")
	}
	return filepath.Join(os.TempDir(), "agent-browser")
}

// daemonRunDir is where the daemon of this environment puts its files; a
// namespace (AGENT_BROWSER_NAMESPACE) gets a sub-directory of its own.
func daemonRunDir(env []string) string {
	base := socketBaseDir(env)
	if ns, _ := lookupEnv(env, "AGENT_BROWSER_NAMESPACE"); ns != "" {
		return filepath.Join(base, "namespaces", sanitizeComponent(ns), "run")
	}
	return base
}

func sanitizeComponent(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, s)
}

// validSession reports whether name is accepted by agent-browser as a
// session name: Unicode letters and numbers, hyphens and underscores.
func validSession(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if r != '-' && r != '_' && !unicode.IsLetter(r) && !unicode.IsNumber(r) {
			return false
		}
	}
	return true
}

// daemonFiles names the files of one session's daemon.
type daemonFiles struct {
	pidFile string
	sock    string
}

func newDaemonFiles(env []string, session string) daemonFiles {
	dir := daemonRunDir(env)
	return daemonFiles{
		pidFile: filepath.Join(dir, session+".pid"),
		sock:    filepath.Join(dir, session+".sock"),
	}
}

// pid returns the daemon's pid when its pid file names a live process.
func (d daemonFiles) pid() (int, bool) {
	b, err := os.ReadFile(d.pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, processAlive(pid)
}

// ready reports whether the daemon's socket accepts a connection. It never
// waits for a running command: the daemon accepts while it works.
func (d daemonFiles) ready(timeout time.Duration) bool {
	c, err := net.DialTimeout("unix", d.sock, timeout)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// processAlive reports whether pid is a running (not zombie) process. A
// zombie counts as dead: in a container whose init does not reap, a killed
// daemon lingers as one.
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no procfs: trust kill(0)
	}
	// Format: pid (comm) state ...; comm may contain spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return true
	}
	return b[i+2] != 'Z'
}

// removeStaleLocks deletes Chromium's Singleton* files from the profile. A
// browser killed without a clean exit leaves them behind, and Chromium then
// refuses the profile when the host name differs (a new container) or the
// recorded pid is reused. Only call it when no daemon of ours is running.
func removeStaleLocks(profileDir string) []string {
	var removed []string
	for _, name := range []string{"SingletonLock", "SingletonSocket", "SingletonCookie"} {
		p := filepath.Join(profileDir, name)
		if _, err := os.Lstat(p); err == nil {
			if os.Remove(p) == nil {
				removed = append(removed, name)
			}
		}
	}
	return removed
}
