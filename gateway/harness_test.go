package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator/local"
	"github.com/bay-sandbox/bay/gateway"
	"github.com/bay-sandbox/bay/gateway/gc"
	"github.com/bay-sandbox/bay/gateway/service"
	"github.com/bay-sandbox/bay/gateway/warmpool"
	"github.com/bay-sandbox/bay/internal/testutil"
	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/store/sqlite"
)

const testKey = "gateway-test-key"

// Profiles of the harness. python-default idles out after idleTimeout of
// fake time; python-warm keeps a warm pool.
const (
	idleTimeout   = 10 * time.Minute
	warmRotateTTL = 20 * time.Minute
)

// fakeClock is the one clock the service, GC and warm pool share.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// harness is an in-process gateway over the local allocator with the real
// ship (and, for browser tests, gull) binary.
type harness struct {
	t       *testing.T
	url     string
	dataDir string
	st      *sqlite.Store
	alloc   *local.Allocator
	svc     *service.Manager
	srv     *gateway.Server
	gc      *gc.Collector
	pool    *warmpool.Pool
	clk     *fakeClock
	hc      *http.Client
	logs    *syncBuffer
}

type harnessOpts struct {
	warmPoolSize int  // python-warm's pool size (0: no python-warm pool)
	runWarmPool  bool // run the pool's background loop
	browser      bool // add browser-python (needs gull, agent-browser, chromium)
	// gateway adjusts the gateway's config (limits, keys).
	gateway func(*gateway.Config)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	ship := testutil.Binary(t, "ship")
	py := testutil.DebianPython(t)
	bins := map[string]string{profiles.RuntimeShip: ship}
	extra := map[string][]string{profiles.RuntimeShip: {"BAY_PYTHON=" + py}}

	mk := func(id string, cs ...profiles.Container) profiles.Profile {
		return profiles.Profile{
			ID: id, IdleTimeout: idleTimeout, WarmRotateTTL: warmRotateTTL,
			Restart:    profiles.RestartPolicy{Attempts: 2, Delay: 100 * time.Millisecond},
			Containers: cs,
		}
	}
	ps := []profiles.Profile{mk(profiles.PythonDefault, profiles.NewContainer("ship", profiles.RuntimeShip))}
	if o.warmPoolSize > 0 {
		w := mk("python-warm", profiles.NewContainer("ship", profiles.RuntimeShip))
		w.WarmPoolSize = o.warmPoolSize
		ps = append(ps, w)
	}
	if o.browser {
		bins[profiles.RuntimeGull] = testutil.Binary(t, "gull")
		testutil.Chromium(t)
		extra[profiles.RuntimeGull] = append([]string{"BAY_AGENT_BROWSER=" + testutil.AgentBrowser(t)}, testutil.BrowserEnv()...)
		bs := profiles.NewContainer("ship", profiles.RuntimeShip)
		bs.PrimaryFor = []string{profiles.CapFilesystem}
		ps = append(ps, mk(profiles.BrowserPython, bs, profiles.NewContainer("gull", profiles.RuntimeGull)))
	}
	set, err := profiles.NewSet(ps)
	if err != nil {
		t.Fatalf("profiles: %v", err)
	}

	dir := t.TempDir()
	logs := &syncBuffer{}
	log := hclog.New(&hclog.LoggerOptions{Name: "bay", Level: hclog.Debug, Output: logs})
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(dir, "bay.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	alloc, err := local.New(local.Config{
		DataDir: dir, Binaries: bins, ExtraEnv: extra,
		GracePeriod: time.Second, DestroyGrace: 200 * time.Millisecond,
	}, log)
	if err != nil {
		t.Fatalf("local allocator: %v", err)
	}
	clk := &fakeClock{t: time.Now().UTC().Truncate(time.Millisecond)}
	svc := service.New(service.Config{StartTimeout: 60 * time.Second, StartWait: 60 * time.Second, Now: clk.Now}, st, alloc, set, log)
	gwCfg := gateway.Config{APIKeyHashes: []string{gateway.HashKey(testKey)}}
	if o.gateway != nil {
		o.gateway(&gwCfg)
	}
	srv := gateway.New(gwCfg, st, svc, alloc, set, log)
	collector := gc.New(gc.Config{Enabled: false, Interval: time.Hour, InstanceID: "test-instance", Now: clk.Now}, st, svc, alloc, log)
	srv.SetGC(collector)
	pool := warmpool.New(set.All(), st, svc, log)
	if pool.Enabled() {
		srv.SetWarmPool(pool)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); svc.Run(ctx) }()
	go func() { defer wg.Done(); _ = srv.Serve(ctx, ln) }()
	if o.runWarmPool && pool.Enabled() {
		wg.Add(1)
		go func() { defer wg.Done(); pool.Run(ctx) }()
	}
	h := &harness{
		t: t, url: "http://" + ln.Addr().String(), dataDir: dir, st: st, alloc: alloc, svc: svc, srv: srv,
		gc: collector, pool: pool, clk: clk, hc: &http.Client{Timeout: 2 * time.Minute}, logs: logs,
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		pool.Drain(dctx)
		dcancel()
		svc.Wait()
		_ = alloc.Close()
		_ = st.Close()
		if t.Failed() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
	})
	return h
}

