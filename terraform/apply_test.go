package terraform

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/internal/testutil"
)

// TestApplyOnNomadWithACLs applies the module for real: OpenTofu (tofu on
// PATH, or BAY_TOFU), the Nomad and time providers from a filesystem mirror
// (BAY_TF_MIRROR, laid out as <host>/hashicorp/<name>/<version>/<os_arch>/),
// a Nomad dev agent with ACLs on and the docker driver, and the gateway image
// (BAY_TF_GATEWAY_IMAGE, default bay:dev). It checks the gateway serves with
// the module's policy on its workload identity, a second plan is empty, a
// change rolls out, and destroy leaves no job, volume, policy or variable.
func TestApplyOnNomadWithACLs(t *testing.T) {
	tofu := os.Getenv("BAY_TOFU")
	if tofu == "" {
		p, err := exec.LookPath("tofu")
		if err != nil {
			t.Skip("no tofu on PATH (and BAY_TOFU unset): the real apply needs OpenTofu")
		}
		tofu = p
	}
	mirror := os.Getenv("BAY_TF_MIRROR")
	if mirror == "" {
		t.Skip("BAY_TF_MIRROR unset: no provider mirror with hashicorp/nomad 2.6.1 and hashicorp/time 0.14.0")
	}
	nomad := testutil.Nomad(t)
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skip("no docker engine: the gateway job runs on the docker driver")
	}
	image := os.Getenv("BAY_TF_GATEWAY_IMAGE")
	if image == "" {
		image = "bay:dev"
	}
	if err := exec.Command("docker", "image", "inspect", image).Run(); err != nil {
		t.Skipf("no gateway image %s (docker build -f deploy/Dockerfile.bay -t %s .)", image, image)
	}
	ip := hostIP(t)

	agent := startACLAgent(t, nomad, ip)
	root := t.TempDir()
	moduleAbs, _ := filepath.Abs(moduleDir)
	port := testutil.FreePort(t)
	main := fmt.Sprintf(`
terraform {
  required_providers {
    nomad = { source = "hashicorp/nomad", version = "= 2.6.1" }
    time  = { source = "hashicorp/time", version = "= 0.14.0" }
  }
}
variable "rev" {
  type    = number
  default = 1
}
provider "nomad" {
  address = %q
}
# Unknown until apply, as a random_password or a token made here would be.
resource "terraform_data" "key" {
  input = "apply-test-key-0123456789-${var.rev}"
}
module "bay" {
  source                = %q
  gateway_image         = %q
  ship_image            = "bay-ship:dev"
  gull_image            = "bay-gull:dev"
  api_key               = terraform_data.key.output
  secrets_version       = var.rev
  port                  = %d
  datacenters           = ["dc1"]
  session_datacenters   = ["dc1"]
  gateway_nomad_address = %q
  log_level             = var.rev == 1 ? "debug" : "info"
  drain_timeout         = 10
  data_volume           = { name = "bay-apply-test" }
}
`, agent.addr, moduleAbs, image, port, "http://"+net.JoinHostPort(ip, agent.port))
	if err := os.WriteFile(filepath.Join(root, "main.tf"), []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	rc := fmt.Sprintf("provider_installation {\n  filesystem_mirror {\n    path = %q\n  }\n}\n", mirror)
	if err := os.WriteFile(filepath.Join(root, "tofurc"), []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(tofu, append(args, "-no-color")...)
		cmd.Dir = root
		cmd.Env = testutil.Env("TF_CLI_CONFIG_FILE="+filepath.Join(root, "tofurc"), "TF_IN_AUTOMATION=1", "TF_INPUT=0",
			"NOMAD_TOKEN="+agent.token, "NOMAD_ADDR=", "CHECKPOINT_DISABLE=1")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	destroyed := false
	t.Cleanup(func() {
		if !destroyed {
			if out, err := run("destroy", "-auto-approve"); err != nil {
				t.Logf("cleanup destroy: %v\n%s", err, out)
			}
		}
	})
	if out, err := run("init"); err != nil {
		t.Fatalf("tofu init: %v\n%s", err, out)
	}
	start := time.Now()
	if out, err := run("apply", "-auto-approve"); err != nil {
		t.Fatalf("tofu apply: %v\n%s", err, out)
	}
	t.Logf("apply (wait_for_deployment): %s", time.Since(start).Round(time.Second))

	base := "http://" + net.JoinHostPort(ip, fmt.Sprint(port))
	if code, body := get(t, base+"/health", ""); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("/health = %d %s", code, body)
	}
	if code, _ := get(t, base+"/v1/sandboxes", ""); code != 401 {
		t.Errorf("no key: %d, want 401", code)
	}
	if code, body := get(t, base+"/v1/sandboxes", "apply-test-key-0123456789-1"); code != 200 {
		t.Errorf("with the key (from the write-only variable): %d %s", code, body)
	}
	state, _ := os.ReadFile(filepath.Join(root, "terraform.tfstate"))
	var st struct {
		Resources []struct {
			Module, Type string
			Instances    []struct{ Attributes map[string]any }
		}
	}
	if err := json.Unmarshal(state, &st); err != nil {
		t.Fatal(err)
	}
	for _, r := range st.Resources {
		for _, in := range r.Instances {
			if b, _ := json.Marshal(in.Attributes); r.Module == "module.bay" && strings.Contains(string(b), "apply-test-key") {
				t.Errorf("the API key is in the state of %s", r.Type)
			}
		}
	}

	if out, err := run("plan", "-detailed-exitcode"); err != nil {
		t.Errorf("second plan is not empty: %v\n%s", err, out)
	}

	start = time.Now()
	if out, err := run("apply", "-auto-approve", "-var", "rev=2"); err != nil {
		t.Fatalf("apply of a change: %v\n%s", err, out)
	}
	t.Logf("change rolled out: %s", time.Since(start).Round(time.Second))
	if code, _ := get(t, base+"/v1/sandboxes", "apply-test-key-0123456789-2"); code != 200 {
		t.Errorf("the new key (secrets_version bumped) is refused: %d", code)
	}

	start = time.Now()
	out, err := run("destroy", "-auto-approve", "-var", "rev=2")
	if err != nil {
		t.Fatalf("destroy: %v\n%s", err, out)
	}
	destroyed = true
	t.Logf("destroy: %s", time.Since(start).Round(time.Second))
	for path, want := range map[string]string{"/v1/jobs": "[]", "/v1/volumes?type=host": "[]", "/v1/vars": "[]"} {
		if _, body := agent.api(t, path); strings.TrimSpace(body) != want {
			t.Errorf("after destroy %s = %s", path, body)
		}
	}
	if _, body := agent.api(t, "/v1/acl/policies"); strings.Contains(body, "bay-gateway") {
		t.Errorf("the policy survived destroy: %s", body)
	}
}

