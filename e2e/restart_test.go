package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGatewayCrashLeavesNothingAndRecovers kills the gateway with SIGKILL: its
// runtimes must not outlive it, and a new gateway on the same data reads
// the sandbox as idle and cold-starts it on the same cargo.
func TestGatewayCrashLeavesNothingAndRecovers(t *testing.T) {
	g := startGateway(t, profilesHCL)
	sb := g.must(201, "POST", "/v1/sandboxes", map[string]any{"profile": "python-default"})
	id := sb["id"].(string)
	g.must(200, "PUT", "/v1/sandboxes/"+id+"/filesystem/files", map[string]any{"path": "keep.txt", "content": "kept"})
	// A Python kernel and a background shell job: grandchildren of the gateway.
	g.must(200, "POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "1"})
	g.must(200, "POST", "/v1/sandboxes/"+id+"/shell/exec", map[string]any{"command": "sleep 300 &"})
	if pids := runtimePIDs(t, id, "ship"); len(pids) != 1 {
		t.Fatalf("ship pids %v", pids)
	}

	if err := g.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = g.cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for len(runtimePIDs(t, id, "ship")) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("ship outlived the gateway: %v", runtimePIDs(t, id, "ship"))
		}
		time.Sleep(20 * time.Millisecond)
	}

	g2 := runBay(t, g.cfgPath, g.dataDir, g.port)
	// Whatever the crash left (a kernel, a background job) is gone once a
	// gateway has started on the same data.
	if left := sandboxPIDs(t, id); len(left) != 0 {
		t.Fatalf("processes of the crashed session still running after restart: %v", left)
	}
	if st := g2.must(200, "GET", "/v1/sandboxes/"+id, nil); st["status"] != "idle" {
		t.Fatalf("after a crash the sandbox reads %v, want idle", st["status"])
	}
	r := g2.must(200, "POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "open('keep.txt').read()"})
	if !strings.Contains(r["output"].(string), "kept") {
		t.Fatalf("cargo after a crash: %v", r)
	}
	if st := g2.must(200, "GET", "/v1/sandboxes/"+id, nil); st["status"] != "ready" {
		t.Fatalf("status %v", st["status"])
	}
}
