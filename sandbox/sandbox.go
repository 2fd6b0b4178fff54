// Package sandbox runs a session's containers in a sandbox made of Linux
// namespaces with Debian's bubblewrap (bwrap). It is the isolation of the
// embedded default (allocator/local uses it) and is kept apart from any
// allocator so that other launchers, e.g. Nomad raw_exec tasks, can use it
// too.
//
// # Shape
//
// A Session is one network namespace shared by all containers of a session,
// as a Nomad group's bridge network is: Ship on 127.0.0.1:8123 and Gull on
// its port see each other on loopback, and `curl localhost:8123/health`
// works from sandbox code. Nothing of the host's network is inside: the
// gateway reaches each runtime through a Unix socket in a per-session host
// directory bind-mounted at /run/bay, so no runtime ever listens on the
// host's loopback.
//
// The namespace is kept alive by a "holder": a tiny bwrap (user + network
// namespace, running sleep) started as the sandbox's host uid. bwrap cannot
// join an existing network namespace itself, so each container is started
// as
//
//	[sh: join cgroups, rlimits] → [setpriv: host uid] → nsenter --user --net -t <holder> → bwrap --unshare-user,pid,ipc,uts ... → runtime
//
// nsenter only moves into the holder's user and network namespaces (which
// the host uid owns, so no privilege is needed); the inner bwrap then builds
// the container's own user (uid 1000 "shipyard"), mount, pid, ipc and uts
// namespaces, drops every capability and sets no_new_privs. A second
// container of the session joins the same network namespace the same way.
// The alternatives were worse: one bwrap for the whole session would give
// both containers one pid and mount namespace and make a restart of one
// container impossible without the other; a network namespace made by
// `ip netns` needs root and leaves state in /run/netns after a crash, while
// the holder's namespace dies with the holder.
//
// Egress goes through slirp4netns attached to the holder's namespace (a
// user-mode TCP/IP stack: the sandbox gets a tap device and a default
// route, and connections leave from the host as ordinary sockets). Its
// access to the host's loopback is disabled, so the gateway's port and
// other local services stay out of reach. Profiles with network = "none"
// get no slirp4netns: loopback only.
//
// # Identity
//
// Sandbox code runs as uid/gid 1000 named shipyard with HOME=/workspace,
// no capabilities and no_new_privs. On the host it is never root: when
// the gateway runs as root the whole chain runs as a dedicated host uid
// (Config.HostUID, default DefaultHostUID) so the cargo's files end up
// owned by that uid; an ordinary gateway user's sandboxes map uid 1000 to
// that user.
//
// # Limits
//
// Per container: memory (memory.limit_in_bytes), pids (pids.max) and CPU
// (cpu.shares = MHz, the weight Nomad gives a task) through cgroup v1
// controllers when they are writable (root); otherwise rlimits (RLIMIT_DATA
// for memory, RLIMIT_NPROC for processes, the latter counted per host uid).
package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Sandbox identity inside, as in Shipyard Neo's images.
const (
	UID       = 1000
	GID       = 1000
	User      = "shipyard"
	Workspace = "/workspace"
	// RunDir is where the session's host directory (Unix sockets) is seen.
	RunDir = "/run/bay"
)

// DefaultHostUID is the host uid (and gid) sandboxes run as when the
// gateway runs as root and no other is configured: a high, otherwise
// unused id, so nothing on the host belongs to it but cargos.
const DefaultHostUID = 64000

// DefaultPids is the per-container process (task) limit when the caller
// gives none. Chromium and its helpers need a few hundred threads.
const DefaultPids = 2048

// ErrUnavailable is returned by New when the host cannot run sandboxes.
var ErrUnavailable = errors.New("sandbox unavailable")

// Config configures a Launcher. Zero values take the defaults documented.
type Config struct {
	// Bwrap, Nsenter, Setpriv, Slirp4netns are the tools; "" finds them on
	// PATH (and in /usr/bin, /usr/sbin). Slirp4netns is optional: without
	// it sessions have no egress.
	Bwrap, Nsenter, Setpriv, Slirp4netns string
	// HostUID and HostGID are what sandboxes run as on the host when the
	// launcher runs as root. 0 means DefaultHostUID. Ignored otherwise.
	HostUID, HostGID int
	// CgroupRoot is the cgroup v1 mount root ("" = /sys/fs/cgroup). Limits
	// use the memory, pids and cpu controllers under <root>/<ctrl>/<Prefix>
	// when writable, rlimits otherwise.
	CgroupRoot string
	// CgroupPrefix names the parent cgroup ("" = "bay").
	CgroupPrefix string
	// ReadOnly are extra host paths every container sees read-only at the
	// same place (runtime binaries, the agent-browser CLI). System
	// directories are always there.
	ReadOnly []string
	// Hide are host paths that must not be seen even when they lie under a
	// read-only tree (the gateway's config and data dir): an empty tmpfs
	// (directory) or an empty file is mounted over them.
	Hide []string
}

