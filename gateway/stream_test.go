package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStreamedExec runs streamed shell and Python through the in-process
// gateway (under -race): output events, then the same result the plain
// call gives, recorded in history; refusals before the start stay plain
// JSON errors; a client that goes away interrupts the command.
func TestStreamedExec(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	id := str(h.create(map[string]any{"profile": "python-default"})["id"])

	type event struct{ name, data string }
	stream := func(ctx context.Context, path, body string) (*http.Response, []event) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "POST", h.url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Accept", "text/event-stream")
		res, err := h.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var evs []event
		var cur event
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "" && cur.name != "":
				evs = append(evs, cur)
				cur = event{}
			case strings.HasPrefix(line, "event: "):
				cur.name = line[7:]
			case strings.HasPrefix(line, "data: "):
				cur.data = line[6:]
			}
		}
		return res, evs
	}

	res, evs := stream(context.Background(), sbPath(id, "/shell/exec"), `{"command":"echo a; echo b >&2; exit 2"}`)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" || len(evs) < 2 {
		t.Fatalf("%d %s %v", res.StatusCode, res.Header.Get("Content-Type"), evs)
	}
	last := evs[len(evs)-1]
	var result map[string]any
	if last.name != "result" || json.Unmarshal([]byte(last.data), &result) != nil {
		t.Fatalf("last event %+v", last)
	}
	if result["exit_code"] != float64(2) || result["output"] != "a\nb\n" || result["success"] != false {
		t.Fatalf("result %v", result)
	}
	var outs []string
	for _, e := range evs[:len(evs)-1] {
		if e.name != "output" {
			t.Fatalf("event %+v before the result", e)
		}
		outs = append(outs, e.data)
	}
	if j := strings.Join(outs, ""); !strings.Contains(j, `"stream":"stdout","text":"a\n"`) || !strings.Contains(j, `"stream":"stderr","text":"b\n"`) {
		t.Fatalf("outputs %v", outs)
	}
	e := h.must(200, "GET", sbPath(id, "/history/", str(result["execution_id"])), nil)
	if e["output"] != "a\nb\n" || e["success"] != false {
		t.Fatalf("history %v", e)
	}

	_, evs = stream(context.Background(), sbPath(id, "/python/exec"), `{"code":"print('p')\n2*21"}`)
	if last := evs[len(evs)-1]; last.name != "result" || !strings.Contains(last.data, `"output":"p\n42\n"`) {
		t.Fatalf("python stream %v", evs)
	}

	// Refused before the start: a plain JSON error with its status.
	res, _ = stream(context.Background(), sbPath(id, "/shell/exec"), `{"command":"x","timeout":0}`)
	if res.StatusCode != 422 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("bad timeout streamed: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	res, _ = stream(context.Background(), sbPath("sandbox-000000000000", "/shell/exec"), `{"command":"x"}`)
	if res.StatusCode != 404 {
		t.Fatalf("unknown sandbox streamed: %d", res.StatusCode)
	}

	// Going away interrupts the command: its process is gone long before
	// it would have ended by itself.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	stream(ctx, sbPath(id, "/shell/exec"), `{"command":"sleep 40; touch survived","timeout":60}`)
	gone := time.Now()
	for {
		r := h.must(200, "POST", sbPath(id, "/shell/exec"), map[string]any{"command": "pgrep -f '[s]leep 40' | wc -l"})
		if strings.TrimSpace(str(r["output"])) == "0" {
			break
		}
		if time.Since(gone) > 20*time.Second {
			t.Fatalf("the command still runs %s after its client went away", time.Since(gone))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("command interrupted %s after its client went away", time.Since(gone))
}
