package gateway_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/gateway"
)

// TestTTLBounds: no ttl or extend_by can overflow time arithmetic, pass the
// operator's cap, or move an expiry backwards; refused values name the
// field and its bounds, and the sandbox is still there afterwards.
func TestTTLBounds(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	now := h.clk.Now()
	ceiling := int64(gateway.MaxTTLCeiling / time.Second)

	for _, ttl := range []any{10000000000, ceiling + 1, "1e30", 1e30, -1, 1.5, "9223372036854775807", "99999999999999999999"} {
		var body any = map[string]any{"ttl": ttl}
		if s, ok := ttl.(string); ok && s != "" && s[0] != '"' {
			body = `{"ttl": ` + s + `}`
		}
		r := h.do("POST", "/v1/sandboxes", body)
		if r.Status != 422 || r.code(t) != "validation_error" {
			t.Fatalf("ttl %v: status %d: %s", ttl, r.Status, r.Body)
		}
		if !strings.Contains(string(r.Body), "ttl") {
			t.Fatalf("ttl %v: message does not name the field: %s", ttl, r.Body)
		}
	}
	r := h.do("POST", "/v1/sandboxes", map[string]any{"ttl": ceiling + 1})
	if d := r.json(t)["error"].(map[string]any)["details"].(map[string]any); num(d["max"]) != int(ceiling) || str(d["field"]) != "ttl" {
		t.Fatalf("ttl details %v", d)
	}

	sb := h.create(map[string]any{"ttl": 60})
	id := str(sb["id"])
	for _, by := range []string{"10000000000", "9223372036854775807", "1e30", "99999999999999999999", fmt.Sprint(ceiling + 1)} {
		r := h.do("POST", sbPath(id, "/extend_ttl"), `{"extend_by": `+by+`}`)
		if r.Status != 422 || r.code(t) != "validation_error" || !strings.Contains(string(r.Body), "extend_by") {
			t.Fatalf("extend_by %s: status %d: %s", by, r.Status, r.Body)
		}
	}
	got := h.must(200, "GET", sbPath(id), nil)
	if got["status"] == "expired" || !parseTS(t, got["expires_at"]).Equal(now.Add(60*time.Second)) {
		t.Fatalf("after refused extensions: %v", got)
	}
	// The largest allowed extension still lands in the future.
	ext := h.must(200, "POST", sbPath(id, "/extend_ttl"), map[string]any{"extend_by": ceiling - 60})
	if e := parseTS(t, ext["expires_at"]); !e.Equal(now.Add(time.Duration(ceiling) * time.Second)) {
		t.Fatalf("max extension: expires_at %v", e)
	}
	// One more second would pass the ceiling.
	h.wantErr(422, "validation_error", "POST", sbPath(id, "/extend_ttl"), map[string]any{"extend_by": 1})
}

// TestOperatorMaxTTL: with limits.max_ttl, "no expiry" means the cap, and
// no extension may put the expiry further than the cap from now.
func TestOperatorMaxTTL(t *testing.T) {
	h := newHarness(t, harnessOpts{gateway: func(c *gateway.Config) { c.MaxTTL = time.Hour }})
	now := h.clk.Now()
	sb := h.create(nil)
	if e := parseTS(t, sb["expires_at"]); !e.Equal(now.Add(time.Hour)) {
		t.Fatalf("no ttl under a cap: expires_at %v, want %v", sb["expires_at"], now.Add(time.Hour))
	}
	h.wantErr(422, "validation_error", "POST", "/v1/sandboxes", map[string]any{"ttl": 3601})
	short := h.create(map[string]any{"ttl": 600})
	id := str(short["id"])
	r := h.do("POST", sbPath(id, "/extend_ttl"), map[string]any{"extend_by": 3500})
	if r.Status != 422 {
		t.Fatalf("extension past the cap: %d %s", r.Status, r.Body)
	}
	if d := r.json(t)["error"].(map[string]any)["details"].(map[string]any); num(d["max"]) != 3000 {
		t.Fatalf("details %v, want max 3000", d)
	}

	// Concurrent extensions add up: the expiry only moves forward.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.must(200, "POST", sbPath(id, "/extend_ttl"), map[string]any{"extend_by": 100})
		}()
	}
	wg.Wait()
	if e := parseTS(t, h.must(200, "GET", sbPath(id), nil)["expires_at"]); !e.Equal(now.Add(1400 * time.Second)) {
		t.Fatalf("after 8 concurrent +100 s: expires_at %v, want %v", e, now.Add(1400*time.Second))
	}
}

