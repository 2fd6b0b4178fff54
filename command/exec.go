package command

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bay-sandbox/bay/client"
)

const execSynopsis = "bay exec [flags] <id> python|shell [-- CODE...]   (code from CODE, -f FILE, or stdin)"

// ExitNoStatus is exec shell's exit code when the command has no exit
// status (it timed out or could not start), as timeout(1) does.
const ExitNoStatus = 124

func execCmd(ctx context.Context, m *Meta, args []string) int {
	fs := m.flags("exec")
	file := fs.String("f", "", "read the code from this file (- for stdin)")
	timeout := fs.Int("timeout", 0, "seconds the program may run (default: the gateway's, 30)")
	cwd := fs.String("cwd", "", "shell working directory, relative to /workspace")
	noStream := fs.Bool("no-stream", false, "wait for the result instead of printing output as it comes")
	if code, ok := m.parse(fs, args); !ok {
		return code
	}
	rest := fs.Args()
	if len(rest) < 2 {
		return m.usage(fs, execSynopsis, "expected a sandbox id and python or shell")
	}
	id, lang := rest[0], rest[1]
	if lang != "python" && lang != "shell" {
		return m.usage(fs, execSynopsis, "unknown language %q (python or shell)", lang)
	}
	// Flags may also follow the language: bay exec <id> shell -f run.sh
	if code, ok := m.parse(fs, rest[2:]); !ok {
		return code
	}
	code, err := m.readCode(*file, fs.Args())
	if err != nil {
		return m.usage(fs, execSynopsis, "%v", err)
	}
	c, err := m.Client()
	if err != nil {
		return m.fail(err)
	}
	if m.Interactive {
		// A cold start shows what it waits for; piped, the call just waits.
		sb, err := c.GetSandbox(ctx, id)
		if err != nil {
			return m.fail(err)
		}
		if sb.Status != client.StatusReady && sb.Status != client.StatusDegraded {
			m.progress("==> Sandbox %s is %s (%s); waiting for compute", id, sb.Status, describePhase(sb))
			if _, err := m.waitReady(ctx, c, id); err != nil {
				return m.fail(err)
			}
		}
	}
	stream := !*noStream && !m.json
	if lang == "python" {
		return m.execPython(ctx, c, id, &client.PythonRequest{Code: code, Timeout: *timeout}, stream)
	}
	return m.execShell(ctx, c, id, &client.ShellRequest{Command: code, Timeout: *timeout, Cwd: *cwd}, stream)
}

// readCode takes the code from the arguments, the -f file, or stdin.
func (m *Meta) readCode(file string, args []string) (string, error) {
	switch {
	case len(args) > 0 && file != "":
		return "", fmt.Errorf("give the code as arguments or with -f, not both")
	case len(args) > 0:
		return strings.Join(args, " "), nil
	case file != "" && file != "-":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	b, err := io.ReadAll(m.Stdin)
	if err != nil {
		return "", fmt.Errorf("read stdin: %w", err)
	}
	if strings.TrimSpace(string(b)) == "" {
		return "", fmt.Errorf("no code: give it as arguments, with -f FILE, or on stdin")
	}
	return string(b), nil
}

// printChunk writes streamed output where it belongs.
func (m *Meta) printChunk(ch client.OutputChunk) {
	if ch.Stream == client.StreamStderr {
		io.WriteString(m.Stderr, ch.Text)
		return
	}
	io.WriteString(m.Stdout, ch.Text)
}

func (m *Meta) execPython(ctx context.Context, c *client.Client, id string, req *client.PythonRequest, stream bool) int {
	var res *client.PythonResult
	var err error
	if stream {
		res, err = c.PythonStream(ctx, id, req, m.printChunk)
	} else {
		res, err = c.Python(ctx, id, req)
	}
	if err != nil {
		return m.fail(err)
	}
	if m.json {
		m.printJSON(res)
	} else if !stream {
		io.WriteString(m.Stdout, res.Output)
	}
	if !res.Success {
		if !m.json && res.Error != nil {
			fmt.Fprintln(m.Stderr, strings.TrimRight(*res.Error, "\n"))
		}
		return ExitError
	}
	return ExitOK
}

func (m *Meta) execShell(ctx context.Context, c *client.Client, id string, req *client.ShellRequest, stream bool) int {
	var res *client.ShellResult
	var err error
	if stream {
		res, err = c.ShellStream(ctx, id, req, m.printChunk)
	} else {
		res, err = c.Shell(ctx, id, req)
	}
	if err != nil {
		return m.fail(err)
	}
	if m.json {
		m.printJSON(res)
	} else if !stream {
		io.WriteString(m.Stdout, res.Output)
	}
	if res.ExitCode == nil || *res.ExitCode < 0 {
		if !m.json && res.Error != nil {
			fmt.Fprintln(m.Stderr, "Error: "+strings.TrimRight(*res.Error, "\n"))
		}
		return ExitNoStatus
	}
	return *res.ExitCode & 0xff
}