type aclAgent struct {
	addr, port, token string
}

func (a *aclAgent) api(t *testing.T, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", a.addr+path, nil)
	req.Header.Set("X-Nomad-Token", a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startACLAgent runs a dev agent with ACLs, reachable from containers on
// the host's address, and bootstraps its management token.
func startACLAgent(t *testing.T, bin, ip string) *aclAgent {
	t.Helper()
	dir := t.TempDir()
	httpPort, rpc, serf := testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t)
	iface := ifaceOf(t, ip)
	conf := fmt.Sprintf(`data_dir = %q
bind_addr = "0.0.0.0"
disable_update_check = true
ports {
  http = %d
  rpc  = %d
  serf = %d
}
acl {
  enabled = true
}
client {
  network_interface = %q
  options = {
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }
}
`, filepath.Join(dir, "data"), httpPort, rpc, serf, iface)
	if err := os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "agent", "-dev", "-config", filepath.Join(dir, "agent.hcl"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
			t.Logf("agent log (tail):\n%s", tail(string(b), 4000))
		}
	})
	a := &aclAgent{addr: fmt.Sprintf("http://127.0.0.1:%d", httpPort), port: fmt.Sprint(httpPort)}
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, err := exec.Command(bin, "acl", "bootstrap", "-address", a.addr, "-json").CombinedOutput()
		if err == nil {
			var tok struct{ SecretID string }
			if err := json.Unmarshal(out, &tok); err != nil {
				t.Fatalf("acl bootstrap: %v\n%s", err, out)
			}
			a.token = tok.SecretID
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acl bootstrap: %v\n%s", err, out)
		}
		time.Sleep(time.Second)
	}
	for {
		if _, body := a.api(t, "/v1/nodes?resources=false"); strings.Contains(body, `"Status":"ready"`) {
			if _, node := a.api(t, "/v1/nodes"); strings.Contains(node, `"docker"`) {
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent's node did not become ready with the docker driver")
		}
		time.Sleep(time.Second)
	}
}

func get(t *testing.T, url, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// hostIP is the address containers reach the host on: the source address of
// the default route's interface.
func hostIP(t *testing.T) string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 || strings.HasPrefix(i.Name, "docker") ||
			strings.HasPrefix(i.Name, "nomad") || strings.HasPrefix(i.Name, "veth") || strings.HasPrefix(i.Name, "br-") {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				return n.IP.String()
			}
		}
	}
	t.Skip("no non-loopback IPv4 interface: containers could not reach the agent")
	return ""
}

func ifaceOf(t *testing.T, ip string) string {
	t.Helper()
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.String() == ip {
				return i.Name
			}
		}
	}
	t.Fatalf("no interface has %s", ip)
	return ""
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
