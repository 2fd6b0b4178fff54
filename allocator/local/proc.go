package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/bay-sandbox/bay/sandbox"
)

// proc is one run of a container's binary.
type proc struct {
	pid        int
	port       int
	binary     string
	tag        string // value of tagEnv in its environment
	startTicks uint64
	started    time.Time
	logPath    string
	url        string             // its endpoint
	box        *sandbox.Container // isolated runs only
	oomKills   int                // set before exited is closed

	exited chan struct{} // closed once reaped; state is set before
	state  *os.ProcessState
}

func (p *proc) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// exitReason describes how a reaped process ended.
func (p *proc) exitReason() string {
	if p.oomKills > 0 {
		return fmt.Sprintf("out of memory: the kernel killed %d process(es) at the container's memory limit", p.oomKills)
	}
	if p.state == nil {
		return "exited"
	}
	return p.state.String()
}

// errExited is a child that ended before answering /health.
type errExited struct{ p *proc }

func (e *errExited) Error() string { return e.p.exitReason() + " before becoming healthy" }

// launch starts c and waits for its /health, retrying on another port when
// the child lost a race for its port. On failure nothing it started is left
// running and the error names the container and carries its log tail.
func (a *Allocator) launch(ctx context.Context, s *session, c *container, preferPort int, first bool) (*proc, error) {
	var lastErr error
	for attempt := 0; attempt < a.cfg.PortAttempts; attempt++ {
		port := 0
		if s.box != nil {
			// Sandboxed runtimes listen in the session's own network
			// namespace: no host port, no race for one.
		} else if attempt == 0 && preferPort > 0 && a.ports.claim(preferPort) {
			port = preferPort
		} else {
			var err error
			if port, err = a.ports.pick(); err != nil {
				return nil, fmt.Errorf("container %q: %w", c.spec.Name, err)
			}
		}
		p, err := a.spawn(s, c, port, first && attempt == 0)
		if err != nil {
			if port > 0 {
				a.ports.release(port)
			}
			return nil, fmt.Errorf("container %q: %w", c.spec.Name, err)
		}
		if first {
			s.req.Report(allocator.PhaseHealthCheck)
		}
		hctx, cancel := context.WithTimeout(ctx, a.cfg.StartTimeout)
		err = a.waitHealthy(hctx, p)
		cancel()
		if err == nil {
			return p, nil
		}
		a.terminate(context.Background(), p, a.cfg.DestroyGrace)
		tail := logTail(p.logPath, 20)
		lastErr = fmt.Errorf("container %q (%s, %s): %w%s", c.spec.Name, filepath.Base(c.bin), p.url, err, formatTail(tail))
		var ee *errExited
		if s.box == nil && errors.As(err, &ee) && portLost(port, tail) {
			a.log.Debug("port lost to another process, retrying", "session", s.req.SessionID, "container", c.spec.Name, "port", port)
			continue
		}
		return nil, lastErr
	}
	return nil, lastErr
}

func formatTail(tail string) string {
	if tail == "" {
		return ""
	}
	return "\n--- log tail ---\n" + tail
}

// portLost reports whether a child that exited early most likely failed to
// bind its port because another process took it.
func portLost(port int, tail string) bool {
	if strings.Contains(tail, "address already in use") {
		return true
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return true
	}
	l.Close()
	return false
}

