package ship

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/gofiber/fiber/v2"
	"github.com/hashicorp/go-hclog"
)

// pipeDrainDelay bounds how long a finished command's output pipes are read
// after it exits: a child it left running in the background may hold them
// open forever.
const pipeDrainDelay = 500 * time.Millisecond

// killGrace is how long a killed background process gets between SIGTERM
// and SIGKILL.
const killGrace = time.Second

func (s *Server) shellExec(c *fiber.Ctx) error {
	var req ShellExecRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Command == "" {
		return validationErr("command must not be empty")
	}
	for k, v := range req.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return validationErr("env: invalid variable %q", k)
		}
	}
	timeout, err := timeoutOf(req.Timeout)
	if err != nil {
		return err
	}
	cwd := req.Cwd
	if cwd == "" {
		cwd = "."
	}
	t, err := s.ws.resolve("cwd", cwd, true)
	if err != nil {
		return err
	}
	fi, err := s.ws.root.Stat(t.real)
	if err != nil {
		return fsError("cwd", t, "stat", err)
	}
	if !fi.IsDir() {
		return invalidPath("cwd", "not_a_directory", "cwd %s is not a directory", t.rel)
	}
	cmd := exec.Command(s.shell, "-c", req.Command)
	cmd.Dir = s.ws.abs(t)
	marker := runMarker()
	cmd.Env = append(mergeEnv(s.env, req.Env), marker)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.owner.sysCredential()}
	cmd.WaitDelay = pipeDrainDelay
	if req.Background {
		p, err := s.procs.start(cmd, req.Command)
		if err != nil {
			return fmt.Errorf("start background command: %w", err)
		}
		return c.JSON(ShellExecResponse{Success: true, PID: p.pid, ProcessID: p.id})
	}
	deadline := c.Get(wire.DeadlineHeader)
	if wire.WantsEventStream(c.Get(fiber.HeaderAccept)) {
		return s.streamExec(c, func(ctx context.Context, q *outputQueue) (any, error) {
			ctx, cancel := wire.CallContext(ctx, deadline)
			defer cancel()
			return s.runForeground(ctx, cmd, marker, timeout, streamWriter{q, wire.StreamStdout}, streamWriter{q, wire.StreamStderr}), nil
		})
	}
	ctx, cancel := wire.CallContext(s.work, deadline)
	defer cancel()
	return c.JSON(s.runForeground(ctx, cmd, marker, timeout, nil, nil))
}

// runMarker is an environment entry that tags every process a command
// starts (children inherit it), so a timeout can find them all.
func runMarker() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "BAY_SHELL_RUN=" + hex.EncodeToString(b[:])
}

// runForeground runs cmd to completion or until timeout, or until ctx ends
// (the caller's deadline passed, it went away, or ship shuts down), when it
// and every process it started are killed. Non-nil tees also get the
// output as it is written (streaming).
func (s *Server) runForeground(ctx context.Context, cmd *exec.Cmd, marker string, timeout time.Duration, stdoutTee, stderrTee io.Writer) ShellExecResponse {
	stdout, stderr := newHeadBuffer(s.cfg.OutputLimit), newHeadBuffer(s.cfg.OutputLimit)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if stdoutTee != nil {
		cmd.Stdout = io.MultiWriter(stdout, stdoutTee)
	}
	if stderrTee != nil {
		cmd.Stderr = io.MultiWriter(stderr, stderrTee)
	}
	if err := cmd.Start(); err != nil {
		msg := fmt.Sprintf("start command: %v", err)
		return ShellExecResponse{Error: &msg}
	}
	pid := cmd.Process.Pid
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var werr error
	var why string
	select {
	case werr = <-waited:
	case <-timer.C:
		why = fmt.Sprintf("command timed out after %s; it and every process it started were killed", timeout)
	case <-ctx.Done():
		why = "command cancelled (its caller gave up); it and every process it started were killed"
		if s.work.Err() != nil {
			why = "command cancelled: ship is shutting down; it and every process it started were killed"
		}
	}
	if why != "" {
		killTree(pid, marker)
		<-waited
		code := -1
		return ShellExecResponse{ReturnCode: &code, Stdout: stdout.String(), Stderr: stderr.String(), PID: pid, Error: &why}
	}
	resp := ShellExecResponse{Stdout: stdout.String(), Stderr: stderr.String(), PID: pid}
	if werr != nil && !errors.Is(werr, exec.ErrWaitDelay) {
		var ee *exec.ExitError
		if !errors.As(werr, &ee) {
			msg := fmt.Sprintf("wait for command: %v", werr)
			resp.Error = &msg
			return resp
		}
	}
	code := exitCode(cmd)
	resp.ReturnCode = &code
	resp.Success = code == 0
	return resp
}

