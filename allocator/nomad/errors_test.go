package nomad

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
)

// TestNomadErrorsClassified runs the allocator against an HTTP server that
// answers as Nomad does when it refuses or breaks, and checks each answer
// becomes the right kind once: 403 → ErrDenied naming the capability (and
// not "start failed", which clients would retry), 5xx such as "No path to
// node" → ErrUnavailable, 400 → ErrRefused.
func TestNomadErrorsClassified(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		kind   error
		cap    string
	}{
		{"denied", 403, "Permission denied", allocator.ErrDenied, "host-volume-create"},
		{"no token", 403, "ACL token not found", allocator.ErrDenied, "host-volume-create"},
		{"no path to node", 500, "No path to node", allocator.ErrUnavailable, ""},
		{"rate limited", 429, "rate limit exceeded", allocator.ErrUnavailable, ""},
		{"refused", 400, "plugin \"nope\" not found", allocator.ErrRefused, ""},
		{"validation as 500", 500, "1 error occurred: group \"session\" has no tasks", allocator.ErrRefused, ""},
		{"no leader", 500, "No cluster leader", allocator.ErrUnavailable, ""},
		{"proxy down", 502, "bad gateway", allocator.ErrUnavailable, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, "/v1/event/stream") || strings.HasPrefix(r.URL.Path, "/v1/allocations") {
					http.Error(w, "Permission denied", http.StatusForbidden)
					return
				}
				if r.URL.Path == "/v1/volumes" && r.URL.Query().Get("type") == "host" {
					_, _ = w.Write([]byte("[]"))
					return
				}
				http.Error(w, tc.body, tc.status)
			}))
			defer srv.Close()
			a, err := New(Config{Address: srv.URL}, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			_, err = a.CreateCargo(context.Background(), allocator.CargoSpec{ID: "ws-1"})
			var be *allocator.BackendError
			if !errors.As(err, &be) || !errors.Is(err, tc.kind) {
				t.Fatalf("CreateCargo = %v, want a BackendError of kind %v", err, tc.kind)
			}
			if errors.Is(err, allocator.ErrStartFailed) {
				t.Fatalf("classified as a failed start: %v", err)
			}
			if tc.cap != "" && !strings.Contains(be.Capability, tc.cap) {
				t.Fatalf("capability %q does not name %q", be.Capability, tc.cap)
			}
			if !strings.Contains(err.Error(), tc.body) {
				t.Fatalf("error %q lost Nomad's answer %q", err, tc.body)
			}
		})
	}
}

// TestRegisterDeniedIsNotAFailedStart: a job registration refused for lack
// of permission comes back as ErrDenied naming submit-job and the volume
// capability, not as a retryable failed start.
func TestRegisterDeniedIsNotAFailedStart(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/jobs") {
			http.Error(w, "Permission denied", http.StatusForbidden)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/v1/job/") {
			http.Error(w, "job not found", http.StatusNotFound)
			return
		}
		http.Error(w, "Permission denied", http.StatusForbidden)
	}))
	defer srv.Close()
	cfg := fakeConfig(srv.URL, "test")
	a, err := New(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	p := fakeProfile()
	_, err = a.Start(context.Background(), allocator.StartRequest{SandboxID: "sandbox-1", SessionID: "sess-1", Profile: p, Cargo: allocator.Cargo{ID: "ws-1", Locator: `{"id":"v1","name":"bay-cargo-ws-1","host_path":"/tmp/x"}`}})
	var be *allocator.BackendError
	if !errors.As(err, &be) || !errors.Is(err, allocator.ErrDenied) || errors.Is(err, allocator.ErrStartFailed) {
		t.Fatalf("Start = %v, want ErrDenied and not ErrStartFailed", err)
	}
	if !strings.Contains(be.Capability, "submit-job") || !strings.Contains(be.Capability, "mount-readwrite") {
		t.Fatalf("capability %q", be.Capability)
	}
}
