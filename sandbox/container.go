package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Hostname is every container's host name.
const Hostname = "sandbox"

// OOMControl is where a container sees its memory cgroup's
// memory.oom_control (read-only) when limits use cgroups; BAY_OOM_CONTROL
// names it.
const OOMControl = "/run/bay-limits/memory.oom_control"

// Limits are one container's resources. Zero means unlimited, except Pids
// (zero = DefaultPids).
type Limits struct {
	MemoryBytes int64
	CPUShares   int // relative weight (Nomad's MHz)
	Pids        int
}

// ContainerSpec is one container of a session.
type ContainerSpec struct {
	// Name is one path element, unique in the session.
	Name string
	// Workspace is the host directory seen read-write at /workspace.
	Workspace string
	// Path and Args are the program (a host path, made visible read-only
	// at the same place) and its arguments.
	Path string
	Args []string
	// Env is the program's environment; HOME, USER and LOGNAME are set to
	// the sandbox user's.
	Env    []string
	Limits Limits
}

// Container is one prepared container: Cmd is ready to Start (the caller
// sets Stdout/Stderr and SysProcAttr's Setsid/Pdeathsig); Release removes
// its cgroups once it has exited.
type Container struct {
	Cmd *exec.Cmd
	cg  *containerCgroup
}

// Release frees what the container held on the host (cgroups).
func (c *Container) Release() {
	if c.cg != nil {
		c.cg.remove()
	}
}

// OOMKilled reports how many processes of the container the kernel killed
// for running out of memory since it was prepared (cgroups only).
func (c *Container) OOMKilled() int {
	if c.cg == nil {
		return 0
	}
	return c.cg.oomKills()
}

// wrapper runs a list of set-up words before "--", then execs the rest:
//
//	cg FILE        join a cgroup (echo $$ > FILE)
//	ulimit ARGS    apply an rlimit
//	bind SRC DST   bind-mount SRC at DST, a directory made by mkdirs or,
//	               for a file SRC, a new empty file (root only; the process
//	               is in a mount namespace of its own, see stageDir)
//	tmpfs DIR      mount an empty tmpfs at DIR (root only)
//	mkdirs "D..."  make the space-separated directories (one exec)
//
// It ignores SIGTERM before exec; the disposition is inherited, so bwrap
// and the namespace's init wait for the runtime's own graceful exit
// instead of tearing the sandbox down at once (the runtime handles SIGTERM
// itself).
const wrapper = `set -e
while [ "$1" != -- ]; do
  case "$1" in
    cg) echo $$ > "$2"; shift 2 ;;
    ulimit) ulimit $2; shift 2 ;;
    bind) [ -d "$2" ] || : > "$3"; mount --bind "$2" "$3"; shift 3 ;;
    tmpfs) mount -t tmpfs -o mode=0755,size=1m bay-stage "$2"; shift 2 ;;
    mkdirs) mkdir -p $2; shift 2 ;;
    *) echo "bay-sandbox: unknown word $1" >&2; exit 125 ;;
  esac
done
shift
trap '' TERM
exec "$@"
`

// stageDir is where, as root, the sources of a container's binds are
// staged. bwrap runs as the unprivileged host uid, which may not be able
// to traverse the parents of the cargo or the binaries (a data dir under
// /root); so the wrapper, still root and in a private mount namespace of
// its own (nothing propagates to the host, nothing is left behind), binds
// every source under this tmpfs first and bwrap binds from there.
const stageDir = "/run"

// stager maps bind sources to the paths bwrap reads them from.
type stager struct {
	root  bool
	dirs  []string
	binds []string
	n     int
}

func (st *stager) path(src string) string {
	if !st.root {
		return src
	}
	st.n++
	dst := stageDir + "/bay-stage/" + strconv.Itoa(st.n)
	if fi, err := os.Stat(src); err == nil && fi.IsDir() {
		st.dirs = append(st.dirs, dst)
	} else if len(st.dirs) == 0 || st.dirs[0] != stageDir+"/bay-stage" {
		st.dirs = append([]string{stageDir + "/bay-stage"}, st.dirs...)
	}
	st.binds = append(st.binds, "bind", src, dst)
	return dst
}

