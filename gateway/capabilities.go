package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/bay-sandbox/bay/gateway/apierr"
	"github.com/bay-sandbox/bay/gateway/service"
	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/runtimes/gull"
	"github.com/bay-sandbox/bay/runtimes/ship"
	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/bay-sandbox/bay/store"
)

// target is a resolved capability call: the sandbox and the runtime serving
// it. done must be called when the call is over (it lets the idle reaper
// near the session again).
type target struct {
	sb        store.Sandbox
	url       string
	sessionID string
	done      func()
}

// capableSandbox loads the sandbox and refuses a capability its profile
// lacks, before any compute starts.
func (s *Server) capableSandbox(c *fiber.Ctx, capability string) (store.Sandbox, error) {
	sb, err := s.loadSandbox(c)
	if err != nil {
		return store.Sandbox{}, err
	}
	p, err := s.svc.Profile(sb)
	if err != nil {
		return store.Sandbox{}, err
	}
	if _, ok := p.Route(capability); !ok {
		return store.Sandbox{}, service.CapabilityError(p, capability)
	}
	return sb, nil
}

// route checks the capability (capableSandbox), then ensures a session and
// resolves the container.
func (s *Server) route(c *fiber.Ctx, capability string) (target, error) {
	sb, err := s.capableSandbox(c, capability)
	if err != nil {
		return target{}, err
	}
	ep, sessionID, done, err := s.svc.Acquire(c.UserContext(), sb, capability)
	if err != nil {
		return target{}, err
	}
	return target{sb: sb, url: ep.URL, sessionID: sessionID, done: done}, nil
}

// call routes a capability call (route) and bounds it by the call's own
// timeout plus the round trip grace. release ends both; it must be called
// when the call is over.
func (s *Server) call(c *fiber.Ctx, capability string, timeoutSec int) (t target, ctx context.Context, release func(), err error) {
	t, err = s.route(c, capability)
	if err != nil {
		return target{}, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), time.Duration(timeoutSec)*time.Second+s.cfg.RuntimeGrace)
	return t, ctx, func() { cancel(); t.done() }, nil
}

// shipClient and gullClient talk to t's runtime with its session's secret.
func (s *Server) shipClient(t target) *ship.Client {
	return ship.NewClient(t.url, s.runtimeHTTP(t.sessionID))
}

func (s *Server) gullClient(t target) *gull.Client {
	return gull.NewClient(t.url, s.runtimeHTTP(t.sessionID))
}

// runtimeHTTP is the shared runtime HTTP client, sending sessionID's secret.
func (s *Server) runtimeHTTP(sessionID string) *http.Client {
	return wire.WithSecret(s.hc, s.svc.RuntimeSecret(sessionID))
}

type execMeta struct {
	IncludeCode bool    `json:"include_code"`
	Description *string `json:"description"`
	Tags        *string `json:"tags"`
	// learn is the browser calls' learn flag, recorded with the entry (not
	// part of the python/shell bodies).
	learn bool
}

// record stores one history entry and returns its id. History is best effort
// for the caller: a failure to record is logged, the result still returned.
func (s *Server) record(ctx context.Context, t target, execType, code string, success bool, elapsed time.Duration, output, errText *string, payloadRef *string, meta execMeta) string {
	id := service.NewID("exec-")
	e := store.Execution{
		ID: id, SandboxID: t.sb.ID, Owner: t.sb.Owner, SessionID: t.sessionID, ExecType: execType,
		Code: code, Success: success, ExecutionTimeMS: elapsed.Milliseconds(), Output: output, Error: errText,
		PayloadRef: payloadRef, Description: meta.Description, Tags: normalizeTags(meta.Tags), CreatedAt: s.svc.Now(),
		LearnEnabled: meta.learn,
	}
	if meta.learn {
		e.LearnStatus = strPtr(store.LearnPending)
	}
	if err := s.store.CreateExecution(ctx, e); err != nil {
		s.log.Warn("record history", "sandbox_id", t.sb.ID, "error", err)
	}
	return id
}

// normalizeTags splits on ",", trims, drops empties, dedupes, sorts, joins.
func normalizeTags(tags *string) *string {
	if tags == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, t := range strings.Split(*tags, ",") {
		t = strings.TrimSpace(t)
		if t != "" && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil
	}
	sort.Strings(out)
	j := strings.Join(out, ",")
	return &j
}

