package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/bay-sandbox/bay/sandbox"
)

// Isolation modes (Config.Isolation).
const (
	IsolationSandbox = "sandbox" // the default: every session in a sandbox
	IsolationNone    = "none"    // plain child processes, as before
)

// sandboxPath is PATH inside a sandbox: the host's system directories.
const sandboxPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// runDir is the parent of the sessions' host directories (their runtimes'
// Unix sockets). Socket paths are limited to 107 bytes, so a data dir
// too deep for them gets a short directory under the system's temp dir.
func (a *Allocator) runDir() (string, error) {
	dir := filepath.Join(a.cfg.DataDir, "run")
	// <dir>/<session id ≤ 40>/sockets/<container ≤ 40>.sock
	if len(dir)+1+40+9+40+5 <= 107 {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		return dir, os.Chmod(dir, 0o755)
	}
	sum := sha256.Sum256([]byte(a.cfg.DataDir))
	dir = filepath.Join(os.TempDir(), "bay-run-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, os.Chmod(dir, 0o755)
}

// startSandbox makes the session's network namespace before its
// containers start.
func (a *Allocator) startSandbox(ctx context.Context, s *session) error {
	if a.box == nil {
		return nil
	}
	if err := a.ownCargo(s.cargoDir); err != nil {
		return err
	}
	network := sandbox.NetworkEgress
	if s.req.Profile.Network == profiles.NetworkNone {
		network = sandbox.NetworkNone
	}
	logf, err := os.OpenFile(filepath.Join(s.logDir, "sandbox.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open sandbox log: %w", err)
	}
	defer logf.Close()
	sb, err := a.box.StartSession(ctx, sandbox.SessionSpec{
		ID:      s.req.SessionID,
		Dir:     filepath.Join(a.runBase, s.req.SessionID),
		Network: network,
		Log:     logf,
	})
	if err != nil {
		return fmt.Errorf("start sandbox: %w", err)
	}
	if network == sandbox.NetworkEgress && !sb.Egress() {
		a.log.Warn("session has no outbound network: slirp4netns is not installed", "session", s.req.SessionID)
	}
	s.box = sb
	return nil
}

// closeSandbox ends the session's namespace once its containers are gone.
func (s *session) closeSandbox() {
	if s.box != nil {
		s.box.Close()
	}
}

// ownCargo gives the cargo to the sandboxes' host uid, so sandbox code
// (uid 1000 inside) can write it. A cargo written by an unisolated run or
// an earlier uid is re-owned as a whole, once.
func (a *Allocator) ownCargo(dir string) error {
	uid, gid := a.box.HostIDs()
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("cargo directory: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid && int(st.Gid) == gid {
		return nil
	}
	if os.Geteuid() != 0 {
		return nil // our own files: the sandbox maps uid 1000 to us
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("give the cargo to the sandbox user: %w", err)
	}
	return nil
}

// sandboxCommand prepares one run of a container inside the session's
// sandbox: the runtime listens on its profile port inside the session's
// network namespace and on a Unix socket the gateway reaches.
func (a *Allocator) sandboxCommand(s *session, c *container, env []string) (*sandbox.Container, string, error) {
	port := c.spec.RuntimePort
	if port == 0 {
		port = profiles.DefaultShipPort
		if c.spec.RuntimeType == profiles.RuntimeGull {
			port = profiles.DefaultGullPort
		}
	}
	args := []string{"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--workspace", sandbox.Workspace,
		"--socket", sandbox.InnerSocketPath(c.spec.Name)}
	sc, err := s.box.Container(sandbox.ContainerSpec{
		Name:      c.spec.Name,
		Workspace: s.cargoDir,
		Path:      c.bin,
		Args:      args,
		Env:       append(env, "PORT="+strconv.Itoa(port)),
		Limits: sandbox.Limits{
			MemoryBytes: int64(c.spec.Resources.MemoryMB) << 20,
			CPUShares:   c.spec.Resources.CPU,
		},
	})
	if err != nil {
		return nil, "", err
	}
	sock := s.box.SocketPath(c.spec.Name)
	_ = os.Remove(sock) // a previous run's; health must not see it
	return sc, wire.UnixURL(sock), nil
}

// oomPoll is how often a sandboxed container's out-of-memory count is read.
const oomPoll = 200 * time.Millisecond

// watchOOM restarts a container whose processes the kernel killed at its
// memory limit, as a Nomad task that ran out of memory is restarted: the
// runtime first gets a moment to answer the call that failed (Ship reports
// it as out of memory), then SIGTERM; the supervisor sees the exit (reason
// "out of memory"), degrades the session and restarts the container.
func (a *Allocator) watchOOM(s *session, c *container, p *proc) {
	defer a.wg.Done()
	t := time.NewTicker(oomPoll)
	defer t.Stop()
	for {
		select {
		case <-p.exited:
			return
		case <-t.C:
		}
		n := p.box.OOMKilled()
		if n <= 0 {
			continue
		}
		a.log.Warn("container ran out of memory; restarting it", "session", s.req.SessionID, "container", c.spec.Name,
			"memory_mb", c.spec.Resources.MemoryMB, "oom_kills", n)
		select {
		case <-p.exited:
			return
		case <-time.After(time.Second):
		}
		a.terminate(context.Background(), p, a.cfg.DestroyGrace)
		return
	}
}