// spawn starts one process of c on port; its reaper releases the port and
// kills any straggler of its process group once it exits.
func (a *Allocator) spawn(s *session, c *container, port int, truncate bool) (*proc, error) {
	logPath := filepath.Join(s.logDir, c.spec.Name+".log")
	logFile, err := openLog(logPath, truncate, a.cfg.MaxLogBytes)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptor
	tag := fmt.Sprintf("%s/%s/%s/%d", a.instance, s.req.SessionID, c.spec.Name, a.spawns.Add(1))
	var cmd *exec.Cmd
	var box *sandbox.Container
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	if s.box != nil {
		box, url, err = a.sandboxCommand(s, c, append(slices.Clip(c.env), tagEnv+"="+tag))
		if err != nil {
			return nil, err
		}
		cmd = box.Cmd
		fmt.Fprintf(logFile, "--- bay: %s %s (sandboxed, %s)\n", time.Now().UTC().Format(time.RFC3339Nano), c.bin, url)
	} else {
		// Loopback only: the runtimes have no authentication of their own, and
		// both default to listening on every interface.
		args := []string{"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--workspace", s.cargoDir}
		if a.mountAt != "" {
			args = append(args, "--mount-workspace", a.mountAt)
		}
		fmt.Fprintf(logFile, "--- bay: %s %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), c.bin, strings.Join(args, " "))
		cmd = exec.Command(c.bin, args...)
		cmd.Dir = s.cargoDir
		cmd.Env = append(slices.Clip(c.env), "PORT="+strconv.Itoa(port), tagEnv+"="+tag)
		cmd.SysProcAttr = &syscall.SysProcAttr{}
		if a.mountAt != "" {
			// The runtime mounts the cargo in it; everything it starts inherits it.
			cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNS
		}
	}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// A new session (and so a new process group) per runtime: the group gets
	// the signals, the session id finds descendants that moved to groups of
	// their own, and the tag finds those that even left the session
	// (daemons). Pdeathsig covers a gateway that dies without cleaning up.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		if box != nil {
			box.Release()
		}
		return nil, fmt.Errorf("run %s: %w", c.bin, err)
	}
	p := &proc{
		pid:     cmd.Process.Pid,
		port:    port,
		binary:  c.bin,
		tag:     tag,
		started: time.Now(),
		logPath: logPath,
		url:     url,
		box:     box,
		exited:  make(chan struct{}),
	}
	if st, err := readProcStat(p.pid); err == nil {
		p.startTicks = st.startTicks
	}
	a.track(s, p, c.spec.Name)
	if box != nil && a.box.Cgroups() {
		a.wg.Add(1)
		go a.watchOOM(s, c, p)
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		_ = cmd.Wait()
		p.state = cmd.ProcessState
		// No descendant (Python kernel, shell job, browser) may survive its
		// runtime.
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		if n := sweep(p.pid, p.tag); n > 0 {
			a.log.Debug("killed descendants of an exited runtime", "container", c.spec.Name, "count", n)
		}
		if p.box != nil {
			p.oomKills = p.box.OOMKilled()
			p.box.Release()
		} else {
			a.ports.release(p.port)
		}
		a.untrack(s, p)
		close(p.exited)
	}()
	return p, nil
}

// openLog opens a container log, truncating it for a fresh session and
// rotating it to .1 when it has grown past max.
func openLog(path string, truncate bool, max int64) (*os.File, error) {
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if truncate {
		flags |= os.O_TRUNC
	} else if fi, err := os.Stat(path); err == nil && fi.Size() > max {
		_ = os.Rename(path, path+".1")
	}
	return os.OpenFile(path, flags, 0o644)
}

// logTail returns the last n lines of a log file (at most 4 KiB).
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 4096
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(fi.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitHealthy polls /health until it answers 200 with a status other than
// "unhealthy", the process exits, or ctx ends.
func (a *Allocator) waitHealthy(ctx context.Context, p *proc) error {
	base, hc := wire.Endpoint(p.url, a.http)
	url := base + "/health"
	t := time.NewTicker(a.cfg.HealthInterval)
	defer t.Stop()
	for {
		if p.hasExited() {
			return &errExited{p}
		}
		if a.healthy(ctx, hc, url) {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("not healthy after %s", a.cfg.StartTimeout)
			}
			return ctx.Err()
		case <-p.exited:
			return &errExited{p}
		case <-t.C:
		}
	}
}

