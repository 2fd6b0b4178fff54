package ship

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/bay-sandbox/bay/runtimes/ship/pyrt"
	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/gofiber/fiber/v2"
	"github.com/hashicorp/go-hclog"
)

// errNotRun is a cell that was never started: its caller's deadline passed
// while it waited for the interpreter.
var errNotRun = errors.New("deadline passed before the cell could run")

// maxFrame bounds one result frame (images included).
const maxFrame = 256 << 20

type kernelConfig struct {
	python         string
	dir            string
	env            []string
	cred           *syscall.Credential
	interruptGrace time.Duration
	startTimeout   time.Duration
	outputLimit    int
	log            hclog.Logger
	oom            oomCounter // "" when unknown
}

// kernel is Ship's one persistent interpreter. Calls are serialised by sem;
// restart and close may preempt a running call (they kill the process, and
// the call sees its interpreter vanish).
type kernel struct {
	cfg kernelConfig
	sem chan struct{}

	mu       sync.Mutex
	proc     *pyProc // nil when stopped
	busy     bool
	restarts int
	closed   bool
	engine   string // of the last interpreter that reported ready
}

// pyProc is one interpreter process.
type pyProc struct {
	cmd    *exec.Cmd
	pid    int
	req    *os.File // our end of its fd 3
	frames chan frame
	out    *capture
	exited chan struct{}

	// ready is closed when the driver reported in (info set) or failed
	// before that (readyErr set).
	ready    chan struct{}
	info     frame
	readyErr error

	nextID   int
	count    int // guarded by kernel.mu
	killOnce sync.Once
}

// frame is one message from the driver.
type frame struct {
	Type           string              `json:"type"`
	ID             int                 `json:"id"`
	Success        bool                `json:"success"`
	Error          *string             `json:"error"`
	ExecutionCount int                 `json:"execution_count"`
	Images         []map[string]string `json:"images"`
	Engine         string              `json:"engine"`
	PythonVersion  string              `json:"python_version"`
	Note           string              `json:"note"`
}

func newKernel(cfg kernelConfig) *kernel {
	return &kernel{cfg: cfg, sem: make(chan struct{}, 1)}
}

// warm starts an interpreter in the background so the first call does not
// pay for importing IPython.
func (k *kernel) warm() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := k.ensureLocked(); err != nil {
		k.cfg.log.Error("start python", "error", err)
	}
}

// ensureLocked returns the running interpreter, starting one if there is none.
func (k *kernel) ensureLocked() (*pyProc, error) {
	if k.closed {
		return nil, errors.New("ship is shutting down")
	}
	if k.proc != nil {
		select {
		case <-k.proc.exited:
			k.proc = nil
		default:
			return k.proc, nil
		}
	}
	p, err := k.spawn()
	if err != nil {
		return nil, err
	}
	k.proc = p
	return p, nil
}