func strPtr(s string) *string { return &s }

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type pythonExecRequest struct {
	Code    *string `json:"code"`
	Timeout *int    `json:"timeout"`
	execMeta
}

func (s *Server) pythonExec(c *fiber.Ctx) error {
	var req pythonExecRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	code, err := required("code", req.Code)
	if err != nil {
		return err
	}
	timeout, err := intRange("timeout", req.Timeout, 30, 1, 300)
	if err != nil {
		return err
	}
	if wire.WantsEventStream(c.Get(fiber.HeaderAccept)) {
		return s.streamPython(c, req.execMeta, ship.PythonExecRequest{Code: code, Timeout: timeout})
	}
	t, ctx, release, err := s.call(c, profiles.CapPython, timeout)
	if err != nil {
		return err
	}
	defer release()
	start := time.Now()
	res, err := s.shipClient(t).PythonExec(ctx, ship.PythonExecRequest{Code: code, Timeout: timeout})
	if err != nil {
		return s.failedCall(c, t, "python", code, timeout, start, err, req.execMeta)
	}
	return c.JSON(s.pythonResult(c.UserContext(), t, req.execMeta, code, res, time.Since(start)))
}

func codeIf(include bool, code string) *string {
	if include {
		return &code
	}
	return nil
}

type shellExecRequest struct {
	Command *string `json:"command"`
	Timeout *int    `json:"timeout"`
	Cwd     *string `json:"cwd"`
	execMeta
}

func (s *Server) shellExec(c *fiber.Ctx) error {
	var req shellExecRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	command, err := required("command", req.Command)
	if err != nil {
		return err
	}
	if strings.ContainsRune(command, 0) {
		return apierr.Validation("command must not contain a NUL byte").With(map[string]any{"field": "command"})
	}
	timeout, err := intRange("timeout", req.Timeout, 30, 1, 300)
	if err != nil {
		return err
	}
	cwd := ""
	if req.Cwd != nil {
		if cwd, err = workspacePath("cwd", *req.Cwd, true); err != nil {
			return err
		}
	}
	shipReq := ship.ShellExecRequest{Command: command, Cwd: cwd, Timeout: timeout}
	if wire.WantsEventStream(c.Get(fiber.HeaderAccept)) {
		return s.streamShell(c, req.execMeta, shipReq)
	}
	t, ctx, release, err := s.call(c, profiles.CapShell, timeout)
	if err != nil {
		return err
	}
	defer release()
	start := time.Now()
	res, err := s.shipClient(t).ShellExec(ctx, shipReq)
	if err != nil {
		return s.failedCall(c, t, "shell", command, timeout, start, err, req.execMeta)
	}
	return c.JSON(s.shellResult(c.UserContext(), t, req.execMeta, command, res, time.Since(start)))
}

type browserMeta struct {
	Learn        bool `json:"learn"`
	IncludeTrace bool `json:"include_trace"`
}

type browserExecRequest struct {
	Cmd     *string `json:"cmd"`
	Timeout *int    `json:"timeout"`
	execMeta
	browserMeta
}

type traceStep struct {
	Cmd       string `json:"cmd"`
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	ExitCode  int    `json:"exit_code"`
	StepIndex int    `json:"step_index"`
}

// storeTrace keeps a browser trace as a blob when asked; it returns the
// payload ref for history and the trace_ref for the response.
func (s *Server) storeTrace(ctx context.Context, t target, bm browserMeta, kind string, steps []traceStep, extra map[string]any) (payloadRef, traceRef *string) {
	if !bm.Learn && !bm.IncludeTrace {
		return nil, nil
	}
	doc := map[string]any{"kind": kind, "steps": steps}
	for k, v := range extra {
		doc[k] = v
	}
	data, _ := json.Marshal(doc)
	id := service.NewID("blob-")
	if err := s.store.PutBlob(ctx, store.Blob{ID: id, Owner: t.sb.Owner, Kind: kind, Data: data, CreatedAt: s.svc.Now()}); err != nil {
		s.log.Warn("store browser trace", "sandbox_id", t.sb.ID, "error", err)
		return nil, nil
	}
	ref := "blob:" + id
	if bm.IncludeTrace {
		return &ref, &ref
	}
	return &ref, nil
}