// exitCode follows the shell convention: 128+n for death by signal n.
func exitCode(cmd *exec.Cmd) int {
	st := cmd.ProcessState
	if st == nil {
		return -1
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// procTable holds the background processes of this Ship.
type procTable struct {
	mu          sync.Mutex
	procs       map[string]*bgProc
	limit       int // bytes kept per stream
	maxFinished int
	log         hclog.Logger
}

type bgProc struct {
	id      string
	pid     int
	command string
	started time.Time
	stdout  *tailBuffer
	stderr  *tailBuffer
	done    chan struct{}

	mu     sync.Mutex
	status string
	code   *int
	ended  time.Time
	killed bool
}

func newProcTable(limit int, log hclog.Logger) *procTable {
	return &procTable{procs: map[string]*bgProc{}, limit: limit, maxFinished: 100, log: log}
}

func (t *procTable) start(cmd *exec.Cmd, command string) (*bgProc, error) {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	p := &bgProc{
		id:      "proc-" + hex.EncodeToString(rnd[:]),
		command: command,
		started: time.Now().UTC(),
		stdout:  newTailBuffer(t.limit),
		stderr:  newTailBuffer(t.limit),
		done:    make(chan struct{}),
		status:  "running",
	}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.pid = cmd.Process.Pid
	t.mu.Lock()
	t.procs[p.id] = p
	t.pruneLocked()
	t.mu.Unlock()
	t.log.Debug("background process started", "process_id", p.id, "pid", p.pid)
	go func() {
		_ = cmd.Wait()
		code := exitCode(cmd)
		p.mu.Lock()
		p.code = &code
		p.ended = time.Now().UTC()
		switch {
		case p.killed:
			p.status = "killed"
		case code == 0:
			p.status = "completed"
		default:
			p.status = "failed"
		}
		p.mu.Unlock()
		close(p.done)
		t.log.Debug("background process ended", "process_id", p.id, "code", code)
	}()
	return p, nil
}

// pruneLocked forgets the oldest finished processes beyond maxFinished.
func (t *procTable) pruneLocked() {
	var finished []*bgProc
	for _, p := range t.procs {
		select {
		case <-p.done:
			finished = append(finished, p)
		default:
		}
	}
	if len(finished) <= t.maxFinished {
		return
	}
	sort.Slice(finished, func(i, j int) bool { return finished[i].started.Before(finished[j].started) })
	for _, p := range finished[:len(finished)-t.maxFinished] {
		delete(t.procs, p.id)
	}
}

func (t *procTable) get(id string) (*bgProc, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.procs[id]
	return p, ok
}

func (t *procTable) list() []ProcessInfo {
	t.mu.Lock()
	ps := make([]*bgProc, 0, len(t.procs))
	for _, p := range t.procs {
		ps = append(ps, p)
	}
	t.mu.Unlock()
	sort.Slice(ps, func(i, j int) bool { return ps[i].started.Before(ps[j].started) })
	out := make([]ProcessInfo, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.info())
	}
	return out
}

func (p *bgProc) info() ProcessInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	pi := ProcessInfo{ProcessID: p.id, PID: p.pid, Command: p.command, Status: p.status, ReturnCode: p.code,
		StartedAt: p.started.Format(time.RFC3339Nano)}
	if !p.ended.IsZero() {
		pi.EndedAt = p.ended.Format(time.RFC3339Nano)
	}
	return pi
}

func (p *bgProc) output() ProcessOutput {
	return ProcessOutput{ProcessInfo: p.info(), Stdout: p.stdout.String(), Stderr: p.stderr.String()}
}

// kill stops p's whole process group: SIGTERM, then SIGKILL after a grace.
func (p *bgProc) kill(ctx context.Context) {
	select {
	case <-p.done:
		return
	default:
	}
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	_ = syscall.Kill(-p.pid, syscall.SIGTERM)
	t := time.NewTimer(killGrace)
	defer t.Stop()
	select {
	case <-p.done:
		return
	case <-t.C:
	case <-ctx.Done():
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	<-p.done
}

func (t *procTable) killAll() {
	t.mu.Lock()
	ps := make([]*bgProc, 0, len(t.procs))
	for _, p := range t.procs {
		ps = append(ps, p)
	}
	t.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.kill(context.Background())
		}()
	}
	wg.Wait()
}

func (s *Server) listProcesses(c *fiber.Ctx) error {
	return c.JSON(ProcessList{Processes: s.procs.list()})
}

func (s *Server) process(c *fiber.Ctx) (*bgProc, error) {
	id := c.Params("id")
	p, ok := s.procs.get(id)
	if !ok {
		return nil, wire.NewAPIError(http.StatusNotFound, "not_found", "no background process %q", id)
	}
	return p, nil
}

func (s *Server) getProcess(c *fiber.Ctx) error {
	p, err := s.process(c)
	if err != nil {
		return err
	}
	return c.JSON(p.output())
}

func (s *Server) killProcess(c *fiber.Ctx) error {
	p, err := s.process(c)
	if err != nil {
		return err
	}
	p.kill(s.work)
	return c.JSON(p.output())
}
