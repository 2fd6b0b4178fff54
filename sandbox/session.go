package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Network modes of a session.
const (
	NetworkEgress = ""     // loopback + outbound through slirp4netns
	NetworkNone   = "none" // loopback only
)

// SessionSpec describes one session's sandbox.
type SessionSpec struct {
	// ID names the session (cgroups, hostname); one path element.
	ID string
	// Dir is a host directory of the session's own (created if missing,
	// removed by Close): its sockets/ subdirectory is /run/bay inside.
	// Keep it short: Unix socket paths are limited to 107 bytes.
	Dir string
	// Network is NetworkEgress or NetworkNone.
	Network string
	// Log receives the holder's and slirp4netns's output (may be nil).
	Log io.Writer
}

// Session is one network namespace and its holder.
type Session struct {
	l      *Launcher
	spec   SessionSpec
	holder *exec.Cmd
	pid    int // the holder's process inside its namespaces
	slirp  *exec.Cmd
	exitW  *os.File // slirp4netns exits when this closes
	life   *os.File // the holder exits when this closes

	slirpDone chan struct{} // closed once slirp4netns is up or failed
	egress    bool

	closeOnce sync.Once
	waited    chan struct{}
}

// StartSession starts the holder (and egress) of one session.
func (l *Launcher) StartSession(ctx context.Context, spec SessionSpec) (*Session, error) {
	if spec.ID == "" || strings.ContainsAny(spec.ID, "/\x00") || spec.ID == "." || spec.ID == ".." {
		return nil, fmt.Errorf("invalid session id %q", spec.ID)
	}
	if spec.Network != NetworkEgress && spec.Network != NetworkNone {
		return nil, fmt.Errorf("unknown network mode %q", spec.Network)
	}
	if err := os.MkdirAll(filepath.Join(spec.Dir, "sockets"), 0o700); err != nil {
		return nil, fmt.Errorf("session directory: %w", err)
	}
	// bwrap, as the host uid, reads etc/ (sockets/ is its own).
	if err := os.Chmod(spec.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("session directory: %w", err)
	}
	if err := l.writeEtc(spec); err != nil {
		return nil, err
	}
	// The sandbox (as the host uid) creates its sockets here; the rest of
	// the directory stays the gateway's.
	if err := os.Chown(filepath.Join(spec.Dir, "sockets"), l.uid, l.gid); err != nil {
		return nil, fmt.Errorf("session directory: %w", err)
	}
	s := &Session{l: l, spec: spec, waited: make(chan struct{})}
	if err := s.startHolder(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if spec.Network == NetworkEgress && l.Egress() {
		// Egress comes up while the containers start (nothing waits for
		// it: runtimes listen on loopback); a failure is logged, and the
		// session runs without outbound network.
		s.egress = true
		s.slirpDone = make(chan struct{})
		go func() {
			defer close(s.slirpDone)
			if err := s.startSlirp(context.WithoutCancel(ctx)); err != nil && s.spec.Log != nil {
				fmt.Fprintf(s.spec.Log, "bay-sandbox: no outbound network: %v\n", err)
			}
		}()
	}
	return s, nil
}

// Egress reports whether this session got outbound network.
func (s *Session) Egress() bool { return s.egress }

// SocketPath is the host path of the Unix socket a container named name
// listens on; inside it is RunDir/<name>.sock.
func (s *Session) SocketPath(name string) string {
	return filepath.Join(s.spec.Dir, "sockets", name+".sock")
}

// InnerSocketPath is where the container sees its socket.
func InnerSocketPath(name string) string { return RunDir + "/" + name + ".sock" }

func (s *Session) startHolder(ctx context.Context) error {
	args := []string{"--unshare-user", "--unshare-net", "--uid", "0", "--gid", "0", "--die-with-parent"}
	args = append(args, systemBinds()...)
	// The holder prints its pid once bwrap has set everything up (its
	// loopback included: slirp4netns must not race bwrap configuring it)
	// and lives as long as its stdin pipe is open: Close closes it, and so
	// does the kernel when the gateway dies however it dies. (A
	// parent-death signal would follow the OS thread that started the
	// holder, not the gateway.)
	args = append(args, "--proc", "/proc", "--dev", "/dev", "--", "/bin/sh", "-c", "echo $$; read -r _ || true")
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("holder: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		lifeR.Close()
		lifeW.Close()
		return fmt.Errorf("holder: %w", err)
	}
	defer outR.Close()
	cmd := s.l.asHostUser(s.l.cfg.Bwrap, args...)
	cmd.Stdin = lifeR
	cmd.Stdout = outW
	cmd.Stderr = s.spec.Log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		lifeR.Close()
		lifeW.Close()
		outW.Close()
		return fmt.Errorf("start holder: %w", err)
	}
	lifeR.Close()
	outW.Close()
	s.life = lifeW
	s.holder = cmd
	go func() { _ = cmd.Wait(); close(s.waited) }()
	done := make(chan int, 1)
	go func() {
		line, _ := bufio.NewReader(outR).ReadString('\n')
		pid, _ := strconv.Atoi(strings.TrimSpace(line))
		done <- pid
	}()
	select {
	case pid := <-done:
		if pid <= 0 {
			return errors.New("holder exited before creating its namespaces (see the session log)")
		}
		s.pid = pid
		return nil
	case <-ctx.Done():
		return fmt.Errorf("start holder: %w", ctx.Err())
	case <-time.After(10 * time.Second):
		return errors.New("start holder: no namespace after 10s")
	}
}