// words are the wrapper's staging words.
func (st *stager) words() []string {
	if !st.root || st.n == 0 {
		return nil
	}
	return append([]string{"tmpfs", stageDir, "mkdirs", strings.Join(st.dirs, " ")}, st.binds...)
}

// Container prepares one container in the session.
func (s *Session) Container(spec ContainerSpec) (*Container, error) {
	if spec.Name == "" || strings.ContainsAny(spec.Name, "/\x00") {
		return nil, fmt.Errorf("invalid container name %q", spec.Name)
	}
	if !filepath.IsAbs(spec.Workspace) || !filepath.IsAbs(spec.Path) {
		return nil, fmt.Errorf("container %q: workspace and program must be absolute paths", spec.Name)
	}
	l := s.l
	c := &Container{}
	pre := []string{}
	if l.cgroups.usable() {
		cg, err := l.cgroups.create(s.spec.ID+"."+spec.Name, spec.Limits)
		if err != nil {
			return nil, fmt.Errorf("container %q: %w", spec.Name, err)
		}
		c.cg = cg
		for _, f := range cg.procsFiles() {
			pre = append(pre, "cg", f)
		}
	} else {
		pre = append(pre, rlimitWords(spec.Limits)...)
	}
	st := &stager{root: l.root}
	bargs := s.bwrapArgs(spec, st)
	if c.cg != nil {
		// The runtime reads its own out-of-memory count to say why a
		// process died (Ship: "out of memory" rather than "exited").
		bargs = append(bargs, "--ro-bind", st.path(filepath.Join(c.cg.mem, "memory.oom_control")), OOMControl)
	}
	pre = append(pre, st.words()...)
	chain := []string{}
	if l.root {
		chain = append(chain, l.cfg.Setpriv)
		chain = append(chain, l.setprivArgs(l.cfg.Nsenter)...)
	} else {
		chain = append(chain, l.cfg.Nsenter)
	}
	chain = append(chain, "--user", "--net", "--preserve-credentials", "-t", strconv.Itoa(s.pid), "--", l.cfg.Bwrap)
	chain = append(chain, bargs...)
	chain = append(chain, "--", programPath(spec.Path))
	chain = append(chain, spec.Args...)

	argv := append([]string{"-c", wrapper, "bay-sandbox"}, pre...)
	argv = append(argv, "--")
	argv = append(argv, chain...)
	cmd := exec.Command("/bin/sh", argv...)
	cmd.Env = sandboxEnv(spec.Env)
	if c.cg != nil {
		cmd.Env = append(cmd.Env, "BAY_OOM_CONTROL="+OOMControl)
	}
	cmd.Dir = "/"
	if l.root {
		// A private mount namespace for the staging mounts; Go makes it
		// MS_REC|MS_PRIVATE before exec.
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	}
	c.Cmd = cmd
	return c, nil
}

