package ship

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/internal/testutil"
	"github.com/hashicorp/go-hclog"
)

// TestPlainFallback runs the driver on a Python that cannot import IPython
// (Debian's python3 with -S, so without its dist-packages) and checks the
// plain-exec engine keeps the same contract.
func TestPlainFallback(t *testing.T) {
	py := testutil.DebianPython(t)
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "python-no-site")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nexec "+py+" -S \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	k := newKernel(kernelConfig{
		python: wrapper, dir: dir, env: pythonEnv(os.Environ(), dir),
		interruptGrace: 2 * time.Second, startTimeout: 30 * time.Second,
		outputLimit: 1 << 20, log: hclog.NewNullLogger(),
	})
	defer k.close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	exec := func(code string, timeout time.Duration) PythonExecResponse {
		t.Helper()
		r, err := k.Exec(ctx, code, timeout)
		if err != nil {
			t.Fatalf("exec %q: %v", code, err)
		}
		return r
	}
	r := exec("import sys\nx = 2\nprint('hi')\nx + 1", 10*time.Second)
	if !r.Success || r.Output.Text != "hi\n3\n" || r.ExecutionCount != 1 {
		t.Fatalf("first = %+v", r)
	}
	if st := k.status(); st.Engine != "plain" || st.Status != "ready" {
		t.Fatalf("status = %+v", st)
	}
	r = exec("x * 5", 10*time.Second)
	if r.Output.Text != "10\n" || r.ExecutionCount != 2 {
		t.Fatalf("state = %+v", r)
	}
	r = exec("display('shown')\nNone", 10*time.Second)
	if r.Output.Text != "'shown'\n" {
		t.Fatalf("display = %+v", r)
	}
	r = exec("def f():\n    raise ValueError('bad value')\nf()", 10*time.Second)
	if r.Success || r.Error == nil || !strings.Contains(*r.Error, "ValueError: bad value") || !strings.Contains(*r.Error, "raise ValueError") {
		t.Fatalf("error = %+v", r)
	}
	if strings.Contains(*r.Error, "driver") || strings.Contains(*r.Error, "PlainEngine") {
		t.Errorf("traceback shows the driver:\n%s", *r.Error)
	}
	r = exec("import time\ntime.sleep(20)", time.Second)
	if r.Success || r.Error == nil || !strings.Contains(*r.Error, "KeyboardInterrupt") {
		t.Fatalf("timeout = %+v", r)
	}
	if r = exec("x", 10*time.Second); r.Output.Text != "2\n" {
		t.Fatalf("after interrupt = %+v", r)
	}
}

// TestPythonUnavailable: an interpreter that cannot start is a 503 in the
// envelope, and the shell and files keep working.
func TestPythonUnavailable(t *testing.T) {
	ws := t.TempDir()
	s, err := NewServer(Config{Workspace: ws, Python: filepath.Join(ws, "no-such-python")}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, e := call(t, s, "POST", "/ipython/exec", PythonExecRequest{Code: "1"}, nil)
	wantErr(t, "exec without python", st, e, 503, "unavailable", "")
	var ks KernelStatus
	call(t, s, "GET", "/ipython/kernel/status", nil, &ks)
	if ks.Status != "stopped" {
		t.Fatalf("status = %+v", ks)
	}
	var sh ShellExecResponse
	if st, e := call(t, s, "POST", "/shell/exec", ShellExecRequest{Command: "echo ok"}, &sh); st != 200 || sh.Stdout != "ok\n" {
		t.Fatalf("shell: %d %+v %+v", st, e, sh)
	}
	st, e = call(t, s, "POST", "/ipython/exec", PythonExecRequest{Code: "1", Timeout: -1}, nil)
	wantErr(t, "negative timeout", st, e, 400, "validation_error", "")
}
