package ship

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/runtimes/wire"
)

// TestShipStreamsOutput: streamed Python and shell deliver output while the
// program runs, end with the same result as the plain call, and a client
// that goes away interrupts the program.
func TestShipStreamsOutput(t *testing.T) {
	sp := startShip(t, shipOpts{})
	c := sp.client

	type chunkAt struct {
		wire.OutputChunk
		at time.Duration
	}
	collect := func() (func(wire.OutputChunk), func() []chunkAt) {
		var mu sync.Mutex
		var got []chunkAt
		start := time.Now()
		return func(ch wire.OutputChunk) {
				mu.Lock()
				got = append(got, chunkAt{ch, time.Since(start)})
				mu.Unlock()
			}, func() []chunkAt {
				mu.Lock()
				defer mu.Unlock()
				return append([]chunkAt(nil), got...)
			}
	}

	on, got := collect()
	start := time.Now()
	res, err := c.ShellExecStream(ctxT(t, 30*time.Second), ShellExecRequest{Command: "echo one; sleep 1; echo two >&2; printf 'é'", Timeout: 10}, on)
	total := time.Since(start)
	if err != nil || res.ReturnCode == nil || *res.ReturnCode != 0 || res.Stdout != "one\né" || res.Stderr != "two\n" {
		t.Fatalf("shell stream: %v %+v", err, res)
	}
	chunks := got()
	if len(chunks) < 2 || chunks[0].Stream != wire.StreamStdout || chunks[0].Text != "one\n" {
		t.Fatalf("chunks %+v", chunks)
	}
	if total-chunks[0].at < 800*time.Millisecond {
		t.Fatalf("first chunk at %s of %s", chunks[0].at, total)
	}
	var stdout, stderr strings.Builder
	for _, ch := range chunks {
		if ch.Stream == wire.StreamStderr {
			stderr.WriteString(ch.Text)
		} else {
			stdout.WriteString(ch.Text)
		}
	}
	if stdout.String() != res.Stdout || stderr.String() != res.Stderr {
		t.Fatalf("streamed %q/%q, result %q/%q", stdout.String(), stderr.String(), res.Stdout, res.Stderr)
	}

	on, got = collect()
	pres, err := c.PythonExecStream(ctxT(t, 30*time.Second), PythonExecRequest{Code: "import time\nprint('a', flush=True)\ntime.sleep(1)\nprint('b')\n40+2", Timeout: 10}, on)
	if err != nil || !pres.Success || pres.Output.Text != "a\nb\n42\n" {
		t.Fatalf("python stream: %v %+v", err, pres)
	}
	pchunks := got()
	var joined strings.Builder
	for _, ch := range pchunks {
		if ch.Stream != wire.StreamOutput {
			t.Fatalf("python chunk on stream %q", ch.Stream)
		}
		joined.WriteString(ch.Text)
	}
	if joined.String() != pres.Output.Text || pchunks[0].Text != "a" && pchunks[0].Text != "a\n" {
		t.Fatalf("python chunks %+v", pchunks)
	}
	if pchunks[len(pchunks)-1].at-pchunks[0].at < 800*time.Millisecond {
		t.Fatalf("python output was not streamed as printed: %+v", pchunks)
	}

	// Going away interrupts: the shell command is killed before it can
	// leave its mark, the Python cell gets KeyboardInterrupt.
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() {
		_, err := c.ShellExecStream(ctx, ShellExecRequest{Command: "echo go; sleep 5; touch survived", Timeout: 30}, func(wire.OutputChunk) {
			select {
			case first <- struct{}{}:
			default:
			}
		})
		errc <- err
	}()
	<-first
	cancel()
	<-errc
	time.Sleep(6 * time.Second)
	if _, err := os.Stat(filepath.Join(sp.workspace, "survived")); err == nil {
		t.Fatal("the shell command ran on after its client went away")
	}
	pyctx, pycancel := context.WithCancel(context.Background())
	go func() { time.Sleep(1500 * time.Millisecond); pycancel() }()
	_, err = c.PythonExecStream(pyctx, PythonExecRequest{Code: "import time\ntime.sleep(20)\nopen('py-survived','w')", Timeout: 60}, nil)
	if err == nil {
		t.Fatal("cancelled python stream returned no error")
	}
	// The interpreter is free again soon (the cell was interrupted, not
	// left running for 20 s).
	r := pyExec(t, c, "1+1", 10)
	if !r.Success {
		t.Fatalf("after interrupt: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(sp.workspace, "py-survived")); err == nil {
		t.Fatal("the python cell ran on after its client went away")
	}
}

func TestMarkerPrefixLen(t *testing.T) {
	m := []byte("\x00ship-end-abc\x00")
	for _, tc := range []struct {
		data string
		want int
	}{{"hello", 0}, {"hello\x00", 1}, {"x\x00ship", 5}, {"\x00ship-end-abc", 13}, {"", 0}} {
		if got := markerPrefixLen([]byte(tc.data), m); got != tc.want {
			t.Errorf("%q: %d, want %d", tc.data, got, tc.want)
		}
	}
}