func (a *Allocator) healthy(ctx context.Context, hc *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	var body struct {
		Status string `json:"status"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	return body.Status != "unhealthy"
}

// terminate sends SIGTERM to p's process group and SIGKILL after grace, or
// at once when ctx ends; it returns once p is reaped.
func (a *Allocator) terminate(ctx context.Context, p *proc, grace time.Duration) {
	if p == nil || p.hasExited() {
		return
	}
	_ = syscall.Kill(-p.pid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
		return
	case <-t.C:
	case <-ctx.Done():
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	<-p.exited
}

func (a *Allocator) terminateAll(ctx context.Context, procs []*proc, grace time.Duration) {
	var wg sync.WaitGroup
	for _, p := range procs {
		if p != nil {
			wg.Go(func() { a.terminate(ctx, p, grace) })
		}
	}
	wg.Wait()
}

// supervise watches one container of a running session: an unexpected exit
// is reported at once (ContainerDown) and the container is restarted after
// the profile's delay until healthy (ContainerUp); when the attempts are
// used up the whole session is given up (SessionGone).
func (a *Allocator) supervise(s *session, c *container) {
	defer a.wg.Done()
	defer s.wg.Done()
	policy := s.req.Profile.Restart
	stable := a.cfg.StableAfter
	if stable <= 0 {
		stable = max(10*time.Second, 5*policy.Delay)
	}
	failures := 0
	for {
		a.mu.Lock()
		p := c.proc
		a.mu.Unlock()
		select {
		case <-s.ctx.Done():
			return
		case <-p.exited:
		}
		a.mu.Lock()
		if s.ended {
			a.mu.Unlock()
			return
		}
		c.up = false
		a.mu.Unlock()
		reason := p.exitReason()
		a.log.Warn("container exited", "session", s.req.SessionID, "container", c.spec.Name, "reason", reason)
		a.emit(allocator.Event{Kind: allocator.ContainerDown, SandboxID: s.req.SandboxID, SessionID: s.req.SessionID, Container: c.spec.Name, Reason: reason})
		if time.Since(p.started) >= stable {
			failures = 0
		}
		for {
			if failures >= policy.Attempts {
				a.giveUp(s, fmt.Sprintf("container %q: restarts exhausted (%d): %s", c.spec.Name, policy.Attempts, reason))
				return
			}
			failures++
			if !sleepCtx(s.ctx, policy.Delay) {
				return
			}
			np, err := a.launch(s.ctx, s, c, p.port, false)
			if err != nil {
				if s.ctx.Err() != nil {
					return
				}
				reason = err.Error()
				a.log.Warn("container restart failed", "session", s.req.SessionID, "container", c.spec.Name, "attempt", failures, "error", err)
				continue
			}
			a.mu.Lock()
			if s.ended {
				grace := s.grace
				a.mu.Unlock()
				a.terminate(context.Background(), np, grace)
				return
			}
			c.proc = np
			c.up = true
			c.endpoint = endpointOf(c, np)
			ep := c.endpoint
			a.mu.Unlock()
			a.log.Info("container restarted", "session", s.req.SessionID, "container", c.spec.Name, "attempt", failures, "url", ep.URL)
			a.emit(allocator.Event{Kind: allocator.ContainerUp, SandboxID: s.req.SandboxID, SessionID: s.req.SessionID, Container: c.spec.Name, Reason: "restarted", Endpoint: &ep})
			break
		}
	}
}

// giveUp ends a session that cannot come back: the other containers are
// stopped, the session is forgotten, and SessionGone is sent.
func (a *Allocator) giveUp(s *session, reason string) {
	a.mu.Lock()
	if s.ended {
		a.mu.Unlock()
		return
	}
	s.ended = true
	s.grace = a.cfg.GracePeriod
	if a.sessions[s.req.SessionID] == s {
		delete(a.sessions, s.req.SessionID)
	}
	var procs []*proc
	for _, c := range s.conts {
		procs = append(procs, c.proc)
		c.up = false
	}
	a.mu.Unlock()
	s.cancel()
	a.terminateAll(context.Background(), procs, a.cfg.GracePeriod)
	s.closeSandbox()
	a.log.Warn("session gone", "session", s.req.SessionID, "reason", reason)
	a.emit(allocator.Event{Kind: allocator.SessionGone, SandboxID: s.req.SandboxID, SessionID: s.req.SessionID, Reason: reason})
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// containerEnv is the child's environment without PORT: the gateway's own
// environment minus its secrets, the runtime type's extra env, the profile
// env (placeholders expanded), then the identity variables, later wins.
// CARGO_PATH and BAY_WORKSPACE_PATH name the cargo where the container sees
// it.
func (a *Allocator) containerEnv(req allocator.StartRequest, spec *profiles.Container, cargoDir string) []string {
	e := newEnvList()
	if a.box != nil {
		// A sandbox inherits nothing of the gateway's environment: a
		// system PATH and the locale, then what the runtime type needs.
		e.set("PATH", sandboxPath)
		for _, k := range []string{"LANG", "LC_ALL", "TZ"} {
			if v, ok := os.LookupEnv(k); ok {
				e.set(k, v)
			}
		}
		cargoDir = sandbox.Workspace
	} else {
		for _, kv := range os.Environ() {
			k, _, _ := strings.Cut(kv, "=")
			if !dropped(k, a.cfg.DropEnv) {
				e.addKV(kv)
			}
		}
	}
	for _, kv := range a.cfg.ExtraEnv[spec.RuntimeType] {
		e.addKV(kv)
	}
	if a.mountAt != "" {
		cargoDir = a.mountAt // where the container sees it
	}
	penv := req.Profile.ContainerEnv(spec, profiles.Vars{SandboxID: req.SandboxID, SessionID: req.SessionID, CargoPath: cargoDir})
	for _, k := range slices.Sorted(maps.Keys(penv)) {
		e.set(k, penv[k])
	}
	e.unset(profiles.ProfileEnvVar)
	if len(penv) > 0 {
		e.set(profiles.ProfileEnvVar, profiles.EnvKeys(penv))
	}
	e.set("BAY_SANDBOX_ID", req.SandboxID)
	e.set("BAY_SESSION_ID", req.SessionID)
	e.set("BAY_CONTAINER_NAME", spec.Name)
	e.set("BAY_WORKSPACE_PATH", cargoDir)
	// The gateway's own environment never carries a session's secret to a
	// container: only this session's, when the gateway made one.
	e.unset(allocator.SecretEnv)
	if req.Secret != "" {
		e.set(allocator.SecretEnv, req.Secret)
	}
	if req.Cargo.SizeLimitMB > 0 {
		e.set("BAY_CARGO_SIZE_LIMIT_MB", strconv.Itoa(req.Cargo.SizeLimitMB))
	}
	e.unset("PORT")
	return e.list()
}

func dropped(key string, patterns []string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(key, prefix) {
				return true
			}
		} else if key == p {
			return true
		}
	}
	return false
}

// envList is an ordered KEY=VALUE set where a later set replaces a value.
type envList struct {
	keys []string
	vals map[string]string
}

func newEnvList() *envList { return &envList{vals: map[string]string{}} }

func (e *envList) addKV(kv string) {
	k, v, ok := strings.Cut(kv, "=")
	if ok && k != "" {
		e.set(k, v)
	}
}

func (e *envList) set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

func (e *envList) unset(k string) {
	if _, ok := e.vals[k]; ok {
		delete(e.vals, k)
		e.keys = slices.DeleteFunc(e.keys, func(x string) bool { return x == k })
	}
}

func (e *envList) list() []string {
	out := make([]string, 0, len(e.keys))
	for _, k := range e.keys {
		out = append(out, k+"="+e.vals[k])
	}
	return out
}

// portSet hands out free loopback ports and remembers the ones this
// allocator's children hold, so two concurrent starts never pick the same.
type portSet struct {
	mu   sync.Mutex
	used map[int]bool
}

func newPortSet() *portSet { return &portSet{used: map[int]bool{}} }

func (s *portSet) pick() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if s.claim(port) {
			return port, nil
		}
	}
	return 0, errors.New("find a free port: none left")
}

func (s *portSet) claim(port int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used[port] {
		return false
	}
	s.used[port] = true
	return true
}

func (s *portSet) release(port int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.used, port)
}
