package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testPageHTML = `<!doctype html><html><head><title>Bay Test Page</title></head>
<body><h1 id="h">Hello from Bay</h1><input id="name" placeholder="name"><button onclick="document.getElementById('h').textContent='clicked '+document.getElementById('name').value">Go</button></body></html>`

// servePage writes html into the sandbox's workspace and serves it with
// Python's http.server started by the session's kernel, on 127.0.0.1 of
// the session's network namespace; it returns the URL Gull opens.
func servePage(t *testing.T, g *gateway, id, html string) string {
	t.Helper()
	g.must(200, "PUT", "/v1/sandboxes/"+id+"/filesystem/files", map[string]any{"path": "site/index.html", "content": html})
	const port = 8765
	code := fmt.Sprintf(`
import subprocess, time, urllib.request
_page_srv = subprocess.Popen(["python3", "-m", "http.server", "%d", "--bind", "127.0.0.1"], cwd="/workspace/site",
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(100):
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/", timeout=1).read()
        print("page up")
        break
    except Exception:
        time.sleep(0.05)
`, port, port)
	r := g.must(200, "POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": code})
	if !strings.Contains(fmt.Sprint(r["output"]), "page up") {
		t.Fatalf("page server did not start in the sandbox: %v", r)
	}
	return fmt.Sprintf("http://127.0.0.1:%d/", port)
}

// sh runs a shell command in a sandbox and returns its output and exit code.
func (g *gateway) sh(id, command string) (string, int) {
	g.t.Helper()
	r := g.must(200, "POST", "/v1/sandboxes/"+id+"/shell/exec", map[string]any{"command": command, "timeout": 60})
	code := -1
	if v, ok := r["exit_code"].(float64); ok {
		code = int(v)
	}
	return fmt.Sprint(r["output"]), code
}

func requireSandbox(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("no bwrap on PATH (install bubblewrap): the embedded default refuses to start without it")
	}
}

