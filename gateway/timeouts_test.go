package gateway_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/gateway"
)

// TestTimedOutCallsAreRecorded: of concurrent cells that cannot all fit in
// their budget, those the gateway answers 504 never run in the runtime
// (later), and every call appears in history, the timed-out ones as failed.
func TestTimedOutCallsAreRecorded(t *testing.T) {
	h := newHarness(t, harnessOpts{gateway: func(c *gateway.Config) { c.RuntimeGrace = 2 * time.Second }})
	id := str(h.create(nil)["id"])
	h.python(id, "import time")
	const n = 6
	var wg sync.WaitGroup
	status := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := h.do("POST", sbPath(id, "/python/exec"), map[string]any{"code": "time.sleep(1)\nopen('ran', 'a').write('x')", "timeout": 3})
			status[i] = r.Status
		}(i)
	}
	wg.Wait()
	ok, timedOut := 0, 0
	for _, st := range status {
		switch st {
		case http.StatusOK:
			ok++
		case http.StatusGatewayTimeout:
			timedOut++
		default:
			t.Fatalf("statuses %v", status)
		}
	}
	if timedOut == 0 {
		t.Fatalf("statuses %v: expected some cells past their budget", status)
	}
	hist := h.must(200, "GET", sbPath(id, "/history?exec_type=python"), nil)
	if total := num(hist["total"]); total != n+1 {
		t.Fatalf("history holds %d python calls, want %d: %v", total, n+1, hist)
	}
	failed := 0
	for _, e := range hist["entries"].([]any) {
		m := e.(map[string]any)
		if m["success"] == false {
			failed++
		}
	}
	time.Sleep(3 * time.Second) // nothing queued may run after its caller left
	out := h.python(id, "print(len(open('ran').read()) if __import__('os').path.exists('ran') else 0)")
	ran := 0
	for _, r := range str(out["output"]) {
		if r >= '0' && r <= '9' {
			ran = ran*10 + int(r-'0')
		}
	}
	if ran > ok {
		t.Fatalf("%d cells ran but only %d answered 200 (%v)", ran, ok, status)
	}
	if failed < timedOut {
		t.Fatalf("%d failed entries, %d calls timed out", failed, timedOut)
	}
}