// Launcher starts sessions. It is safe for concurrent use.
type Launcher struct {
	cfg      Config
	root     bool // running as root: drop to HostUID, own cgroups
	uid, gid int  // host ids sandboxes run as
	cgroups  *cgroups
}

// New checks the tools and decides identities and limits. An error wraps
// ErrUnavailable with the one-line reason.
func New(cfg Config) (*Launcher, error) {
	var err error
	if cfg.Bwrap, err = findTool(cfg.Bwrap, "bwrap"); err != nil {
		return nil, fmt.Errorf("%w: %v (install bubblewrap)", ErrUnavailable, err)
	}
	if cfg.Nsenter, err = findTool(cfg.Nsenter, "nsenter"); err != nil {
		return nil, fmt.Errorf("%w: %v (install util-linux)", ErrUnavailable, err)
	}
	l := &Launcher{cfg: cfg, root: os.Geteuid() == 0}
	if l.root {
		if cfg.Setpriv, err = findTool(cfg.Setpriv, "setpriv"); err != nil {
			return nil, fmt.Errorf("%w: %v (install util-linux)", ErrUnavailable, err)
		}
		l.uid, l.gid = cfg.HostUID, cfg.HostGID
		if l.uid <= 0 {
			l.uid = DefaultHostUID
		}
		if l.gid <= 0 {
			l.gid = l.uid
		}
	} else {
		l.uid, l.gid = os.Geteuid(), os.Getegid()
	}
	cfg.Slirp4netns, _ = findTool(cfg.Slirp4netns, "slirp4netns") // optional
	l.cfg = cfg
	if err := l.probe(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	l.cgroups = newCgroups(cfg.CgroupRoot, cfg.CgroupPrefix)
	return l, nil
}

// HostIDs are the uid and gid sandbox files are owned by on the host.
func (l *Launcher) HostIDs() (uid, gid int) { return l.uid, l.gid }

// Egress reports whether sessions can get outbound network.
func (l *Launcher) Egress() bool { return l.cfg.Slirp4netns != "" }

// Cgroups reports whether limits use cgroups (else rlimits).
func (l *Launcher) Cgroups() bool { return l.cgroups.usable() }

// probe runs the smallest sandbox once, so a host where unprivileged user
// namespaces are disabled is refused at start-up rather than at the first
// session.
func (l *Launcher) probe() error {
	args := []string{"--unshare-user", "--unshare-net", "--die-with-parent"}
	args = append(args, systemBinds()...)
	args = append(args, "--", "true")
	cmd := l.asHostUser(l.cfg.Bwrap, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("bwrap cannot create namespaces here: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// asHostUser is cmd run as the sandboxes' host uid.
func (l *Launcher) asHostUser(bin string, args ...string) *exec.Cmd {
	if !l.root {
		return exec.Command(bin, args...)
	}
	return exec.Command(l.cfg.Setpriv, append(l.setprivArgs(bin), args...)...)
}

func (l *Launcher) setprivArgs(bin string) []string {
	return []string{"--reuid", fmt.Sprint(l.uid), "--regid", fmt.Sprint(l.gid), "--clear-groups", "--", bin}
}

func findTool(configured, name string) (string, error) {
	if configured != "" {
		if _, err := os.Stat(configured); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return configured, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	for _, d := range []string{"/usr/bin", "/usr/sbin", "/bin", "/sbin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH", name)
}

// systemBinds shows the host's system directories read-only, as the host
// lays them out (merged /usr: /bin, /lib... are symlinks).
func systemBinds() []string {
	args := []string{"--ro-bind", "/usr", "/usr"}
	for _, d := range []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"} {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			if target, err := os.Readlink(d); err == nil {
				args = append(args, "--symlink", target, d)
			}
		case fi.IsDir():
			args = append(args, "--ro-bind", d, d)
		}
	}
	return args
}
