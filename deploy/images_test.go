// Package deploy_test smoke-tests the images deploy/Dockerfile.* build
// (`make images`) with the real Docker engine: each runtime started the way
// a Nomad docker task starts it, and asked what Bay and Shipyard Neo's
// clients rely on.
package deploy_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/internal/testutil"
	"github.com/bay-sandbox/bay/runtimes/gull"
	"github.com/bay-sandbox/bay/runtimes/ship"
	"github.com/bay-sandbox/bay/runtimes/wire"
)

const (
	shipImage = "bay-ship:dev"
	gullImage = "bay-gull:dev"
	bayImage  = "bay:dev"
)

type engine struct {
	t      *testing.T
	docker string
}

func newEngine(t *testing.T, images ...string) *engine {
	t.Helper()
	e := &engine{t: t, docker: testutil.Docker(t)}
	for _, ref := range images {
		testutil.DockerImage(t, ref)
	}
	return e
}

// run runs a docker command and returns its trimmed output.
func (e *engine) run(args ...string) string {
	e.t.Helper()
	out, err := e.try(args...)
	if err != nil {
		e.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (e *engine) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, e.docker, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// start starts a detached container named after the test and removes it
// when the test ends (printing its log when the test failed).
func (e *engine) start(role string, args ...string) string {
	e.t.Helper()
	name := "bay-test-" + role + "-" + randomHex(4)
	id := e.run(append([]string{"run", "-d", "--name", name}, args...)...)
	e.t.Cleanup(func() {
		if e.t.Failed() {
			logs, _ := e.try("logs", "--tail", "60", name)
			e.t.Logf("%s logs:\n%s", name, logs)
		}
		_, _ = e.try("rm", "-f", "-v", name)
	})
	return id
}

// hostURL is the loopback URL of a container port published with
// -p 127.0.0.1::PORT.
func (e *engine) hostURL(id, port string) string {
	e.t.Helper()
	out := e.run("port", id, port+"/tcp")
	addr := strings.Split(out, "\n")[0]
	return "http://" + addr
}

// waitHealthy polls GET url/health until it answers 200.
func waitHealthy(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s/health not healthy after 90s: %s", url, last)
}

// testSecret is the session secret the runtimes are started with, as the
// gateway hands one to every session's containers.
const testSecret = "images-test-session-secret"

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// cargo is a host directory mounted at /workspace, as Nomad mounts a
// session's host volume into both containers.
func cargo(t *testing.T) string {
	dir, err := os.MkdirTemp("", "bay-cargo-")
	if err != nil {
		t.Fatal(err)
	}
	// The containers' user (uid 1000) leaves files the test user may not be
	// able to remove; the test process runs as root in CI.
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func shellOK(t *testing.T, c *ship.Client, cmd string) string {
	t.Helper()
	res, err := c.ShellExec(context.Background(), ship.ShellExecRequest{Command: cmd, Timeout: 60})
	if err != nil {
		t.Fatalf("shell %q: %v", cmd, err)
	}
	if !res.Success {
		t.Fatalf("shell %q failed (%v): %s%s", cmd, res.ReturnCode, res.Stdout, res.Stderr)
	}
	return strings.TrimSpace(res.Stdout)
}

func TestShipImage(t *testing.T) {
	e := newEngine(t, shipImage)
	dir := cargo(t)
	id := e.start("ship", "-p", "127.0.0.1::8123", "-e", "BAY_RUNTIME_SECRET="+testSecret, "-v", dir+":/workspace", shipImage)
	url := e.hostURL(id, "8123")
	waitHealthy(t, url)
	c := ship.NewClient(url, wire.WithSecret(nil, testSecret))
	ctx := context.Background()

	res, err := c.PythonExec(ctx, ship.PythonExecRequest{Code: strings.Join([]string{
		"import os, pwd, IPython, numpy, matplotlib, PIL",
		"print(os.getuid(), pwd.getpwuid(os.getuid()).pw_name, os.getcwd(), os.environ['HOME'])",
		"_ = open('from-python.txt', 'w').write(str(numpy.arange(4).sum()))",
	}, "\n"), Timeout: 120})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Success {
		t.Fatalf("python failed: %v\n%s", res.Error, res.Output.Text)
	}
	if got, want := strings.TrimSpace(res.Output.Text), "1000 shipyard /workspace /workspace"; got != want {
		t.Errorf("python runs as %q, want %q", got, want)
	}
	// The cell's file is in the cargo, owned by shipyard.
	st, err := os.Stat(filepath.Join(dir, "from-python.txt"))
	if err != nil {
		t.Fatalf("file written by python not in the cargo: %v", err)
	}
	if uid := st.Sys().(*syscall.Stat_t).Uid; uid != 1000 {
		t.Errorf("cargo file owned by uid %d, want 1000", uid)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "from-python.txt")); string(b) != "6" {
		t.Errorf("cargo file = %q, want 6", b)
	}

	// matplotlib renders with the image's default backend and Ship returns
	// the figure.
	res, err = c.PythonExec(ctx, ship.PythonExecRequest{Code: "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()", Timeout: 120})
	if err != nil || !res.Success {
		t.Fatalf("matplotlib cell: %v, %+v", err, res)
	}
	if len(res.Output.Images) == 0 || res.Output.Images[0]["image/png"] == "" {
		t.Errorf("matplotlib figure not returned: %+v", res.Output)
	}

	// The tools Shipyard Neo's clients expect in a shell, as shipyard.
	if who := shellOK(t, c, "id -un; id -u"); who != "shipyard\n1000" {
		t.Errorf("shell runs as %q", who)
	}
	for _, cmd := range []string{"git --version", "curl --version", "node --version", "npm --version", "pnpm --version", "python3 -c 'import PIL; print(PIL.__version__)'"} {
		out := shellOK(t, c, cmd)
		t.Logf("%s: %s", cmd, strings.SplitN(out, "\n", 2)[0])
	}
	// A runtime image carries no compilers.
	if cc := shellOK(t, c, "for c in gcc cc c++ g++ clang ld make; do command -v $c; done; true"); cc != "" {
		t.Errorf("compilers in the ship image: %s", cc)
	}
	// /etc is not the sandbox user's to change.
	res2, err := c.ShellExec(ctx, ship.ShellExecRequest{Command: "touch /etc/bay-test || exit 3; echo wrote", Timeout: 30})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Success || res2.ReturnCode == nil || *res2.ReturnCode != 3 {
		t.Errorf("shipyard could write /etc: %+v", res2)
	}
}

// Gull and Ship share one network namespace, as the two tasks of a Nomad
// group on a bridge network do: Gull's Chromium opens a page served inside
// Ship's container on 127.0.0.1.
func TestGullImageOpensPageServedByShip(t *testing.T) {
	e := newEngine(t, shipImage, gullImage)
	dir := cargo(t)
	shipID := e.start("ship", "-p", "127.0.0.1::8123", "-p", "127.0.0.1::8115", "-e", "BAY_RUNTIME_SECRET="+testSecret, "-v", dir+":/workspace", shipImage)
	// Docker's default /dev/shm (64 MiB) on purpose: the image must work with it.
	e.start("gull", "--network", "container:"+shipID, "-e", "BAY_RUNTIME_SECRET="+testSecret, "-v", dir+":/workspace", gullImage)
	shipURL, gullURL := e.hostURL(shipID, "8123"), e.hostURL(shipID, "8115")
	waitHealthy(t, shipURL)
	waitHealthy(t, gullURL)
	sc, gc := ship.NewClient(shipURL, wire.WithSecret(nil, testSecret)), gull.NewClient(gullURL, wire.WithSecret(nil, testSecret))
	ctx := context.Background()

	if _, err := sc.WriteFile(ctx, ship.WriteFileRequest{Path: "site/index.html", Content: "<!doctype html><title>Served By Ship</title><h1 id=h>hello from the cargo</h1>"}); err != nil {
		t.Fatal(err)
	}
	bg, err := sc.ShellExec(ctx, ship.ShellExecRequest{Command: "exec python3 -m http.server 8000 --bind 127.0.0.1 --directory /workspace/site", Background: true})
	if err != nil || bg.ProcessID == "" {
		t.Fatalf("start a web server in ship: %v, %+v", err, bg)
	}
	shellOK(t, sc, "for i in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:8000/ && exit 0; sleep 0.1; done; exit 1")

	exec := func(cmd string) string {
		t.Helper()
		res, err := gc.Exec(ctx, gull.ExecRequest{Cmd: cmd, Timeout: 90})
		if err != nil {
			t.Fatalf("gull %q: %v", cmd, err)
		}
		if res.ExitCode != 0 {
			t.Fatalf("gull %q: exit %d: %s%s", cmd, res.ExitCode, res.Stdout, res.Stderr)
		}
		return strings.TrimSpace(res.Stdout)
	}
	start := time.Now()
	exec("open http://127.0.0.1:8000/")
	t.Logf("first open (Chromium launch in the container) took %v", time.Since(start))
	if title := exec("get title"); title != "Served By Ship" {
		t.Errorf("title = %q", title)
	}
	if text := exec("get text #h"); text != "hello from the cargo" {
		t.Errorf("heading = %q", text)
	}
	// Ship's own API on 127.0.0.1:8123 is reachable from Gull's side too.
	exec("open http://127.0.0.1:8123/health")
	if body := exec("get text body"); !strings.Contains(body, "status") {
		t.Errorf("ship health seen by gull = %q", body)
	}
	// A screenshot exercises the renderer's shared memory.
	exec("screenshot shot.png")
	if st, err := os.Stat(filepath.Join(dir, "shot.png")); err != nil || st.Size() == 0 {
		t.Errorf("screenshot not in the cargo: %v", err)
	}
}

const bayConfig = `
allocator = "nomad"
nomad {
  address        = "http://127.0.0.1:1"
  default_driver = "docker"
}
profile "python-default" {
  container "ship" {
    runtime_type = "ship"
    image        = "bay-ship:dev"
  }
}
`

func TestBayImage(t *testing.T) {
	e := newEngine(t, bayImage)
	vol := "bay-test-data-" + randomHex(4)
	e.run("volume", "create", vol)
	t.Cleanup(func() { _, _ = e.try("volume", "rm", "-f", vol) })
	// The image is the gateway for Nomad (it carries no runtimes for the
	// embedded allocator): a Nomad config, with no Nomad reachable, is
	// enough to serve /health.
	cfg := filepath.Join(cargo(t), "bay.hcl")
	if err := os.WriteFile(cfg, []byte(bayConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	id := e.start("bay", "-p", "127.0.0.1::8114", "-v", vol+":/var/lib/bay", "-v", cfg+":/etc/bay/bay.hcl:ro",
		bayImage, "--config", "/etc/bay/bay.hcl")
	url := e.hostURL(id, "8114")
	waitHealthy(t, url)

	if uid := e.run("exec", id, "id", "-u"); uid == "0" {
		t.Errorf("gateway runs as root")
	}
	if user := e.run("exec", id, "id", "-un"); user != "bay" {
		t.Errorf("gateway runs as %q, want bay", user)
	}
	// Its state lives in the volume.
	if files := e.run("exec", id, "ls", "-A", "/var/lib/bay"); files == "" {
		t.Errorf("no state in the data volume")
	}
	if vols := e.run("inspect", "-f", "{{range .Mounts}}{{.Destination}}={{.Name}} {{end}}", id); !strings.Contains(vols, "/var/lib/bay="+vol) {
		t.Errorf("data dir not the volume: %s", vols)
	}
}