// TestSandboxIsolation attacks the embedded default from inside a sandbox:
// every attempt to reach another session, the gateway or the host must
// fail, while the session itself works as Shipyard Neo's images do.
func TestSandboxIsolation(t *testing.T) {
	requireSandbox(t)
	g := startGateway(t, profilesHCL+`
profile "small" {
  container "ship" {
    runtime_type = "ship"
    resources {
      memory = 512
    }
  }
}
profile "offline" {
  network = "none"
  container "ship" {
    runtime_type = "ship"
  }
}
`)
	victim := g.must(201, "POST", "/v1/sandboxes", nil)["id"].(string)
	attacker := g.must(201, "POST", "/v1/sandboxes", nil)["id"].(string)

	// The victim writes a secret into its cargo; the attacker learns where
	// that cargo lives on the host.
	if out, code := g.sh(victim, "echo victim-secret > secret.txt && ls -ln secret.txt"); code != 0 {
		t.Fatalf("victim write: %d %s", code, out)
	}
	victimCargo := filepath.Join(g.dataDir, "cargos", g.must(200, "GET", "/v1/sandboxes/"+victim, nil)["cargo_id"].(string))
	if b, err := os.ReadFile(filepath.Join(victimCargo, "secret.txt")); err != nil || !strings.Contains(string(b), "victim-secret") {
		t.Fatalf("the victim's file is not in its cargo on the host (%s): %v %q", victimCargo, err, b)
	}

	// Who and where.
	out, _ := g.sh(attacker, `echo "user=$(whoami) uid=$(id -u) home=$HOME pwd=$(pwd)"`)
	if !strings.Contains(out, "user=shipyard uid=1000 home=/workspace pwd=/workspace") {
		t.Errorf("identity: %s", out)
	}
	out, _ = g.sh(attacker, `grep -E '^(CapEff|NoNewPrivs)' /proc/self/status | tr -s '\t' ' '`)
	if !strings.Contains(out, "CapEff: 0000000000000000") || !strings.Contains(out, "NoNewPrivs: 1") {
		t.Errorf("capabilities: %s", out)
	}
	// Files written in the sandbox belong to an unprivileged host uid.
	g.sh(attacker, "echo x > mine.txt")
	attackerCargo := filepath.Join(g.dataDir, "cargos", g.must(200, "GET", "/v1/sandboxes/"+attacker, nil)["cargo_id"].(string))
	if fi, err := os.Stat(filepath.Join(attackerCargo, "mine.txt")); err != nil {
		t.Errorf("sandbox file not in the cargo: %v", err)
	} else if uid := fileUID(fi); uid == 0 {
		t.Errorf("a file written in the sandbox is owned by root on the host")
	}

	// Each of these must fail inside the sandbox.
	pid := g.cmd.Process.Pid
	attacks := []struct{ name, cmd string }{
		{"read another cargo", "cat " + filepath.Join(victimCargo, "secret.txt")},
		{"write another cargo", "echo pwned > " + filepath.Join(victimCargo, "pwned.txt")},
		{"list the cargos", "ls " + filepath.Join(g.dataDir, "cargos")},
		{"read the store", "head -c 16 " + filepath.Join(g.dataDir, "bay.db")},
		{"read the config", "cat " + g.cfgPath},
		{"see the gateway's process", fmt.Sprintf("cat /proc/%d/environ", pid)},
		{"kill the gateway", fmt.Sprintf("kill -9 %d", pid)},
		{"list host processes", `test $(ls /proc | grep -c '^[0-9]') -gt 50`},
		{"write /etc", "touch /etc/bay-sandbox-test"},
		{"write /usr", "touch /usr/bay-sandbox-test"},
		{"connect to the gateway", fmt.Sprintf("python3 -c \"import socket; socket.create_connection(('127.0.0.1', %d), timeout=2)\"", g.port)},
		{"connect to the gateway via the host", fmt.Sprintf("python3 -c \"import socket; socket.create_connection(('10.0.2.2', %d), timeout=2)\"", g.port)},
		{"reach the docker socket", "test -e /var/run/docker.sock"},
		{"become root", "su -c id root </dev/null"},
	}
	for _, a := range attacks {
		if out, code := g.sh(attacker, a.cmd); code == 0 {
			t.Errorf("%s: succeeded from inside the sandbox: %s", a.name, out)
		}
	}
	if _, err := os.Stat(filepath.Join(victimCargo, "pwned.txt")); err == nil {
		t.Errorf("the attacker wrote into the victim's cargo")
	}
	if _, err := os.Stat("/etc/bay-sandbox-test"); err == nil {
		os.Remove("/etc/bay-sandbox-test")
		t.Errorf("the sandbox created /etc/bay-sandbox-test on the host")
	}
	if g.cmd.ProcessState != nil {
		t.Fatal("the gateway died")
	}

	// Another session's runtime: its Unix socket is not in this sandbox, and
	// its loopback is its own (8123 answers only this session's Ship).
	out, _ = g.sh(attacker, "ls /run/bay; curl -s -m 5 localhost:8123/health")
	if !strings.Contains(out, `"status"`) {
		t.Errorf("curl localhost:8123/health from the sandbox: %s", out)
	}
	if strings.Contains(out, "victim") {
		t.Errorf("sees another session's runtime: %s", out)
	}
	victimSock := g.victimSocket(t, victim)
	if victimSock != "" {
		if out, code := g.sh(attacker, "curl -s -m 3 --unix-socket "+victimSock+" http://x/health"); code == 0 {
			t.Errorf("reached another session's Ship through its socket: %s", out)
		}
	}
	// The victim's secret is still only the victim's.
	if out, _ := g.sh(victim, "cat secret.txt; ls"); !strings.Contains(out, "victim-secret") || strings.Contains(out, "pwned") {
		t.Errorf("victim cargo: %s", out)
	}

	// network = "none": loopback only.
	off := g.must(201, "POST", "/v1/sandboxes", map[string]any{"profile": "offline"})["id"].(string)
	out, _ = g.sh(off, `cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | tr '\n' ' '; curl -s -m 5 localhost:8123/health`)
	if strings.Contains(out, "tap0") || !strings.Contains(out, `"status"`) {
		t.Errorf("offline profile: %s", out)
	}

	// A 3 GiB allocation in a 512 MB profile fails as out of memory and the
	// session heals.
	small := g.must(201, "POST", "/v1/sandboxes", map[string]any{"profile": "small"})["id"].(string)
	g.must(200, "POST", "/v1/sandboxes/"+small+"/python/exec", map[string]any{"code": "x = 1"})
	r := g.must(200, "POST", "/v1/sandboxes/"+small+"/python/exec", map[string]any{"code": "b = bytearray(3 << 30)\nb[::4096] = b'x' * len(b[::4096])\nprint('allocated')"})
	if r["success"] == true || strings.Contains(fmt.Sprint(r["output"]), "allocated") {
		t.Fatalf("3 GiB allocation succeeded under 512 MB: %v", r)
	}
	if msg := fmt.Sprint(r["error"]); !strings.Contains(strings.ToLower(msg), "out of memory") && !strings.Contains(msg, "MemoryError") {
		t.Errorf("the failure does not say out of memory: %v", r)
	}
	t.Logf("3 GiB allocation under 512 MB: %v", r["error"])
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := g.do("POST", "/v1/sandboxes/"+small+"/python/exec", map[string]any{"code": "print(6*7)"})
		if r.Status == 200 && strings.Contains(string(r.Body), "42") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session did not heal after the out-of-memory kill: %d %s", r.Status, r.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if g.cmd.ProcessState != nil {
		t.Fatal("the gateway died")
	}
	if !strings.Contains(g.logs.String(), "out of memory") {
		t.Errorf("the gateway did not report the container running out of memory")
	}
}

// victimSocket is the host path of a session's Ship socket.
func (g *gateway) victimSocket(t *testing.T, id string) string {
	matches, _ := filepath.Glob(filepath.Join(g.dataDir, "run", "*", "sockets", "ship.sock"))
	if len(matches) == 0 {
		matches, _ = filepath.Glob(filepath.Join(os.TempDir(), "bay-run-*", "*", "sockets", "ship.sock"))
	}
	if len(matches) == 0 {
		t.Logf("no runtime sockets found to attack")
		return ""
	}
	return matches[0]
}
