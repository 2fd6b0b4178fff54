package ship

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// credential is the unprivileged user the agent's code runs as.
type credential struct {
	name   string
	uid    int
	gid    int
	groups []uint32
	home   string
}

func lookupCredential(name string) (*credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr != nil {
			return nil, fmt.Errorf("look up run-as user %q: %w", name, err)
		}
		if u, err = user.LookupId(name); err != nil {
			return nil, fmt.Errorf("look up run-as uid %s: %w", name, err)
		}
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("run-as user %q has non-numeric uid %q", name, u.Uid)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("run-as user %q has non-numeric gid %q", name, u.Gid)
	}
	if os.Geteuid() != 0 {
		if uid == os.Geteuid() {
			return nil, nil
		}
		return nil, fmt.Errorf("run as %q: ship must be started as root to switch users", name)
	}
	c := &credential{name: u.Username, uid: uid, gid: gid, home: u.HomeDir}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.Atoi(g); err == nil {
				c.groups = append(c.groups, uint32(n))
			}
		}
	}
	return c, nil
}

// sysCredential is nil for "run as Ship itself".
func (c *credential) sysCredential() *syscall.Credential {
	if c == nil {
		return nil
	}
	return &syscall.Credential{Uid: uint32(c.uid), Gid: uint32(c.gid), Groups: c.groups}
}

func (c *credential) describe() any {
	if c == nil {
		return nil
	}
	return map[string]any{"user": c.name, "uid": c.uid, "gid": c.gid}
}

// chown hands a file Ship created to the run-as user, so the agent's code can
// change it. Without a run-as user there is nothing to do.
func (s *Server) chown(realRel string) {
	if s.owner == nil {
		return
	}
	if err := s.ws.root.Lchown(realRel, s.owner.uid, s.owner.gid); err != nil {
		s.log.Warn("chown failed", "path", realRel, "error", err)
	}
}

// childEnv is Ship's own environment (profile env, BAY_SANDBOX_ID, ...) as
// every shell command and the interpreter see it, with the identity
// variables of the run-as user when there is one.
func childEnv(base []string, owner *credential) []string {
	if owner == nil {
		return base
	}
	return mergeEnv(base, map[string]string{"HOME": owner.home, "USER": owner.name, "LOGNAME": owner.name})
}

// mergeEnv returns base with extra's keys replaced or added.
func mergeEnv(base []string, extra map[string]string) []string {
	if len(extra) == 0 {
		return base
	}
	out := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := extra[k]; !ok {
			out = append(out, kv)
		}
	}
	for k, v := range extra {
		out = append(out, k+"="+v)
	}
	return out
}

// pythonEnv adds what the interpreter needs to run headless and without a
// writable home: a private IPython dir, a matplotlib config dir and the Agg
// backend, each only when the environment does not choose already.
func pythonEnv(base []string, stateDir string) []string {
	has := map[string]bool{}
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		has[k] = true
	}
	extra := map[string]string{"PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
	for k, v := range map[string]string{
		"IPYTHONDIR":   stateDir + "/ipython",
		"MPLCONFIGDIR": stateDir + "/matplotlib",
		"MPLBACKEND":   "Agg",
	} {
		if !has[k] {
			extra[k] = v
		}
	}
	return mergeEnv(base, extra)
}

func findShell() string {
	for _, p := range []string{"/bin/bash", "/usr/bin/bash", "/bin/sh"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "sh"
}
