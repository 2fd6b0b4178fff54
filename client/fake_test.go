package client_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// fakeGateway is a small stand-in for the gateway, answering the wire shapes
// of docs/openapi.json, for examples and unit tests. The SDK's tests against
// a real gateway are in e2e/.
type fakeGateway struct {
	*httptest.Server
	mu       sync.Mutex
	notReady int // answer 503 to this many exec calls first
	calls    map[string]int
	keys     []string
}

func newFakeGateway() *fakeGateway {
	f := &fakeGateway{calls: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/sandboxes", func(w http.ResponseWriter, r *http.Request) {
		f.count(r)
		f.mu.Lock()
		f.keys = append(f.keys, r.Header.Get("Idempotency-Key"))
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":"sandbox-0123456789ab","status":"starting","phase":"starting_containers","profile":"python-default",`+
			`"cargo_id":"ws-0123456789ab","capabilities":["python","shell","filesystem"],"created_at":"2026-01-02T03:04:05.000Z",`+
			`"expires_at":null,"idle_expires_at":null,"containers":null}`)
	})
	mux.HandleFunc("GET /v1/sandboxes/{id}", func(w http.ResponseWriter, r *http.Request) {
		n := f.count(r)
		status, phase := "ready", "null"
		if n == 1 {
			status, phase = "starting", `"health_check"`
		}
		fmt.Fprintf(w, `{"id":%q,"status":%q,"phase":%s,"profile":"python-default","cargo_id":"ws-0123456789ab",`+
			`"capabilities":["python"],"created_at":"2026-01-02T03:04:05.000Z","expires_at":null,"idle_expires_at":null,"containers":null}`,
			r.PathValue("id"), status, phase)
	})
	mux.HandleFunc("POST /v1/sandboxes/{id}/python/exec", func(w http.ResponseWriter, r *http.Request) {
		f.count(r)
		if f.takeNotReady(w, r) {
			return
		}
		var req struct{ Code string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		out := "3\n"
		if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, ": stream\n\nevent: output\ndata: {\"stream\":\"output\",\"text\":\"3\\n\"}\n\n")
		}
		res := fmt.Sprintf(`{"success":true,"output":%q,"error":null,"data":{"execution_count":1,"output":{"text":%q,"images":[]}},`+
			`"execution_id":"exec-0123456789ab","execution_time_ms":4,"code":null}`, out, out)
		if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			fmt.Fprintf(w, "event: result\ndata: %s\n\n", res)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, res)
	})
	mux.HandleFunc("POST /v1/sandboxes/{id}/shell/exec", func(w http.ResponseWriter, r *http.Request) {
		f.count(r)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: output\ndata: {\"stream\":\"stdout\",\"text\":\"hello\\n\"}\n\n")
		fmt.Fprint(w, "event: error\ndata: {\"error\":{\"code\":\"timeout\",\"message\":\"the runtime did not answer in time\",\"request_id\":\"req-1\"}}\n\n")
	})
	mux.HandleFunc("GET /v1/sandboxes/{id}/filesystem/files", func(w http.ResponseWriter, r *http.Request) {
		f.count(r)
		w.Header().Set("X-Request-Id", "req-abc")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"code":"file_not_found","message":"no such file or directory: %s","request_id":"req-abc","details":{"path":%q}}}`,
			r.URL.Query().Get("path"), r.URL.Query().Get("path"))
	})
	f.Server = httptest.NewServer(mux)
	return f
}

func (f *fakeGateway) count(r *http.Request) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := r.Method + " " + r.URL.Path
	f.calls[k]++
	return f.calls[k]
}

func (f *fakeGateway) takeNotReady(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.notReady == 0 {
		return false
	}
	f.notReady--
	w.Header().Set("Retry-After", "0")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintf(w, `{"error":{"code":"session_not_ready","message":"sandbox %s is still starting","request_id":"req-503","details":{"sandbox_id":%q,"retry_after_ms":10}}}`,
		r.PathValue("id"), r.PathValue("id"))
	return true
}
