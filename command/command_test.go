package command

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// coldGateway answers a sandbox that goes through the start phases, then
// runs one shell command.
func coldGateway(t *testing.T) *httptest.Server {
	var polls atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/sandboxes/{id}", func(w http.ResponseWriter, r *http.Request) {
		n := polls.Add(1)
		status, phase := "ready", "null"
		switch n {
		case 1:
			status, phase = "starting", `"placing"`
		case 2:
			status, phase = "starting", `"starting_containers"`
		case 3:
			status, phase = "starting", `"health_check"`
		}
		fmt.Fprintf(w, `{"id":%q,"status":%q,"phase":%s,"profile":"p","cargo_id":"ws-1","capabilities":["shell"],`+
			`"created_at":"2026-01-02T03:04:05.000Z","expires_at":null,"idle_expires_at":null,"containers":null}`, r.PathValue("id"), status, phase)
	})
	mux.HandleFunc("POST /v1/sandboxes/{id}/shell/exec", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":{"code":"unauthorized","message":"invalid API key","request_id":"req-1"}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: output\ndata: {\"stream\":\"stdout\",\"text\":\"out\\n\"}\n\n")
		fmt.Fprint(w, "event: output\ndata: {\"stream\":\"stderr\",\"text\":\"err\\n\"}\n\n")
		fmt.Fprint(w, `event: result`+"\n"+`data: {"success":false,"output":"out\nerr\n","error":"err\n","exit_code":4,"execution_id":"exec-1","execution_time_ms":1,"command":null}`+"\n\n")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func runCmd(t *testing.T, srv *httptest.Server, interactive bool, env map[string]string, args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	m := &Meta{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Interactive: interactive,
		Getenv: func(k string) string {
			if k == "BAY_ADDR" {
				return srv.URL
			}
			return env[k]
		}}
	code, ok := Run(context.Background(), m, args)
	if !ok {
		t.Fatalf("%v is not a command", args)
	}
	return out.String(), errb.String(), code
}

func TestExecShowsColdStartOnTerminalOnly(t *testing.T) {
	srv := coldGateway(t)
	env := map[string]string{"BAY_API_KEY": "k"}
	out, stderr, code := runCmd(t, srv, true, env, "exec", "sandbox-1", "shell", "--", "x")
	if code != 4 || out != "out\n" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	for _, want := range []string{"placing the session", "starting containers", "health checks", "ready after", "err\n"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("terminal stderr lacks %q:\n%s", want, stderr)
		}
	}

	srv = coldGateway(t)
	out, stderr, code = runCmd(t, srv, false, env, "exec", "sandbox-1", "shell", "--", "x")
	if code != 4 || out != "out\n" || stderr != "err\n" {
		t.Fatalf("piped: exit %d, stdout %q, stderr %q (want only the program's)", code, out, stderr)
	}
}

func TestErrorsAndUsage(t *testing.T) {
	srv := coldGateway(t)
	_, stderr, code := runCmd(t, srv, false, nil, "exec", "sandbox-1", "shell", "--", "x")
	if code != ExitError || !strings.Contains(stderr, "unauthorized") || !strings.Contains(stderr, "req-1") {
		t.Fatalf("no key: exit %d %q", code, stderr)
	}
	if _, _, code = runCmd(t, srv, false, nil, "exec", "sandbox-1"); code != ExitUsage {
		t.Fatalf("missing language: exit %d", code)
	}
	if _, _, code = runCmd(t, srv, false, nil, "sandbox", "frobnicate"); code != ExitUsage {
		t.Fatalf("unknown subcommand: exit %d", code)
	}
	if _, _, code = runCmd(t, srv, false, nil, "exec", "-f", "a", "sandbox-1", "shell", "--", "b"); code != ExitUsage {
		t.Fatalf("code twice: exit %d", code)
	}
}

func TestShellQuote(t *testing.T) {
	got := shellQuote([]string{"fill", "#name", "it's me", "plain"})
	if got != `fill '#name' 'it'\''s me' plain` {
		t.Fatalf("%s", got)
	}
}