// TestBodyLimitWhileReading: a JSON body over the limit is refused with a
// 413 envelope whatever its framing, and the next request on a fresh
// connection works.
func TestBodyLimitWhileReading(t *testing.T) {
	h := newHarness(t, harnessOpts{gateway: func(c *gateway.Config) { c.BodyLimit = 64 << 10 }})
	big := `{"ttl": 60, "pad": "` + strings.Repeat("x", 200<<10) + `"}`
	for _, chunked := range []bool{false, true} {
		var rd io.Reader = strings.NewReader(big)
		if chunked {
			rd = io.MultiReader(strings.NewReader(big)) // unknown length: chunked
		}
		req, _ := http.NewRequest("POST", h.url+"/v1/sandboxes", rd)
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Request-Id", "req-big")
		res, err := h.hc.Do(req)
		if err != nil {
			t.Fatalf("chunked=%v: %v", chunked, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		r := resp{Status: res.StatusCode, Body: b}
		if r.Status != 413 || r.code(t) != "payload_too_large" || !strings.Contains(string(b), `"request_id":"req-big"`) {
			t.Fatalf("chunked=%v: %d %s", chunked, r.Status, b)
		}
	}
	h.create(map[string]any{"ttl": 60})
	if n := len(h.must(200, "GET", "/v1/sandboxes", nil)["items"].([]any)); n != 1 {
		t.Fatalf("%d sandboxes, want 1 (the refused bodies created none)", n)
	}
}

// TestUploadRefusedBeforeBody: an unauthenticated multipart upload is
// refused before its body is read, with no temp file left anywhere; a
// chunked upload leaves the connection at a request boundary.
func TestUploadRefusedBeforeBody(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "multipart-*"))
	// An unauthenticated 8 MiB upload over a raw connection: the answer
	// must come without the gateway reading it all.
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const size = 8 << 20
	fmt.Fprintf(conn, "POST /v1/sandboxes/sandbox-000000000000/filesystem/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: %d\r\n\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n", size)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer before the body: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 401 || !strings.Contains(string(b), `"code":"unauthorized"`) {
		t.Fatalf("unauthenticated upload: %d %s", res.StatusCode, b)
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "multipart-*"))
	if len(after) > len(before) {
		t.Fatalf("multipart temp files appeared: %v", after)
	}

	id := str(h.create(nil)["id"])
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("path", "up/a.txt")
	fw, _ := mw.CreateFormFile("file", "a.txt")
	fmt.Fprint(fw, "hello")
	mw.Close()
	tr := &http.Transport{MaxConnsPerHost: 1}
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	req, _ := http.NewRequest("POST", h.url+sbPath(id, "/filesystem/upload"), io.MultiReader(&body)) // chunked
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("chunked upload: %d %s", res.StatusCode, b)
	}
	// The same keep-alive connection serves the next request.
	req, _ = http.NewRequest("GET", h.url+sbPath(id, "/filesystem/files?path=up/a.txt"), nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	res, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), "hello") {
		t.Fatalf("request after a chunked upload: %d %s", res.StatusCode, b)
	}

	// A path over 4096 bytes is refused, not cut.
	body.Reset()
	mw = multipart.NewWriter(&body)
	_ = mw.WriteField("path", strings.Repeat("a/", 2100)+"f")
	fw, _ = mw.CreateFormFile("file", "f")
	fmt.Fprint(fw, "x")
	mw.Close()
	r := h.do("POST", sbPath(id, "/filesystem/upload"), body.String(), func(r *http.Request) { r.Header.Set("Content-Type", mw.FormDataContentType()) })
	if r.Status != 400 || r.code(t) != "invalid_path" {
		t.Fatalf("long upload path: %d %s", r.Status, r.Body)
	}
	long := strings.Repeat("n", 256)
	h.wantErr(400, "invalid_path", "PUT", sbPath(id, "/filesystem/files"), map[string]any{"path": long, "content": "x"})
	h.wantErr(400, "validation_error", "POST", sbPath(id, "/shell/exec"), map[string]any{"command": "echo a\x00b"})
}

// TestIdleConnectionFlood: thousands of idle, unauthenticated connections
// (more than the cap) do not keep a real client from creating a sandbox
// and running Python, and the gateway holds no more than its cap.
func TestIdleConnectionFlood(t *testing.T) {
	const capConns = 500
	const flood = 3000
	h := newHarness(t, harnessOpts{gateway: func(c *gateway.Config) {
		c.Conns = gateway.ConnLimits{MaxConns: capConns, MaxConnsPerIP: capConns, MinIdle: 500 * time.Millisecond}
	}})
	addr := strings.TrimPrefix(h.url, "http://")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < flood; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if i%2 == 0 {
			// Half of them start a request and never finish the headers.
			fmt.Fprint(c, "GET /v1/sandboxes HTTP/1.1\r\nHost: x\r\n")
		}
		conns = append(conns, c)
	}
	time.Sleep(time.Second) // every flood connection is now older than MinIdle
	if open := h.srv.OpenConns(); open > capConns {
		t.Fatalf("gateway holds %d connections, cap %d", open, capConns)
	}
	sb := h.create(nil)
	out := h.python(str(sb["id"]), "print(6*7)")
	if !strings.Contains(str(out["output"]), "42") {
		t.Fatalf("python after the flood: %v", out)
	}
	if open := h.srv.OpenConns(); open > capConns {
		t.Fatalf("gateway holds %d connections, cap %d", open, capConns)
	}
}

// TestHeaderTimeout: a connection that never finishes its headers is
// closed after the header timeout, with a 408 envelope carrying a request id.
func TestHeaderTimeout(t *testing.T) {
	h := newHarness(t, harnessOpts{gateway: func(c *gateway.Config) { c.HeaderTimeout = 500 * time.Millisecond }})
	c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /health HTTP/1.1\r\nHost: x\r\n")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("connection not closed by the header timeout: %v", err)
	}
	if len(b) > 0 && !strings.Contains(string(b), `"request_id":"req-`) {
		t.Fatalf("header timeout answer without a request id: %s", b)
	}
	// Oversized headers: 431 in the envelope.
	c2, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprintf(c2, "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("y", 64<<10))
	_ = c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	if res.StatusCode != 431 || !strings.Contains(string(b), `"request_id":"req-`) || res.Header.Get("X-Request-Id") == "" {
		t.Fatalf("431: %d %s", res.StatusCode, b)
	}
}
