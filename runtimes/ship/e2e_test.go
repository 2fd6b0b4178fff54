package ship

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/internal/testutil"
	"github.com/bay-sandbox/bay/runtimes/wire"
)

// semver is what a build's version must look like, stamped or not.
var semver = regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$`)

// shipProc is a real ship binary serving a temporary workspace.
type shipProc struct {
	cmd       *exec.Cmd
	client    *Client // sends the secret
	base      string
	secret    string
	workspace string
	stderr    *bytes.Buffer
	exited    chan struct{}
}

type shipOpts struct {
	workspace string
	args      []string
	env       []string
}

func startShip(t *testing.T, o shipOpts) *shipProc {
	t.Helper()
	bin := testutil.Binary(t, "ship")
	py := testutil.DebianPython(t)
	if o.workspace == "" {
		o.workspace = t.TempDir()
	}
	port := testutil.FreePort(t)
	args := append([]string{"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--workspace", o.workspace, "--python", py}, o.args...)
	cmd := exec.Command(bin, args...)
	secret := "secret-" + strconv.Itoa(port) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cmd.Env = testutil.Env(append([]string{"BAY_SANDBOX_ID=sandbox-0123456789ab", "BAY_SESSION_ID=sess-0123456789ab", "BAY_TEST_ENV_VAR=profile-value", wire.SecretEnv + "=" + secret}, o.env...)...)
	sp := &shipProc{cmd: cmd, workspace: o.workspace, secret: secret, base: fmt.Sprintf("http://127.0.0.1:%d", port), stderr: &bytes.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = &lockedWriter{w: sp.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(sp.exited) }()
	t.Cleanup(func() {
		select {
		case <-sp.exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-sp.exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-sp.exited
		}
	})
	sp.client = NewClient(sp.base, wire.WithSecret(nil, secret))
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := sp.client.Health(ctx)
		cancel()
		if err == nil {
			return sp
		}
		select {
		case <-sp.exited:
			t.Fatalf("ship exited at start: %s", sp.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ship not healthy: %v\n%s", err, sp.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func pyExec(t *testing.T, c *Client, code string, timeout int) PythonExecResponse {
	t.Helper()
	r, err := c.PythonExec(ctxT(t, 90*time.Second), PythonExecRequest{Code: code, Timeout: timeout})
	if err != nil {
		t.Fatalf("python %q: %v", code, err)
	}
	return r
}

func shExec(t *testing.T, c *Client, req ShellExecRequest) ShellExecResponse {
	t.Helper()
	r, err := c.ShellExec(ctxT(t, 60*time.Second), req)
	if err != nil {
		t.Fatalf("shell %q: %v", req.Command, err)
	}
	return r
}

// TestShipEndToEnd drives one real ship binary with the real Debian Python.
func TestShipEndToEnd(t *testing.T) {
	sp := startShip(t, shipOpts{})
	c := sp.client

	t.Run("health and meta", func(t *testing.T) {
		h, err := c.Health(ctxT(t, 5*time.Second))
		if err != nil || h.Status != "healthy" || !semver.MatchString(h.Version) {
			t.Fatalf("health = %+v, %v", h, err)
		}
		m, err := c.Meta(ctxT(t, 5*time.Second))
		if err != nil || m.Runtime.Name != "ship" || m.Runtime.APIVersion != "v1" || m.Runtime.Version != h.Version || m.Workspace.MountPath != sp.workspace {
			t.Fatalf("meta = %+v, %v", m, err)
		}
		for _, capName := range []string{"filesystem", "shell", "python"} {
			if _, ok := m.Capabilities[capName]; !ok {
				t.Errorf("meta lacks capability %s", capName)
			}
		}
	})

	t.Run("python state, display and errors", func(t *testing.T) {
		r := pyExec(t, c, "x = 40\nprint('side', flush=True)\nx + 2", 0)
		if !r.Success || r.Output.Text != "side\n42\n" || r.Error != nil {
			t.Fatalf("first cell = %+v", r)
		}
		first := r.ExecutionCount
		r = pyExec(t, c, "1+2", 0)
		if r.Output.Text != "3\n" || r.ExecutionCount != first+1 {
			t.Fatalf("1+2 = %+v (count %d after %d)", r, r.ExecutionCount, first)
		}
		r = pyExec(t, c, "x * 10", 0)
		if r.Output.Text != "400\n" {
			t.Fatalf("state lost: %+v", r)
		}
		r = pyExec(t, c, "x;", 0) // a trailing semicolon hides the value, as in IPython
		if r.Output.Text != "" {
			t.Fatalf("quiet cell = %q", r.Output.Text)
		}
		r = pyExec(t, c, "import sys\nprint('out')\nprint('err', file=sys.stderr)\n'done'", 0)
		if r.Output.Text != "out\nerr\n'done'\n" {
			t.Fatalf("streams = %q", r.Output.Text)
		}
		r = pyExec(t, c, "from IPython.display import display\ndisplay({'a': 1})\n%time y = 5", 0)
		if !r.Success || !strings.HasPrefix(r.Output.Text, "{'a': 1}\n") || !strings.Contains(r.Output.Text, "Wall time") {
			t.Fatalf("display/magic = %+v", r)
		}
		r = pyExec(t, c, "def f():\n    return 1/0\nprint('before')\nf()", 0)
		if r.Success || r.Error == nil || r.Output.Text != "before\n" {
			t.Fatalf("error cell = %+v", r)
		}
		for _, want := range []string{"ZeroDivisionError", "division by zero", "1/0"} {
			if !strings.Contains(*r.Error, want) {
				t.Errorf("traceback lacks %q:\n%s", want, *r.Error)
			}
		}
		if strings.Contains(*r.Error, "\x1b[") {
			t.Errorf("traceback has ANSI colours: %q", *r.Error)
		}
		r = pyExec(t, c, "def broken(:\n  pass", 0)
		if r.Success || r.Error == nil || !strings.Contains(*r.Error, "SyntaxError") {
			t.Fatalf("syntax error cell = %+v", r)
		}
		// Output that does not end in a newline and user prints of anything
		// resembling protocol bytes do not confuse the driver.
		r = pyExec(t, c, "import os\nos.write(1, b'\\x00\\x00\\x00\\x05raw')\nprint('\\x00ship-end-', end='')", 0)
		if !r.Success || r.Output.Text != "\x00\x00\x00\x05raw\x00ship-end-" {
			t.Fatalf("raw output = %q", r.Output.Text)
		}
		// Child processes' output is captured too.
		r = pyExec(t, c, "import subprocess\nsubprocess.run(['echo', 'from child'])\nNone", 0)
		if r.Output.Text != "from child\n" {
			t.Fatalf("child output = %q", r.Output.Text)
		}
	})

	t.Run("python images", func(t *testing.T) {
		r := pyExec(t, c, "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [3, 1, 2])\nplt.title('t')\nplt.show()", 0)
		if !r.Success || len(r.Output.Images) != 1 {
			t.Fatalf("matplotlib = %+v", r)
		}
		assertPNG(t, r.Output.Images[0]["image/png"])
		if strings.Contains(r.Output.Text, "non-interactive") {
			t.Errorf("Agg warning leaked: %q", r.Output.Text)
		}
		// The figure was closed: the next cell has no image.
		if r = pyExec(t, c, "2", 0); len(r.Output.Images) != 0 {
			t.Fatalf("stale figure: %d images", len(r.Output.Images))
		}
		r = pyExec(t, c, "import io\nfrom IPython.display import Image, display\nfig = plt.figure(); plt.plot([0, 1]); buf = io.BytesIO(); fig.savefig(buf, format='png'); plt.close(fig)\ndisplay(Image(data=buf.getvalue()))", 0)
		if !r.Success || len(r.Output.Images) != 1 {
			t.Fatalf("display(Image) = %+v", r)
		}
		assertPNG(t, r.Output.Images[0]["image/png"])
	})

	t.Run("python timeout interrupts and recovers", func(t *testing.T) {
		pyExec(t, c, "survivor = 'still here'", 0)
		start := time.Now()
		r := pyExec(t, c, "import time\nprint('started', flush=True)\ntime.sleep(30)\nprint('never')", 1)
		if el := time.Since(start); el > 10*time.Second {
			t.Fatalf("timeout took %s", el)
		}
		if r.Success || r.Error == nil || !strings.Contains(*r.Error, "timed out") || !strings.Contains(*r.Error, "KeyboardInterrupt") || r.Output.Text != "started\n" {
			t.Fatalf("timed-out cell = %+v", r)
		}
		// Interrupted, not restarted: state survives.
		r = pyExec(t, c, "survivor", 0)
		if !r.Success || r.Output.Text != "'still here'\n" {
			t.Fatalf("after interrupt = %+v", r)
		}
	})

	t.Run("shell", func(t *testing.T) {
		os.MkdirAll(filepath.Join(sp.workspace, "sub"), 0o755)
		r := shExec(t, c, ShellExecRequest{Command: "pwd; echo \"$EXTRA\"; echo oops >&2; exit 3", Cwd: "sub", Env: map[string]string{"EXTRA": "extra-value"}})
		if r.Success || r.ReturnCode == nil || *r.ReturnCode != 3 || r.Stderr != "oops\n" || r.PID == 0 {
			t.Fatalf("shell = %+v", r)
		}
		if want := filepath.Join(sp.workspace, "sub") + "\nextra-value\n"; r.Stdout != want {
			t.Fatalf("stdout = %q, want %q", r.Stdout, want)
		}
		r = shExec(t, c, ShellExecRequest{Command: "true"})
		if !r.Success || *r.ReturnCode != 0 || r.Error != nil {
			t.Fatalf("true = %+v", r)
		}
		// Large output is capped with a marker, not returned whole.
		r = shExec(t, c, ShellExecRequest{Command: "head -c 5000000 /dev/zero | tr '\\0' a"})
		if len(r.Stdout) > 1<<20+200 || !strings.Contains(r.Stdout, "output truncated") {
			t.Fatalf("big output: %d bytes, tail %q", len(r.Stdout), r.Stdout[max(0, len(r.Stdout)-80):])
		}
		// Timeout kills the whole process group.
		start := time.Now()
		r = shExec(t, c, ShellExecRequest{Command: "sleep 60 & echo $!; wait", Timeout: 1})
		if time.Since(start) > 10*time.Second {
			t.Fatalf("timeout took %s", time.Since(start))
		}
		if r.Success || r.ReturnCode == nil || *r.ReturnCode != -1 || r.Error == nil || !strings.Contains(*r.Error, "timed out") {
			t.Fatalf("timed-out shell = %+v", r)
		}
		child, err := strconv.Atoi(strings.TrimSpace(r.Stdout))
		if err != nil {
			t.Fatalf("child pid %q", r.Stdout)
		}
		waitGone(t, child)
		// A command leaving a background child that holds stdout does not
		// hang the call.
		start = time.Now()
		r = shExec(t, c, ShellExecRequest{Command: "sleep 30 & echo quick"})
		if !r.Success || r.Stdout != "quick\n" || time.Since(start) > 5*time.Second {
			t.Fatalf("detached child: %+v after %s", r, time.Since(start))
		}
		_, err = c.ShellExec(ctxT(t, 5*time.Second), ShellExecRequest{Command: "true", Cwd: "nope"})
		if we, ok := wire.AsError(err); !ok || we.Status != 404 || we.Code != wire.CodeFileNotFound {
			t.Fatalf("missing cwd: %v", err)
		}
		_, err = c.ShellExec(ctxT(t, 5*time.Second), ShellExecRequest{Command: ""})
		if we, ok := wire.AsError(err); !ok || we.Status != 400 || we.Code != wire.CodeValidation {
			t.Fatalf("empty command: %v", err)
		}
	})

	t.Run("background processes", func(t *testing.T) {
		r := shExec(t, c, ShellExecRequest{Command: "for i in 1 2 3; do echo line$i; done; echo e >&2; exit 4", Background: true})
		if !r.Success || r.ProcessID == "" || r.PID == 0 || r.ReturnCode != nil {
			t.Fatalf("background = %+v", r)
		}
		done := waitProcess(t, c, r.ProcessID, func(p ProcessOutput) bool { return p.Status != "running" })
		if done.Status != "failed" || done.ReturnCode == nil || *done.ReturnCode != 4 || done.Stdout != "line1\nline2\nline3\n" || done.Stderr != "e\n" || done.EndedAt == "" {
			t.Fatalf("finished = %+v", done)
		}
		// A chatty job never blocks, and its buffer stays bounded.
		chatty := shExec(t, c, ShellExecRequest{Command: "head -c 20000000 /dev/zero | tr '\\0' b; echo; echo END", Background: true})
		got := waitProcess(t, c, chatty.ProcessID, func(p ProcessOutput) bool { return p.Status != "running" })
		if got.Status != "completed" || !strings.HasSuffix(got.Stdout, "END\n") || len(got.Stdout) > 1<<20+200 {
			t.Fatalf("chatty: status %s, %d bytes", got.Status, len(got.Stdout))
		}
		// A long job can be listed, read while running, and killed.
		long := shExec(t, c, ShellExecRequest{Command: "echo begin; trap '' TERM; sleep 120", Background: true})
		waitProcess(t, c, long.ProcessID, func(p ProcessOutput) bool { return p.Stdout == "begin\n" && p.Status == "running" })
		list, err := c.Processes(ctxT(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range list {
			if p.ProcessID == long.ProcessID {
				found = p.Status == "running" && p.PID == long.PID && strings.Contains(p.Command, "sleep 120")
			}
		}
		if !found {
			t.Fatalf("long job not listed as running: %+v", list)
		}
		killed, err := c.KillProcess(ctxT(t, 10*time.Second), long.ProcessID)
		if err != nil || killed.Status != "killed" {
			t.Fatalf("kill = %+v, %v", killed, err)
		}
		waitGone(t, long.PID)
		_, err = c.Process(ctxT(t, 5*time.Second), "proc-nope")
		if we, ok := wire.AsError(err); !ok || we.Status != 404 {
			t.Fatalf("unknown process: %v", err)
		}
	})

	t.Run("environment", func(t *testing.T) {
		r := shExec(t, c, ShellExecRequest{Command: "echo $BAY_TEST_ENV_VAR $BAY_SANDBOX_ID $BAY_SESSION_ID"})
		if r.Stdout != "profile-value sandbox-0123456789ab sess-0123456789ab\n" {
			t.Fatalf("shell env = %q", r.Stdout)
		}
		p := pyExec(t, c, "import os\nprint(os.environ['BAY_TEST_ENV_VAR'], os.environ['BAY_SANDBOX_ID'], os.environ['BAY_SESSION_ID'])", 0)
		if p.Output.Text != "profile-value sandbox-0123456789ab sess-0123456789ab\n" {
			t.Fatalf("python env = %+v", p)
		}
		p = pyExec(t, c, "import os\nos.getcwd()", 0)
		if p.Output.Text != fmt.Sprintf("%q\n", sp.workspace) && p.Output.Text != "'"+sp.workspace+"'\n" {
			t.Fatalf("python cwd = %q", p.Output.Text)
		}
	})

	t.Run("files via client", func(t *testing.T) {
		ctx := ctxT(t, 30*time.Second)
		if _, err := c.WriteFile(ctx, WriteFileRequest{Path: "notes/a.txt", Content: "alpha\nbeta\n"}); err != nil {
			t.Fatal(err)
		}
		// Files written through the API are visible to Python and the shell.
		p := pyExec(t, c, "open('notes/a.txt').read().split()", 0)
		if p.Output.Text != "['alpha', 'beta']\n" {
			t.Fatalf("python sees %q", p.Output.Text)
		}
		if _, err := c.EditFile(ctx, EditFileRequest{Path: "notes/a.txt", OldString: "beta", NewString: "gamma"}); err != nil {
			t.Fatal(err)
		}
		r, err := c.ReadFile(ctx, ReadFileRequest{Path: "notes/a.txt", Offset: 2})
		if err != nil || r.Content != "gamma\n" {
			t.Fatalf("read = %+v, %v", r, err)
		}
		l, err := c.ListDir(ctx, ListDirRequest{Path: "notes"})
		if err != nil || len(l.Files) != 1 || l.Files[0].Path != "notes/a.txt" {
			t.Fatalf("list = %+v, %v", l, err)
		}
		up, err := c.Upload(ctx, "notes/blob.bin", strings.NewReader("binary\x00data"))
		if err != nil || !up.Success || up.Size != 11 || up.FilePath != "notes/blob.bin" {
			t.Fatalf("upload = %+v, %v", up, err)
		}
		body, size, err := c.Download(ctx, "notes/blob.bin")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(body)
		body.Close()
		if string(got) != "binary\x00data" || size != 11 {
			t.Fatalf("download = %q (%d)", got, size)
		}
		if err := c.DeleteFile(ctx, "notes"); err != nil {
			t.Fatal(err)
		}
		_, _, err = c.Download(ctx, "notes/blob.bin")
		if we, ok := wire.AsError(err); !ok || we.Status != 404 || we.Code != wire.CodeFileNotFound {
			t.Fatalf("download deleted: %v", err)
		}
		_, err = c.Upload(ctx, "../escape.bin", strings.NewReader("x"))
		if we, ok := wire.AsError(err); !ok || we.Code != wire.CodeInvalidPath {
			t.Fatalf("upload escape: %v", err)
		}
		os.Symlink("/etc", filepath.Join(sp.workspace, "etc-link"))
		_, _, err = c.Download(ctx, "etc-link/passwd")
		if we, ok := wire.AsError(err); !ok || we.Code != wire.CodeInvalidPath || we.Details["reason"] != reasonSymlinkEscpe {
			t.Fatalf("download via symlink to /etc: %v", err)
		}
	})

	t.Run("python and shell run concurrently", func(t *testing.T) {
		var wg sync.WaitGroup
		wg.Add(1)
		pyDone := make(chan time.Time, 1)
		go func() {
			defer wg.Done()
			pyExec(t, c, "import time\ntime.sleep(1.5)", 0)
			pyDone <- time.Now()
		}()
		time.Sleep(200 * time.Millisecond) // let the cell start
		start := time.Now()
		var swg sync.WaitGroup
		for i := 0; i < 4; i++ {
			swg.Add(1)
			go func() {
				defer swg.Done()
				shExec(t, c, ShellExecRequest{Command: "sleep 0.3"})
			}()
		}
		swg.Wait()
		shellTook := time.Since(start)
		// Four 0.3 s commands in parallel, unaffected by the busy interpreter.
		if shellTook > 1200*time.Millisecond {
			t.Errorf("shell calls took %s while python was busy", shellTook)
		}
		// Another python call waits for the running cell (serialised).
		r := pyExec(t, c, "'second'", 0)
		second := time.Now()
		wg.Wait()
		if first := <-pyDone; second.Before(first) {
			t.Errorf("second python call finished before the first")
		}
		if r.Output.Text != "'second'\n" {
			t.Errorf("second = %+v", r)
		}
	})

	t.Run("python restart and status", func(t *testing.T) {
		pyExec(t, c, "gone = 1", 0)
		st, err := c.KernelStatus(ctxT(t, 5*time.Second))
		if err != nil || st.Status != "ready" || st.Engine != "ipython" || st.PID == 0 || st.ExecutionCount == 0 {
			t.Fatalf("status = %+v, %v", st, err)
		}
		st2, err := c.KernelRestart(ctxT(t, 60*time.Second))
		if err != nil || st2.Status != "ready" || st2.PID == st.PID || st2.Restarts != st.Restarts+1 {
			t.Fatalf("restart = %+v, %v", st2, err)
		}
		r := pyExec(t, c, "gone", 0)
		if r.Success || r.Error == nil || !strings.Contains(*r.Error, "NameError") || r.ExecutionCount != 1 {
			t.Fatalf("after restart = %+v", r)
		}
	})

	t.Run("python that ignores the interrupt is restarted", func(t *testing.T) {
		pyExec(t, c, "lost = 1", 0)
		code := "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.05)"
		start := time.Now()
		r := pyExec(t, c, code, 1)
		if el := time.Since(start); el > 15*time.Second {
			t.Fatalf("took %s", el)
		}
		if r.Success || r.Error == nil || !strings.Contains(*r.Error, "restarted") {
			t.Fatalf("stuck cell = %+v", r)
		}
		r = pyExec(t, c, "21*2", 0)
		if !r.Success || r.Output.Text != "42\n" || r.ExecutionCount != 1 {
			t.Fatalf("next call after restart = %+v", r)
		}
		// An interpreter that dies mid-cell is reported and replaced.
		r = pyExec(t, c, "import os\nprint('bye', flush=True)\nos._exit(3)", 0)
		if r.Success || r.Error == nil || !strings.Contains(*r.Error, "exited unexpectedly") || r.Output.Text != "bye\n" {
			t.Fatalf("dying cell = %+v", r)
		}
		r = pyExec(t, c, "21*2", 0)
		if !r.Success || r.Output.Text != "42\n" || r.ExecutionCount != 1 {
			t.Fatalf("next call after restart = %+v", r)
		}
		if r = pyExec(t, c, "lost", 0); r.Success {
			t.Fatalf("state survived a restart: %+v", r)
		}
	})
}

func assertPNG(t *testing.T, b64 string) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || !bytes.HasPrefix(raw, []byte("\x89PNG\r\n\x1a\n")) || len(raw) < 1000 {
		t.Fatalf("not a PNG (%d bytes, %v)", len(raw), err)
	}
}

func waitProcess(t *testing.T, c *Client, id string, cond func(ProcessOutput) bool) ProcessOutput {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := c.Process(ctxT(t, 5*time.Second), id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %s: condition not met: %+v", id, p.ProcessInfo)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitGone waits until pid no longer runs (gone or a zombie awaiting reaping).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if f := strings.Fields(string(b)); len(f) > 2 && (f[2] == "Z" || f[2] == "X") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still running: %s", pid, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// vmHWM is the peak resident set size of pid, in KiB.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestShipStreamsLargeFiles uploads and downloads a file several times the
// memory limit given to the ship process and checks its peak RSS.
func TestShipStreamsLargeFiles(t *testing.T) {
	const size = 256 << 20
	const limitMiB = 32
	sp := startShip(t, shipOpts{env: []string{fmt.Sprintf("GOMEMLIMIT=%dMiB", limitMiB)}})
	ctx := ctxT(t, 5*time.Minute)
	src := io.LimitReader(patternReader{}, size)
	up, err := sp.client.Upload(ctx, "big/file.bin", src)
	if err != nil || up.Size != size {
		t.Fatalf("upload = %+v, %v", up, err)
	}
	if fi, err := os.Stat(filepath.Join(sp.workspace, "big/file.bin")); err != nil || fi.Size() != size {
		t.Fatalf("on disk: %v %v", fi, err)
	}
	body, n, err := sp.client.Download(ctx, "big/file.bin")
	if err != nil || n != size {
		t.Fatalf("download: %d %v", n, err)
	}
	// Compare with the pattern as it streams (no second copy in memory).
	got, err := io.Copy(&patternChecker{t: t}, body)
	body.Close()
	if err != nil || got != size {
		t.Fatalf("downloaded %d bytes: %v", got, err)
	}
	peak := vmHWM(t, sp.cmd.Process.Pid)
	t.Logf("ship peak RSS %d KiB while moving %d MiB each way", peak, size>>20)
	if peak > 2*limitMiB*1024 {
		t.Fatalf("ship peak RSS %d KiB: the %d MiB file was buffered", peak, size>>20)
	}
}

// patternReader yields the same 32 KiB pattern chunk after chunk.
type patternReader struct{}

func (patternReader) Read(b []byte) (int, error) {
	n := min(len(b), 32<<10)
	for i := range b[:n] {
		b[i] = byte(i % 251)
	}
	return n, nil
}

type patternChecker struct {
	t   *testing.T
	pos int64
}

func (p *patternChecker) Write(b []byte) (int, error) {
	for i, c := range b {
		if want := byte((p.pos + int64(i)) % (32 << 10) % 251); c != want {
			return i, fmt.Errorf("byte %d = %d, want %d", p.pos+int64(i), c, want)
		}
	}
	p.pos += int64(len(b))
	return len(b), nil
}

// TestShipGracefulShutdown checks SIGTERM ends running work and exits 0.
func TestShipGracefulShutdown(t *testing.T) {
	sp := startShip(t, shipOpts{args: []string{"--shutdown-grace", "1s"}})
	c := sp.client
	bg := shExec(t, c, ShellExecRequest{Command: "sleep 300", Background: true})
	pyExec(t, c, "1", 0)
	st, _ := c.KernelStatus(ctxT(t, 5*time.Second))
	go func() { _, _ = c.ShellExec(context.Background(), ShellExecRequest{Command: "sleep 300"}) }()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := sp.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sp.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("ship did not stop after SIGTERM:\n%s", sp.stderr)
	}
	if code := sp.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d\n%s", code, sp.stderr)
	}
	t.Logf("stopped in %s", time.Since(start))
	waitGone(t, bg.PID)
	waitGone(t, st.PID)
}

// TestShipRunAs runs shell and Python as nobody while the server stays root.
func TestShipRunAs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch users")
	}
	if _, err := exec.Command("id", "-u", "nobody").Output(); err != nil {
		t.Skip("no user nobody")
	}
	ws, err := os.MkdirTemp("", "ship-runas-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(ws) })
	os.Chmod(ws, 0o755)
	sp := startShip(t, shipOpts{workspace: ws, args: []string{"--run-as", "nobody"}})
	c := sp.client
	uid := strings.TrimSpace(string(must(exec.Command("id", "-u", "nobody").Output())))

	r := shExec(t, c, ShellExecRequest{Command: "id -u; echo $BAY_TEST_ENV_VAR; echo made > by-shell.txt && cat by-shell.txt"})
	if r.Stdout != uid+"\nprofile-value\nmade\n" {
		t.Fatalf("shell as nobody = %+v", r)
	}
	p := pyExec(t, c, "import os\nopen('by-python.txt', 'w').write('x')\nos.getuid()", 0)
	if !p.Success || p.Output.Text != uid+"\n" {
		t.Fatalf("python as nobody = %+v", p)
	}
	// Files written through the API stay usable by the unprivileged user.
	if _, err := c.WriteFile(ctxT(t, 5*time.Second), WriteFileRequest{Path: "api/dir/f.txt", Content: "a\n"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Upload(ctxT(t, 5*time.Second), "api/up.txt", strings.NewReader("u\n")); err != nil {
		t.Fatal(err)
	}
	r = shExec(t, c, ShellExecRequest{Command: "echo b >> api/dir/f.txt && echo v >> api/up.txt && touch api/dir/new && cat api/dir/f.txt"})
	if !r.Success || r.Stdout != "a\nb\n" {
		t.Fatalf("nobody cannot use API files: %+v", r)
	}
	// And cannot touch what belongs to root.
	r = shExec(t, c, ShellExecRequest{Command: "touch /root/ship-runas-probe"})
	if r.Success {
		t.Fatalf("nobody wrote to /root")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
