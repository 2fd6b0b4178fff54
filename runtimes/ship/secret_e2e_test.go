package ship

import (
	"bytes"
	"context"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/internal/testutil"
	"github.com/bay-sandbox/bay/runtimes/wire"
)

// TestShipSessionSecret drives the real binary: without the session secret,
// or with a wrong or another session's one, every route but /health answers
// 401 in the envelope and runs nothing; with it, calls work; the agent's
// commands do not see the secret.
func TestShipSessionSecret(t *testing.T) {
	sp := startShip(t, shipOpts{})
	other := startShip(t, shipOpts{}) // another session, another secret
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	clients := map[string]*Client{
		"no secret":                NewClient(sp.base, nil),
		"wrong secret":             NewClient(sp.base, wire.WithSecret(nil, sp.secret+"x")),
		"another session's secret": NewClient(sp.base, wire.WithSecret(nil, other.secret)),
	}
	for name, c := range clients {
		t.Run(name, func(t *testing.T) {
			if _, err := c.Health(ctx); err != nil {
				t.Fatalf("/health must answer without the secret: %v", err)
			}
			calls := map[string]func() error{
				"meta": func() error { _, err := c.Meta(ctx); return err },
				"python": func() error {
					_, err := c.PythonExec(ctx, PythonExecRequest{Code: "open('/workspace/pwned','w')"})
					return err
				},
				"shell": func() error { _, err := c.ShellExec(ctx, ShellExecRequest{Command: "touch pwned"}); return err },
				"write": func() error { _, err := c.WriteFile(ctx, WriteFileRequest{Path: "pwned", Content: "x"}); return err },
				"list":  func() error { _, err := c.ListDir(ctx, ListDirRequest{Path: "."}); return err },
				"download": func() error {
					rc, _, err := c.Download(ctx, "anything")
					if err == nil {
						rc.Close()
					}
					return err
				},
				"upload":    func() error { _, err := c.Upload(ctx, "pwned", strings.NewReader("x")); return err },
				"processes": func() error { _, err := c.Processes(ctx); return err },
				"restart":   func() error { _, err := c.KernelRestart(ctx); return err },
			}
			for call, fn := range calls {
				err := fn()
				we, ok := wire.AsError(err)
				if call == "upload" && err != nil && !ok {
					// Ship refuses before reading the streamed body and
					// closes the connection; the client may see that
					// (broken pipe) before the 401. Refused either way:
					// the workspace check below proves nothing landed.
					continue
				}
				if !ok || we.Status != http.StatusUnauthorized || we.Code != wire.CodeUnauthorized {
					t.Errorf("%s: got %v, want 401 %s", call, err, wire.CodeUnauthorized)
				}
				if ok && strings.Contains(we.Message, sp.secret) {
					t.Errorf("%s: the error reveals the secret", call)
				}
			}
		})
	}
	if _, err := sp.client.ListDir(ctx, ListDirRequest{Path: "."}); err != nil {
		t.Fatal(err)
	}
	out, err := sp.client.ShellExec(ctx, ShellExecRequest{Command: "ls -A; env"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.Stdout, "pwned") {
		t.Fatalf("a refused call changed the workspace:\n%s", out.Stdout)
	}
	if strings.Contains(out.Stdout, wire.SecretEnv) || strings.Contains(out.Stdout, sp.secret) {
		t.Fatalf("the agent's shell sees the secret:\n%s", out.Stdout)
	}
	py, err := sp.client.PythonExec(ctx, PythonExecRequest{Code: "import os; print(sorted(k for k in os.environ if 'SECRET' in k))"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(py.Output.Text, wire.SecretEnv) {
		t.Fatalf("python sees the secret: %s", py.Output.Text)
	}
}

// TestShipRefusesToStartWithoutSecret: a ship binary without a secret would
// serve anyone who can reach its port, so it does not start unless told.
func TestShipRefusesToStartWithoutSecret(t *testing.T) {
	bin := testutil.Binary(t, "ship")
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--host", "127.0.0.1", "--port", strconv.Itoa(testutil.FreePort(t)), "--workspace", t.TempDir())
	cmd.Env = testutil.Env(wire.SecretEnv+"=", wire.SecretFileEnv+"=")
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("ship without a secret: %v, want exit status 1\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), wire.SecretEnv) {
		t.Fatalf("the refusal should name %s:\n%s", wire.SecretEnv, stderr.String())
	}
}