func (k *kernel) spawn() (*pyProc, error) {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("request pipe: %w", err)
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, fmt.Errorf("result pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		respR.Close()
		respW.Close()
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	cmd := exec.Command(k.cfg.python, "-u", "-c", pyrt.Driver)
	cmd.Dir = k.cfg.dir
	cmd.Env = k.cfg.env
	cmd.Stdout, cmd.Stderr = outW, outW
	cmd.ExtraFiles = []*os.File{reqR, respW}
	// Own process group: a timeout kills the code's children too. Pdeathsig:
	// never outlive a crashed Ship.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: k.cfg.cred, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	reqR.Close()
	respW.Close()
	outW.Close()
	if err != nil {
		reqW.Close()
		respR.Close()
		outR.Close()
		return nil, fmt.Errorf("start %s: %w", k.cfg.python, err)
	}
	p := &pyProc{
		cmd:    cmd,
		pid:    cmd.Process.Pid,
		req:    reqW,
		frames: make(chan frame, 4),
		out:    newCapture(k.cfg.outputLimit),
		exited: make(chan struct{}),
		ready:  make(chan struct{}),
	}
	go p.out.run(outR)
	go p.readFrames(respR)
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	k.cfg.log.Debug("python started", "pid", p.pid)
	return p, nil
}

// readFrames turns fd 4 into frames; the first one must be "ready".
func (p *pyProc) readFrames(r io.ReadCloser) {
	defer r.Close()
	defer close(p.frames)
	br := bufio.NewReaderSize(r, 64<<10)
	first := true
	for {
		f, err := readFrame(br)
		if err != nil {
			if first {
				p.readyErr = fmt.Errorf("interpreter exited before it was ready: %w", err)
				close(p.ready)
			}
			return
		}
		if first {
			first = false
			if f.Type != "ready" {
				p.readyErr = fmt.Errorf("interpreter sent %q before ready", f.Type)
				close(p.ready)
				return
			}
			p.info = f
			close(p.ready)
			continue
		}
		p.frames <- f
	}
}

func readFrame(r io.Reader) (frame, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return frame{}, fmt.Errorf("frame of %d bytes exceeds %d", n, maxFrame)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return frame{}, err
	}
	var f frame
	if err := json.Unmarshal(buf, &f); err != nil {
		return frame{}, fmt.Errorf("decode frame: %w", err)
	}
	return f, nil
}

func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	msg := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(msg, uint32(len(b)))
	copy(msg[4:], b)
	_, err = w.Write(msg)
	return err
}

// kill stops p and everything it started, and waits for it to be gone.
func (p *pyProc) kill() {
	p.killOnce.Do(func() {
		// Only signal while not yet reaped, so a recycled pid is never hit.
		if p.alive() {
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
			_ = p.cmd.Process.Kill()
		}
		p.req.Close()
	})
	<-p.exited
}

// dropLocked forgets p as the current interpreter if it still is.
func (k *kernel) dropLocked(p *pyProc) {
	if k.proc == p {
		k.proc = nil
	}
}

// Exec runs one cell. A cell past its timeout is interrupted (SIGINT →
// KeyboardInterrupt); an interpreter that does not stop within the interrupt
// grace is killed and replaced, which loses its state.
func (k *kernel) Exec(ctx context.Context, code string, timeout time.Duration) (PythonExecResponse, error) {
	return k.ExecStream(ctx, code, timeout, nil)
}