// startSlirp attaches slirp4netns to the holder's namespace. As root it
// runs as root (the tun device is often root-only) inside its own sandbox
// (--enable-sandbox, --enable-seccomp); its access to the host's loopback
// is disabled.
func (s *Session) startSlirp(ctx context.Context) error {
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("egress: %w", err)
	}
	defer readyR.Close()
	exitR, exitW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		return fmt.Errorf("egress: %w", err)
	}
	ns := "/proc/" + strconv.Itoa(s.pid) + "/ns/"
	cmd := exec.Command(s.l.cfg.Slirp4netns,
		"--configure", "--mtu=65520", "--disable-host-loopback",
		"--enable-sandbox", "--enable-seccomp",
		"--ready-fd=3", "--exit-fd=4",
		"--userns-path="+ns+"user", "--netns-type=path", ns+"net", "tap0")
	cmd.ExtraFiles = []*os.File{readyW, exitR}
	cmd.Stdout, cmd.Stderr = s.spec.Log, s.spec.Log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // --exit-fd ends it
	if err := cmd.Start(); err != nil {
		readyW.Close()
		exitR.Close()
		exitW.Close()
		return fmt.Errorf("start slirp4netns: %w", err)
	}
	readyW.Close()
	exitR.Close()
	s.slirp, s.exitW = cmd, exitW
	go func() { _ = cmd.Wait() }()
	ready := make(chan bool, 1)
	go func() {
		b, _ := bufio.NewReader(readyR).ReadByte()
		ready <- b == '1'
	}()
	select {
	case ok := <-ready:
		if !ok {
			return errors.New("slirp4netns exited before configuring the namespace (see the session log)")
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("start slirp4netns: %w", ctx.Err())
	case <-time.After(10 * time.Second):
		return errors.New("start slirp4netns: not ready after 10s")
	}
}

// Alive reports whether the holder still runs.
func (s *Session) Alive() bool {
	select {
	case <-s.waited:
		return false
	default:
		return s.holder != nil
	}
}

// Close stops egress and the holder (the namespace goes with it) and
// removes the session directory. Containers must be stopped first.
func (s *Session) Close() {
	s.closeOnce.Do(func() {
		if s.slirpDone != nil {
			<-s.slirpDone
		}
		if s.exitW != nil {
			s.exitW.Close()
		}
		if s.life != nil {
			s.life.Close()
		}
		if s.slirp != nil && s.slirp.Process != nil {
			_ = s.slirp.Process.Kill()
		}
		if s.holder != nil && s.holder.Process != nil {
			_ = syscall.Kill(-s.holder.Process.Pid, syscall.SIGKILL)
			<-s.waited
		}
		_ = os.RemoveAll(s.spec.Dir)
	})
}

// writeEtc writes the session's passwd, group and resolv.conf, which are
// mounted over the host's: uid 1000 is shipyard whatever the host calls it.
func (l *Launcher) writeEtc(spec SessionSpec) error {
	dir := filepath.Join(spec.Dir, "etc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("session directory: %w", err)
	}
	files := map[string]string{
		"passwd": "root:x:0:0:root:/root:/usr/sbin/nologin\n" +
			fmt.Sprintf("%s:x:%d:%d:Shipyard sandbox:%s:/bin/bash\n", User, UID, GID, Workspace) +
			"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"group": "root:x:0:\n" + fmt.Sprintf("%s:x:%d:\n", User, GID) + "nogroup:x:65534:\n",
		// slirp4netns's DNS forwarder; without egress nothing answers.
		"resolv.conf": "nameserver 10.0.2.3\n",
		"hosts":       "127.0.0.1\tlocalhost " + Hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return fmt.Errorf("session directory: %w", err)
		}
	}
	return nil
}