// resp is a finished request.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("decode %q: %v", r.Body, err)
	}
	return m
}

// code returns error.code of an error envelope.
func (r resp) code(t *testing.T) string {
	t.Helper()
	e, ok := r.json(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("not an error envelope (status %d): %s", r.Status, r.Body)
	}
	c, _ := e["code"].(string)
	return c
}

type opt func(*http.Request)

func owner(o string) opt { return func(r *http.Request) { r.Header.Set("X-Owner", o) } }

func idemKey(k string) opt { return func(r *http.Request) { r.Header.Set("Idempotency-Key", k) } }

// do sends body (nil, a string sent raw, or a value sent as JSON).
func (h *harness) do(method, path string, body any, opts ...opt) resp {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	res, err := h.hc.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	checkContract(h.t, method, path, res, b)
	return resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

// must sends a request and fails unless the status is want; it returns the
// decoded JSON object (nil for an empty body).
func (h *harness) must(want int, method, path string, body any, opts ...opt) map[string]any {
	h.t.Helper()
	r := h.do(method, path, body, opts...)
	if r.Status != want {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	if len(bytes.TrimSpace(r.Body)) == 0 {
		return nil
	}
	return r.json(h.t)
}

// wantErr checks status and error code.
func (h *harness) wantErr(status int, code, method, path string, body any, opts ...opt) map[string]any {
	h.t.Helper()
	r := h.do(method, path, body, opts...)
	if r.Status != status {
		h.t.Fatalf("%s %s: status %d, want %d (%s): %s", method, path, r.Status, status, code, r.Body)
	}
	if got := r.code(h.t); got != code {
		h.t.Fatalf("%s %s: code %q, want %q: %s", method, path, got, code, r.Body)
	}
	return r.json(h.t)
}

// create makes a sandbox and returns its response.
func (h *harness) create(body any, opts ...opt) map[string]any {
	h.t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	return h.must(http.StatusCreated, "POST", "/v1/sandboxes", body, opts...)
}

// python runs code and returns the exec response (HTTP 200 expected).
func (h *harness) python(id, code string, opts ...opt) map[string]any {
	h.t.Helper()
	return h.must(http.StatusOK, "POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": code}, opts...)
}

// gcRun runs the named tasks and returns the per-task results by name.
func (h *harness) gcRun(tasks ...string) map[string]map[string]any {
	h.t.Helper()
	rep := h.must(http.StatusOK, "POST", "/v1/admin/gc/run", map[string]any{"tasks": tasks})
	out := map[string]map[string]any{}
	for _, r := range rep["results"].([]any) {
		m := r.(map[string]any)
		out[m["task_name"].(string)] = m
	}
	return out
}

// sessions lists the allocator's running sessions by sandbox id.
func (h *harness) sessions() map[string]string {
	h.t.Helper()
	list, err := h.alloc.List(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range list {
		out[s.SandboxID] = s.SessionID
	}
	return out
}

// waitFor polls cond (real time, for background work such as a warm-up)
// until it holds or the deadline passes.
func (h *harness) waitFor(what string, d time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cargoDir is where the local allocator keeps a cargo's files.
func (h *harness) cargoDir(cargoID string) string {
	cg, err := h.st.GetCargo(context.Background(), "", cargoID)
	if err != nil {
		h.t.Fatalf("get cargo %s: %v", cargoID, err)
	}
	return cg.Locator
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func num(v any) int { f, _ := v.(float64); return int(f) }

func str(v any) string { s, _ := v.(string); return s }

func sbPath(id string, rest ...string) string {
	return fmt.Sprintf("/v1/sandboxes/%s%s", id, strings.Join(rest, ""))
}
