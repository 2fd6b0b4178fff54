package gull

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// maxOutput bounds what Gull keeps of one stream of one command; a huge
// snapshot or eval result is cut, never buffered without limit.
const maxOutput = 8 << 20

// Browser defaults applied to the CLI's environment when the operator has not
// set them: Debian's headless Chromium, flags that keep it off the network
// and sandbox-free inside a container, and the workspace as the place where
// screenshots and downloads land (design rule 7).
const (
	defaultChromium    = "/usr/bin/chromium"
	defaultBrowserArgs = "--no-sandbox,--disable-gpu,--disable-background-networking,--disable-component-update,--disable-sync,--no-first-run"
)

// ErrCLIMissing is returned (wrapped) when the agent-browser CLI cannot be
// found or executed.
var ErrCLIMissing = errors.New("agent-browser CLI not available")

// resolveCLI finds the CLI: name may be a path or a bare name to look up on
// PATH. It runs on every call so that a CLI installed after start is found.
func resolveCLI(name string) (string, error) {
	if name == "" {
		name = "agent-browser"
	}
	if !strings.ContainsRune(name, filepath.Separator) {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("%w: %q not found on PATH (set --agent-browser or BAY_AGENT_BROWSER)", ErrCLIMissing, name)
		}
		return p, nil
	}
	st, err := os.Stat(name)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrCLIMissing, err)
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%w: %s is not an executable file", ErrCLIMissing, name)
	}
	return name, nil
}

// childEnv is the environment every CLI call gets: base plus the browser
// defaults that are not set, plus the socket directory made explicit so
// Gull's health check looks where the daemon lives.
func childEnv(base []string, workspace string) []string {
	env := append([]string(nil), base...)
	setDefault := func(k, v string) {
		if cur, ok := lookupEnv(env, k); !ok || cur == "" {
			env = append(env, k+"="+v)
		}
	}
	if _, err := os.Stat(defaultChromium); err == nil {
		setDefault("AGENT_BROWSER_EXECUTABLE_PATH", defaultChromium)
	}
	setDefault("AGENT_BROWSER_ARGS", defaultBrowserArgs)
	setDefault("AGENT_BROWSER_SCREENSHOT_DIR", workspace)
	setDefault("AGENT_BROWSER_DOWNLOAD_PATH", workspace)
	setDefault("AGENT_BROWSER_SOCKET_DIR", socketBaseDir(env))
	return env
}

// cliArgs puts the session and the persistent profile in front of the
// caller's words. They are the same on every call, so a running daemon sees
// no changed launch option: no relaunch, no "already running" warning. A
// caller who passes --session or --profile later on the line overrides them
// (the CLI takes the last value); that is passthrough, not our business.
func cliArgs(session, profileDir string, words []string) []string {
	if len(words) > 0 && words[0] == "agent-browser" {
		words = words[1:] // forgive a redundant program name
	}
	args := make([]string, 0, len(words)+4)
	args = append(args, "--session", session, "--profile", profileDir)
	return append(args, words...)
}

// limitedBuffer keeps the first max bytes written and notes what it dropped.
type limitedBuffer struct {
	buf     bytes.Buffer
	max     int
	dropped int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	room := b.max - b.buf.Len()
	if room >= len(p) {
		return b.buf.Write(p)
	}
	if room > 0 {
		b.buf.Write(p[:room])
	}
	b.dropped += len(p) - max(room, 0)
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	if b.dropped == 0 {
		return b.buf.String()
	}
	return b.buf.String() + fmt.Sprintf("\n[gull: output truncated, %d bytes dropped]", b.dropped)
}

// killReason tells a killed command's stderr why it was killed.
type killReason func() string

// runCLI runs the CLI once in dir with env and args. It returns an error only
// when the CLI could not be started; a command that fails or is killed is a
// result. When ctx ends, the CLI's whole process group is killed (the daemon
// it may have spawned lives in its own session and survives, as it must) and
// the result has ExitCode -1 with why() appended to stderr.
func runCLI(ctx context.Context, cli, dir string, env, args []string, why killReason) (ExecResponse, error) {
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// Negative pid: the whole group, i.e. the CLI and anything it forked
		// that did not leave the group.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	// A grandchild that escaped the group could hold our pipes open; do not
	// wait for it forever.
	cmd.WaitDelay = 2 * time.Second
	stdout := &limitedBuffer{max: maxOutput}
	stderr := &limitedBuffer{max: maxOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		if ctx.Err() != nil {
			return ExecResponse{ExitCode: -1, Stderr: why()}, nil
		}
		return ExecResponse{}, fmt.Errorf("%w: start %s: %v", ErrCLIMissing, cli, err)
	}
	err := cmd.Wait()
	res := ExecResponse{Stdout: stdout.String(), Stderr: stderr.String()}
	switch {
	case ctx.Err() != nil:
		res.ExitCode = -1
		res.Stderr = appendLine(res.Stderr, why())
	case err == nil:
		res.ExitCode = 0
	default:
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			// Wait failed for another reason (e.g. the pipe wait delay).
			res.ExitCode = -1
			res.Stderr = appendLine(res.Stderr, "gull: "+err.Error())
			break
		}
		res.ExitCode = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.ExitCode = 128 + int(ws.Signal()) // as a shell reports it
		}
	}
	return res, nil
}

func appendLine(s, line string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s + line
}