func (s *Server) browserExec(c *fiber.Ctx) error {
	var req browserExecRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	cmd, err := requiredText("cmd", req.Cmd)
	if err != nil {
		return err
	}
	if strings.ContainsRune(cmd, 0) {
		return apierr.Validation("cmd must not contain a NUL byte").With(map[string]any{"field": "cmd"})
	}
	timeout, err := intRange("timeout", req.Timeout, 30, 1, 300)
	if err != nil {
		return err
	}
	t, ctx, release, err := s.call(c, profiles.CapBrowser, timeout)
	if err != nil {
		return err
	}
	defer release()
	start := time.Now()
	res, err := s.gullClient(t).Exec(ctx, gull.ExecRequest{Cmd: cmd, Timeout: timeout})
	if err != nil {
		return s.failedCall(c, t, "browser", cmd, timeout, start, err, req.execMeta)
	}
	elapsed := time.Since(start)
	success := res.ExitCode == 0
	var errText *string
	if !success {
		errText = strPtr(res.Stderr)
	}
	payloadRef, traceRef := s.storeTrace(c.UserContext(), t, req.browserMeta, "browser_exec_trace",
		[]traceStep{{Cmd: cmd, Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode}}, nil)
	req.execMeta.learn = req.Learn
	id := s.record(c.UserContext(), t, "browser", cmd, success, elapsed, strPtr(res.Stdout), errText, payloadRef, req.execMeta)
	return c.JSON(fiber.Map{
		"success": success, "output": res.Stdout, "error": errText, "exit_code": res.ExitCode,
		"execution_id": id, "execution_time_ms": elapsed.Milliseconds(), "trace_ref": traceRef,
	})
}

type browserBatchRequest struct {
	Commands    []string `json:"commands"`
	Timeout     *int     `json:"timeout"`
	StopOnError *bool    `json:"stop_on_error"`
	execMeta
	browserMeta
}

func (s *Server) browserBatch(c *fiber.Ctx) error {
	var req browserBatchRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	if len(req.Commands) == 0 {
		return apierr.Schema("commands", "commands must hold at least one command")
	}
	for i, cmd := range req.Commands {
		if strings.ContainsRune(cmd, 0) {
			return apierr.Validation("commands[%d] must not contain a NUL byte", i).With(map[string]any{"field": fmt.Sprintf("commands[%d]", i)})
		}
	}
	timeout, err := intRange("timeout", req.Timeout, 60, 1, 600)
	if err != nil {
		return err
	}
	stop := true
	if req.StopOnError != nil {
		stop = *req.StopOnError
	}
	run, err := s.runBatch(c, req.Commands, timeout, stop, req.execMeta, req.browserMeta, nil)
	if err != nil {
		return err
	}
	return c.JSON(run.fields())
}

// batchRun is a browser batch that ran and was recorded in history.
type batchRun struct {
	res      gull.BatchResponse
	execID   string
	elapsed  time.Duration
	traceRef *string
}

// runBatch runs cmds as one browser batch on the sandbox's Gull, stores the
// trace when asked (traceExtra joins the trace document) and records the
// call in history as browser_batch. Shared by exec_batch and skill replays.
func (s *Server) runBatch(c *fiber.Ctx, cmds []string, timeout int, stop bool, meta execMeta, bm browserMeta, traceExtra map[string]any) (batchRun, error) {
	t, ctx, release, err := s.call(c, profiles.CapBrowser, timeout)
	if err != nil {
		return batchRun{}, err
	}
	defer release()
	start := time.Now()
	res, err := s.gullClient(t).ExecBatch(ctx, gull.BatchRequest{Commands: cmds, Timeout: timeout, StopOnError: &stop})
	if err != nil {
		return batchRun{}, s.failedCall(c, t, "browser_batch", strings.Join(cmds, "\n"), timeout, start, err, meta)
	}
	elapsed := time.Since(start)
	steps := make([]traceStep, len(res.Results))
	var out strings.Builder
	var errText *string
	for i, r := range res.Results {
		steps[i] = traceStep{Cmd: r.Cmd, Stdout: r.Stdout, Stderr: r.Stderr, ExitCode: r.ExitCode, StepIndex: r.StepIndex}
		out.WriteString(r.Stdout)
		if !res.Success && errText == nil && r.ExitCode != 0 {
			errText = strPtr(fmt.Sprintf("step %d (%s) failed: %s", r.StepIndex, r.Cmd, r.Stderr))
		}
	}
	if !res.Success && errText == nil {
		errText = strPtr(fmt.Sprintf("completed %d of %d steps", res.CompletedSteps, res.TotalSteps))
	}
	extra := map[string]any{"total_steps": res.TotalSteps, "completed_steps": res.CompletedSteps, "success": res.Success}
	for k, v := range traceExtra {
		extra[k] = v
	}
	payloadRef, traceRef := s.storeTrace(c.UserContext(), t, bm, "browser_batch_trace", steps, extra)
	meta.learn = bm.Learn
	id := s.record(c.UserContext(), t, "browser_batch", strings.Join(cmds, "\n"), res.Success, elapsed,
		strPtr(out.String()), errText, payloadRef, meta)
	if res.Results == nil {
		res.Results = []gull.StepResult{}
	}
	return batchRun{res: res, execID: id, elapsed: elapsed, traceRef: traceRef}, nil
}

