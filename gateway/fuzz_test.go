package gateway

import (
	"errors"
	"net/http"
	"path"
	"strings"
	"testing"

	"github.com/bay-sandbox/bay/gateway/apierr"
)

// FuzzDecodeJSON: no input makes a request decoder panic or answer
// anything but a 422 naming a field; what decodes is one JSON value.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `"x"`, `{"ttl": 10000000000}`, `{"ttl": 1e400}`, `{"ttl": -1}`,
		`{"extend_by": 9223372036854775808}`, `{"code": "1", "timeout": "5"}`, `{"commands": [1, 2]}`,
		`{"path": "a\u0000b", "content": 1}`, `{"a":1}{"b":2}`, `{"profile": {"x": [}`, `{"tasks": "idle_session"}`,
		`{"size_limit_mb": 1.5}`, `{"score": 1e308, "passed": "yes"}`, "\xff\xfe", `{"tags": ["a"]}`,
	} {
		f.Add([]byte(seed))
	}
	targets := func() []any {
		return []any{
			&createSandboxRequest{}, &extendTTLRequest{}, &pythonExecRequest{}, &shellExecRequest{},
			&browserExecRequest{}, &browserBatchRequest{}, &writeFileRequest{}, &createCargoRequest{},
			&gcRunRequest{}, &patchHistoryRequest{}, &skillPayloadRequest{}, &createCandidateRequest{},
			&evaluateRequest{}, &promoteRequest{}, &skillRunRequest{}, &deleteRequest{},
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range targets() {
			for _, optional := range []bool{false, true} {
				err := decodeJSON(data, v, optional)
				if err == nil {
					continue
				}
				var ae *apierr.Error
				if !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity {
					t.Fatalf("%T %q: %v (want a 422)", v, data, err)
				}
				if f, _ := ae.Details["field"].(string); f == "" {
					t.Fatalf("%T %q: 422 without a field: %v", v, data, err)
				}
			}
		}
	})
}

// FuzzWorkspacePath: an accepted path is normalised, relative, inside the
// workspace and within Linux's limits; a refused one is a 400 invalid_path.
func FuzzWorkspacePath(f *testing.F) {
	for _, seed := range []string{
		"", ".", "..", "../x", "a/../../b", "/etc/passwd", "a\x00b", "a//b/./c", strings.Repeat("a/", 2100),
		strings.Repeat("n", 256), "ok/" + strings.Repeat("n", 255), "…/ü", "\xff", "a/..", "./../.",
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, p string, allowRoot bool) {
		got, err := workspacePath("path", p, allowRoot)
		if err != nil {
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != apierr.CodeInvalidPath {
				t.Fatalf("%q: %v (want 400 invalid_path)", p, err)
			}
			return
		}
		switch {
		case got != path.Clean(got):
			t.Fatalf("%q → %q is not clean", p, got)
		case strings.HasPrefix(got, "/"), got == "..", strings.HasPrefix(got, "../"):
			t.Fatalf("%q → %q escapes the workspace", p, got)
		case strings.ContainsRune(got, 0):
			t.Fatalf("%q → %q holds a NUL", p, got)
		case len(got) > maxPathBytes:
			t.Fatalf("%q → %d bytes", p, len(got))
		case got == "." && !allowRoot:
			t.Fatalf("%q → the root, not allowed", p)
		}
		for _, c := range strings.Split(got, "/") {
			if len(c) > maxNameBytes {
				t.Fatalf("%q → component of %d bytes", p, len(c))
			}
		}
	})
}

// FuzzScrubAddrs: no runtime address survives in an error message.
func FuzzScrubAddrs(f *testing.F) {
	for _, seed := range []string{
		`Post "http://127.0.0.1:42339/ipython/exec": dial tcp 127.0.0.1:42339: connection refused`,
		"unix:///run/bay/s.sock", "[::1]:8123 refused", "plain message",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		out := scrubAddrs(msg)
		if internalAddr.MatchString(out) {
			t.Fatalf("%q → %q still holds an address", msg, out)
		}
		for _, bad := range []string{"http://", "https://", "unix://"} {
			if strings.Contains(strings.ToLower(out), bad) && !strings.Contains(strings.ToLower(msg), "<runtime>") {
				t.Fatalf("%q → %q", msg, out)
			}
		}
	})
}