func (s *Session) bwrapArgs(spec ContainerSpec, st *stager) []string {
	etc := st.path(filepath.Join(s.spec.Dir, "etc"))
	a := []string{
		"--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
		"--uid", strconv.Itoa(UID), "--gid", strconv.Itoa(GID),
		"--hostname", Hostname,
		"--die-with-parent", "--cap-drop", "ALL",
	}
	a = append(a, systemBinds()...)
	a = append(a,
		"--ro-bind", "/etc", "/etc",
		"--ro-bind", filepath.Join(etc, "passwd"), "/etc/passwd",
		"--ro-bind", filepath.Join(etc, "group"), "/etc/group",
		"--ro-bind", filepath.Join(etc, "hosts"), "/etc/hosts",
	)
	if s.egress {
		a = append(a, "--ro-bind", filepath.Join(etc, "resolv.conf"), "/etc/resolv.conf")
	}
	a = append(a,
		"--dev", "/dev",
		"--perms", "1777", "--tmpfs", "/dev/shm",
		"--proc", "/proc",
		"--perms", "1777", "--tmpfs", "/tmp",
		"--perms", "0755", "--tmpfs", "/run",
	)
	for _, p := range readOnlyDirs(s.l.cfg.ReadOnly) {
		a = append(a, "--ro-bind", st.path(p), p)
	}
	if !underAny(spec.Path, "/usr", "/bin", "/sbin") {
		// The program alone, at a path of its own: its directory's
		// permissions (a private temp dir) and neighbours do not matter.
		a = append(a, "--ro-bind", st.path(spec.Path), programPath(spec.Path))
	}
	a = append(a,
		"--bind", st.path(spec.Workspace), Workspace,
		"--bind", st.path(filepath.Join(s.spec.Dir, "sockets")), RunDir,
	)
	shown := readOnlyDirs(s.l.cfg.ReadOnly)
	for _, h := range s.l.cfg.Hide {
		// Only what a read-only tree would show needs covering; anything
		// else is not in the sandbox at all (not even as a mount point).
		if !underAny(h, append([]string{"/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64"}, shown...)...) {
			continue
		}
		fi, err := os.Stat(h)
		switch {
		case err != nil:
		case fi.IsDir():
			a = append(a, "--tmpfs", h)
		default:
			a = append(a, "--ro-bind", "/dev/null", h)
		}
	}
	a = append(a, "--chdir", Workspace,
		"--setenv", "HOME", Workspace, "--setenv", "USER", User, "--setenv", "LOGNAME", User)
	return a
}

// programPath is where a container's program is seen: system programs
// where they are, others under /run/bay-bin.
func programPath(p string) string {
	if underAny(p, "/usr", "/bin", "/sbin") {
		return p
	}
	return "/run/bay-bin/" + filepath.Base(p)
}

// readOnlyDirs turns program paths into the directories to show: the
// directory of a file (a node_modules package whole, since its binary
// resolves files next to it), skipping what system binds already show and
// anything under /workspace or /run, which the sandbox's own mounts hide.
// Only the directory is shown, never a parent.
func readOnlyDirs(paths []string) []string {
	var out []string
	for _, p := range paths {
		if p == "" || !filepath.IsAbs(p) {
			continue
		}
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		d := p
		if fi, err := os.Stat(p); err != nil {
			continue
		} else if !fi.IsDir() {
			d = filepath.Dir(p)
		}
		if i := strings.Index(d, "/node_modules/"); i >= 0 {
			rest := d[i+len("/node_modules/"):]
			pkg, _, _ := strings.Cut(rest, "/")
			if strings.HasPrefix(pkg, "@") {
				scope, after, _ := strings.Cut(rest, "/")
				name, _, _ := strings.Cut(after, "/")
				pkg = scope + "/" + name
			}
			d = d[:i] + "/node_modules/" + pkg
		}
		// Already shown, or a sandbox mount of its own: skip. A directory
		// under /tmp is fine (bound after the private /tmp), /tmp itself not.
		if underAny(d, "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", Workspace, "/run", "/proc", "/dev") || d == "/" || d == "/tmp" {
			continue
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

func underAny(p string, roots ...string) bool {
	for _, r := range roots {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

// sandboxEnv is env with the sandbox user's identity.
func sandboxEnv(env []string) []string {
	out := make([]string, 0, len(env)+4)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "HOME", "USER", "LOGNAME", "XDG_RUNTIME_DIR", "TMPDIR":
			continue
		}
		out = append(out, kv)
	}
	return append(out, "HOME="+Workspace, "USER="+User, "LOGNAME="+User, "TMPDIR=/tmp")
}

// rlimitWords are the wrapper's ulimit words when cgroups are unusable:
// RLIMIT_DATA bounds heap and anonymous memory (address-space reservations
// such as V8's are not counted, so Chromium still starts), RLIMIT_NPROC
// bounds processes (per host uid: shared by this user's sandboxes).
func rlimitWords(lim Limits) []string {
	var out []string
	if lim.MemoryBytes > 0 {
		out = append(out, "ulimit", "-d "+strconv.FormatInt(lim.MemoryBytes/1024, 10))
	}
	pids := lim.Pids
	if pids <= 0 {
		pids = DefaultPids
	}
	out = append(out, "ulimit", "-p "+strconv.Itoa(pids))
	return out
}