// fields is the exec_batch response body.
func (r batchRun) fields() fiber.Map {
	return fiber.Map{
		"results": r.res.Results, "total_steps": r.res.TotalSteps, "completed_steps": r.res.CompletedSteps,
		"success": r.res.Success, "duration_ms": r.res.DurationMS, "execution_id": r.execID,
		"execution_time_ms": r.elapsed.Milliseconds(), "trace_ref": r.traceRef,
	}
}

func (s *Server) browserTrace(c *fiber.Ctx) error {
	sb, err := s.capableSandbox(c, profiles.CapBrowser)
	if err != nil {
		return err
	}
	ref := c.Params("ref")
	id := strings.TrimPrefix(ref, "blob:")
	b, err := s.store.GetBlob(c.UserContext(), sb.Owner, id)
	if err != nil {
		return apierr.NotFound("trace", ref)
	}
	return c.JSON(fiber.Map{"trace_ref": "blob:" + b.ID, "trace": json.RawMessage(b.Data)})
}

// ---- filesystem ----

const fsTimeout = 60

func (s *Server) readFile(c *fiber.Ctx) error {
	p, err := workspacePath("path", c.Query("path"), false)
	if err != nil {
		return err
	}
	t, ctx, release, err := s.call(c, profiles.CapFilesystem, fsTimeout)
	if err != nil {
		return err
	}
	defer release()
	res, err := s.shipClient(t).ReadFile(ctx, ship.ReadFileRequest{Path: p})
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"content": res.Content})
}

type writeFileRequest struct {
	Path    *string `json:"path"`
	Content *string `json:"content"`
}

func (s *Server) writeFile(c *fiber.Ctx) error {
	var req writeFileRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	raw, err := required("path", req.Path)
	if err != nil {
		return err
	}
	content, err := required("content", req.Content)
	if err != nil {
		return err
	}
	p, err := workspacePath("path", raw, false)
	if err != nil {
		return err
	}
	t, ctx, release, err := s.call(c, profiles.CapFilesystem, fsTimeout)
	if err != nil {
		return err
	}
	defer release()
	if _, err := s.shipClient(t).WriteFile(ctx, ship.WriteFileRequest{Path: p, Content: content, Mode: "w"}); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"status": "ok"})
}

func (s *Server) deleteFile(c *fiber.Ctx) error {
	p, err := workspacePath("path", c.Query("path"), false)
	if err != nil {
		return err
	}
	t, ctx, release, err := s.call(c, profiles.CapFilesystem, fsTimeout)
	if err != nil {
		return err
	}
	defer release()
	if err := s.shipClient(t).DeleteFile(ctx, p); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"status": "ok"})
}

type dirEntry struct {
	Name         string `json:"name"`
	Path         string `json:"path"`
	IsFile       bool   `json:"is_file"`
	IsDir        bool   `json:"is_dir"`
	Size         *int64 `json:"size"`
	ModifiedTime string `json:"modified_time"`
}

func (s *Server) listDir(c *fiber.Ctx) error {
	p, err := workspacePath("path", c.Query("path", "."), true)
	if err != nil {
		return err
	}
	t, ctx, release, err := s.call(c, profiles.CapFilesystem, fsTimeout)
	if err != nil {
		return err
	}
	defer release()
	res, err := s.shipClient(t).ListDir(ctx, ship.ListDirRequest{Path: p})
	if err != nil {
		return err
	}
	entries := make([]dirEntry, 0, len(res.Files))
	for _, f := range res.Files {
		if strings.HasPrefix(f.Name, ".") {
			continue
		}
		entries = append(entries, dirEntry{Name: f.Name, Path: f.Path, IsFile: f.IsFile, IsDir: f.IsDir, Size: f.Size, ModifiedTime: f.ModifiedTime})
	}
	sort.SliceStable(entries, func(i, j int) bool {
		if entries[i].IsDir != entries[j].IsDir {
			return entries[i].IsDir
		}
		return entries[i].Name < entries[j].Name
	})
	return c.JSON(fiber.Map{"entries": entries})
}