// ExecStream is Exec that also hands the cell's output to sink as it is
// written (sink must not block; nil: no streaming).
func (k *kernel) ExecStream(ctx context.Context, code string, timeout time.Duration, sink func([]byte)) (PythonExecResponse, error) {
	select {
	case k.sem <- struct{}{}:
	case <-ctx.Done():
		return PythonExecResponse{}, errNotRun
	}
	defer func() { <-k.sem }()
	if ctx.Err() != nil {
		// The caller gave up while the cell was queued: never run it.
		return PythonExecResponse{}, errNotRun
	}

	k.mu.Lock()
	p, err := k.ensureLocked()
	if err == nil {
		k.busy = true
	}
	k.mu.Unlock()
	if err != nil {
		return PythonExecResponse{}, err
	}
	defer func() {
		k.mu.Lock()
		k.busy = false
		k.mu.Unlock()
	}()

	start := time.NewTimer(k.cfg.startTimeout)
	defer start.Stop()
	select {
	case <-p.ready:
	case <-start.C:
		k.discard(p)
		return PythonExecResponse{}, fmt.Errorf("python did not start within %s", k.cfg.startTimeout)
	case <-ctx.Done():
		return PythonExecResponse{}, ctx.Err()
	}
	if p.readyErr != nil {
		k.discard(p)
		return PythonExecResponse{}, fmt.Errorf("start python: %w%s", p.readyErr, tailNote(p.out))
	}
	k.mu.Lock()
	k.engine = p.info.Engine
	k.mu.Unlock()

	// The cell must end (interrupt grace included) before the caller's
	// deadline, so that its answer, not the caller's timeout, says why;
	// with no time left it does not start at all.
	run := timeout
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl) - k.cfg.interruptGrace
		if left <= 0 {
			return PythonExecResponse{}, errNotRun
		}
		run = min(run, left)
	}
	timeout = run

	oomBefore := k.cfg.oom.count()
	p.nextID++
	id := p.nextID
	marker := newMarker()
	p.out.begin(marker, sink)
	if err := writeFrame(p.req, map[string]any{"type": "exec", "id": id, "code": code, "marker": marker}); err != nil {
		k.discard(p)
		return failed(0, "the interpreter is gone (state lost); it will be restarted on the next call", p.out.finish(0)), nil
	}

	timer := time.NewTimer(run)
	defer timer.Stop()
	var note string
	f, got := p.await(id, timer.C, ctx.Done())
	if got == awaitTimeout {
		// Timed out (or cancelled): interrupt, and give it a moment.
		note = fmt.Sprintf("execution timed out after %s and was interrupted", timeout.Round(time.Millisecond))
		if ctx.Err() != nil {
			note = "execution cancelled (its caller gave up) and interrupted"
		}
		_ = syscall.Kill(p.pid, syscall.SIGINT)
		grace := time.NewTimer(k.cfg.interruptGrace)
		f, got = p.await(id, grace.C, nil)
		grace.Stop()
		if got == awaitTimeout {
			k.discard(p)
			k.mu.Lock()
			k.restarts++
			_, _ = k.ensureLocked() // a fresh interpreter for the next call
			k.mu.Unlock()
			msg := note + fmt.Sprintf("; it did not stop within %s, so the interpreter was restarted (variables lost, execution_count reset)", k.cfg.interruptGrace)
			return failed(0, msg, p.out.finish(0)), nil
		}
	}
	if got == awaitGone {
		k.discard(p)
		msg := "the interpreter exited unexpectedly (state lost); it will be restarted on the next call"
		if k.cfg.oom.count() > oomBefore {
			msg = "out of memory: the interpreter was killed at the container's memory limit (state lost); it will be restarted on the next call"
		}
		return failed(p.count, msg, p.out.finish(100*time.Millisecond)), nil
	}
	text := p.out.finish(2 * time.Second)
	k.mu.Lock()
	p.count = f.ExecutionCount
	k.mu.Unlock()
	resp := PythonExecResponse{
		Success:        f.Success && note == "",
		ExecutionCount: f.ExecutionCount,
		Output:         PythonOutput{Text: text, Images: f.Images},
		Error:          f.Error,
	}
	if resp.Output.Images == nil {
		resp.Output.Images = []map[string]string{}
	}
	if note != "" {
		msg := note
		if f.Error != nil && *f.Error != "" {
			msg += "\n" + *f.Error
		}
		resp.Error = &msg
	}
	if resp.Success {
		resp.Error = nil
	} else if resp.Error == nil {
		msg := "execution failed"
		resp.Error = &msg
	}
	return resp, nil
}

// Outcomes of await.
const (
	awaitResult  = iota // the cell's result arrived
	awaitTimeout        // timeout or cancel fired first
	awaitGone           // the interpreter went away
)

// await waits for the result of cell id. Frames of earlier, abandoned cells
// are skipped.
func (p *pyProc) await(id int, timeout <-chan time.Time, cancel <-chan struct{}) (frame, int) {
	for {
		select {
		case f, ok := <-p.frames:
			if !ok {
				return frame{}, awaitGone
			}
			if f.Type == "result" && f.ID == id {
				return f, awaitResult
			}
		case <-timeout:
			return frame{}, awaitTimeout
		case <-cancel:
			return frame{}, awaitTimeout
		}
	}
}

func (p *pyProc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// discard kills p and forgets it.
func (k *kernel) discard(p *pyProc) {
	p.kill()
	k.mu.Lock()
	k.dropLocked(p)
	k.mu.Unlock()
}

func failed(count int, msg, text string) PythonExecResponse {
	return PythonExecResponse{ExecutionCount: count, Output: PythonOutput{Text: text, Images: []map[string]string{}}, Error: &msg}
}

// tailNote adds what a failed interpreter printed to an error.
func tailNote(c *capture) string {
	out := c.finish(0)
	if out == "" {
		return ""
	}
	return ": " + out
}

func newMarker() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "\x00ship-end-" + hex.EncodeToString(b[:]) + "\x00"
}

