package ship

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/runtimes/wire"
)

// running lists live processes whose command line contains s.
func running(s string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), s) {
			continue
		}
		if st, ok := readStat(pid); ok && !st.zombie {
			out = append(out, pid)
		}
	}
	return out
}

// TestShellTimeoutKillsEscapedChildren: a timed-out command's children die
// with it, including one that called setsid and one orphaned by a double
// fork (re-parented away from the command).
func TestShellTimeoutKillsEscapedChildren(t *testing.T) {
	sp := startShip(t, shipOpts{})
	tag := strconv.Itoa(int(time.Now().UnixNano() % 1e6))
	cmd := "setsid sleep 301." + tag + " & (setsid sleep 302." + tag + " &) ; sleep 303." + tag
	start := time.Now()
	r := shExec(t, sp.client, ShellExecRequest{Command: cmd, Timeout: 1})
	if r.Success || r.Error == nil || !strings.Contains(*r.Error, "every process it started were killed") {
		t.Fatalf("timed-out command: %+v", r)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %s", d)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		left := running("sleep 30")
		var mine []int
		for _, pid := range left {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			if strings.Contains(string(b), "."+tag) {
				mine = append(mine, pid)
			}
		}
		if len(mine) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of the timed-out command survive: %v", mine)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPythonHonoursCallerDeadline: cells queued behind a long one whose
// caller's budget runs out are never run; the running one is interrupted
// and answered before the caller gives up.
func TestPythonHonoursCallerDeadline(t *testing.T) {
	ws := t.TempDir()
	sp := startShip(t, shipOpts{workspace: ws})
	pyExec(t, sp.client, "1", 30) // warm
	var wg sync.WaitGroup
	errs := make([]error, 4)
	res := make([]PythonExecResponse, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// 8 s budget less the answer margin and the interrupt grace:
			// the first cell (3 s) fits, the next is cut short, the rest never run.
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
			defer cancel()
			if i > 0 {
				time.Sleep(200 * time.Millisecond)
			}
			code := "import time\ntime.sleep(3)\nopen('ran-" + strconv.Itoa(i) + "', 'w').write('x')"
			res[i], errs[i] = sp.client.PythonExec(ctx, PythonExecRequest{Code: code, Timeout: 30})
		}(i)
	}
	wg.Wait()
	notRun, interrupted, ok := 0, 0, 0
	for i := range errs {
		switch {
		case errs[i] != nil:
			we, isWire := wire.AsError(errs[i])
			if !isWire || we.Status != 504 || we.Code != wire.CodeTimeout {
				t.Fatalf("cell %d: %v (the caller must hear the runtime's answer, not its own timeout)", i, errs[i])
			}
			notRun++
			if _, err := os.Stat(ws + "/ran-" + strconv.Itoa(i)); err == nil {
				t.Fatalf("cell %d was reported not run but ran", i)
			}
		case res[i].Success:
			ok++
		default:
			if res[i].Error == nil || !strings.Contains(*res[i].Error, "interrupted") {
				t.Fatalf("cell %d: %+v", i, res[i])
			}
			interrupted++
		}
	}
	if ok != 1 || notRun+interrupted != 3 || notRun == 0 {
		t.Fatalf("ok %d interrupted %d not run %d", ok, interrupted, notRun)
	}
	// Nothing runs later: wait past the cells' time and look again.
	time.Sleep(4 * time.Second)
	ents, _ := os.ReadDir(ws)
	ran := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "ran-") {
			ran++
		}
	}
	if ran != ok {
		t.Fatalf("%d cells ran, %d reported success", ran, ok)
	}
	if r := pyExec(t, sp.client, "40+2", 10); !strings.Contains(r.Output.Text, "42") {
		t.Fatalf("kernel after: %+v", r)
	}
}