// upload streams a multipart upload to Ship without holding it in memory.
// The sandbox is looked up (and the caller's right to it checked by the
// auth middleware) before any of the body is read. The form field "path"
// usually precedes the file; when it follows, the file is spooled to an
// unlinked temporary file, which cannot outlive the gateway.
func (s *Server) upload(c *fiber.Ctx) (err error) {
	defer func() {
		// A refused upload leaves the rest of a possibly huge body unread:
		// close the connection rather than drain it.
		if err != nil {
			c.Context().SetConnectionClose()
		}
	}()
	if _, err := s.capableSandbox(c, profiles.CapFilesystem); err != nil {
		return err
	}
	ct := c.Get(fiber.HeaderContentType)
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return apierr.Schema("body", "expected multipart/form-data with a file part and a path field")
	}
	body := s.bodyReader(c, nil)
	mr := multipart.NewReader(body, params["boundary"])
	var dest string
	var spooled *os.File
	defer func() {
		if spooled != nil {
			spooled.Close()
		}
	}()
	var filename string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return apierr.Schema("body", "malformed multipart body: %v", err)
		}
		switch part.FormName() {
		case "path":
			b, err := io.ReadAll(io.LimitReader(part, maxPathBytes+1))
			if err != nil {
				return apierr.Schema("path", "read path field: %v", err)
			}
			if len(b) > maxPathBytes {
				return apierr.InvalidPath("path", "path_too_long", fmt.Sprintf("path is longer than %d bytes", maxPathBytes))
			}
			dest = string(b)
		case "file":
			filename = part.FileName()
			if dest != "" {
				if err := s.uploadStream(c, dest, part); err != nil {
					return err
				}
				drainBody(c, body)
				return nil
			}
			if spooled != nil {
				return apierr.Schema("file", "multipart field \"file\" given twice")
			}
			f, err := os.CreateTemp("", "bay-upload-")
			if err != nil {
				return fmt.Errorf("spool upload: %w", err)
			}
			// Unlinked at once: the open file is all there is.
			_ = os.Remove(f.Name())
			spooled = f
			if _, err := io.Copy(f, part); err != nil {
				return apierr.Schema("file", "read file part: %v", err)
			}
		}
		part.Close()
	}
	if spooled == nil {
		return apierr.Schema("file", "multipart field \"file\" is required")
	}
	if dest == "" {
		if filename == "" {
			return apierr.InvalidPath("path", "empty_path", "form field \"path\" is required")
		}
		dest = path.Base(filename)
	}
	if _, err := spooled.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind spooled upload: %w", err)
	}
	if err := s.uploadStream(c, dest, spooled); err != nil {
		return err
	}
	drainBody(c, body)
	return nil
}

// drainBody reads what is left of a streamed request body (the closing
// multipart boundary, a chunked body's last chunk) so the connection can
// carry the next request; a body with more than a little left is not
// drained but the connection closed.
func drainBody(c *fiber.Ctx, body io.Reader) {
	n, _ := io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	if n >= 64<<10 {
		c.Context().SetConnectionClose()
	}
}

func (s *Server) uploadStream(c *fiber.Ctx, raw string, r io.Reader) error {
	p, err := workspacePath("path", raw, false)
	if err != nil {
		return err
	}
	t, err := s.route(c, profiles.CapFilesystem)
	if err != nil {
		return err
	}
	defer t.done()
	ctx, cancel := context.WithTimeout(c.UserContext(), time.Hour)
	defer cancel()
	res, err := s.shipClient(t).Upload(ctx, p, r)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"status": "ok", "path": p, "size": res.Size})
}

func (s *Server) download(c *fiber.Ctx) error {
	p, err := workspacePath("path", c.Query("path"), false)
	if err != nil {
		return err
	}
	t, err := s.route(c, profiles.CapFilesystem)
	if err != nil {
		return err
	}
	defer t.done()
	// The body is streamed after the handler returns, so the request's own
	// context cannot bound it; the runtime connection closes with the body.
	body, size, err := s.shipClient(t).Download(context.Background(), p)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/octet-stream")
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf("attachment; filename=%q", path.Base(p)))
	if size < 0 {
		size = -1
	}
	c.Status(http.StatusOK)
	c.Context().SetBodyStream(body, int(size))
	return nil
}