// restart replaces the interpreter, preempting a running cell.
func (k *kernel) restart() KernelStatus {
	k.mu.Lock()
	old := k.proc
	k.proc = nil
	k.mu.Unlock()
	if old != nil {
		old.kill()
	}
	k.mu.Lock()
	k.restarts++
	if _, err := k.ensureLocked(); err != nil {
		k.cfg.log.Error("restart python", "error", err)
	}
	k.mu.Unlock()
	return k.status()
}

func (k *kernel) status() KernelStatus {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := KernelStatus{Status: "stopped", Engine: k.engine, Python: k.cfg.python, Restarts: k.restarts}
	p := k.proc
	if p == nil || !p.alive() {
		return st
	}
	st.PID = p.pid
	st.ExecutionCount = p.count
	select {
	case <-p.ready:
		if p.readyErr != nil {
			return st
		}
		st.Engine = p.info.Engine
		st.PythonVersion = p.info.PythonVersion
		st.Status = "ready"
		if k.busy {
			st.Status = "busy"
		}
	default:
		st.Status = "starting"
	}
	return st
}

// waitReady blocks until the current interpreter reported in (for restart
// callers that want a usable interpreter), bounded by ctx.
func (k *kernel) waitReady(ctx context.Context) {
	k.mu.Lock()
	p := k.proc
	k.mu.Unlock()
	if p == nil {
		return
	}
	select {
	case <-p.ready:
	case <-p.exited:
	case <-ctx.Done():
	}
}

func (k *kernel) close() {
	k.mu.Lock()
	k.closed = true
	p := k.proc
	k.proc = nil
	k.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

func (s *Server) pythonExec(c *fiber.Ctx) error {
	var req PythonExecRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	timeout, err := timeoutOf(req.Timeout)
	if err != nil {
		return err
	}
	deadline := c.Get(wire.DeadlineHeader)
	if wire.WantsEventStream(c.Get(fiber.HeaderAccept)) {
		return s.streamExec(c, func(ctx context.Context, q *outputQueue) (any, error) {
			ctx, cancel := wire.CallContext(ctx, deadline)
			defer cancel()
			resp, err := s.py.ExecStream(ctx, req.Code, timeout, func(b []byte) { q.add(wire.StreamOutput, b) })
			if errors.Is(err, errNotRun) {
				return nil, wire.NewAPIError(fiber.StatusGatewayTimeout, wire.CodeTimeout, "the cell waited for the interpreter past its deadline and was not run")
			}
			if err != nil {
				return nil, wire.NewAPIError(fiber.StatusServiceUnavailable, wire.CodeUnavailable, "python: %v", err)
			}
			return resp, nil
		})
	}
	ctx, cancel := wire.CallContext(s.work, deadline)
	defer cancel()
	resp, err := s.py.Exec(ctx, req.Code, timeout)
	if errors.Is(err, errNotRun) {
		return wire.NewAPIError(fiber.StatusGatewayTimeout, wire.CodeTimeout, "the cell waited for the interpreter past its deadline and was not run")
	}
	if err != nil {
		return wire.NewAPIError(fiber.StatusServiceUnavailable, wire.CodeUnavailable, "python: %v", err)
	}
	return c.JSON(resp)
}

func (s *Server) pythonRestart(c *fiber.Ctx) error {
	s.py.restart()
	ctx, cancel := context.WithTimeout(s.work, s.cfg.PythonStartTimeout)
	defer cancel()
	s.py.waitReady(ctx)
	return c.JSON(s.py.status())
}

func (s *Server) pythonStatus(c *fiber.Ctx) error {
	return c.JSON(s.py.status())
}
