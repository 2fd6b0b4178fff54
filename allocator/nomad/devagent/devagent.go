// Package devagent runs a throwaway Nomad agent for tests and benchmarks:
// raw_exec enabled, bridge networking through Debian's CNI plugins, dynamic
// host volumes, free ports, no update check. Two shapes: `nomad agent -dev`
// (Start), and the shape operators run (StartWith, Options.Dev false): one
// agent that is server and client, with a persistent data dir, the real
// node-update interval (5–10 s, where a dev agent takes 1 s) and, when
// asked, ACLs enabled and bootstrapped. Stop leaves nothing behind: it
// purges every job and volume, lets the client destroy its allocations
// (network namespaces, iptables rules, mounts), stops the agent and cleans
// up whatever the client did not get to. Halt and Resume stop and restart
// a normal agent on the same data dir and ports, as an outage would.
//
// Run one agent at a time on a small machine.
package devagent

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/nomad/api"
)

// CNIPath is where Debian's containernetworking-plugins live.
const CNIPath = "/usr/lib/cni"

// Options shape the agent.
type Options struct {
	// Dev runs `nomad agent -dev` (in-memory server, 1 s node updates).
	// False runs a normal server + client agent with a data dir on disk.
	Dev bool
	// ACL enables ACLs and bootstraps them; Agent.Token is the management
	// token (normal agents only).
	ACL bool
	// ExtraConfig is appended to the agent's HCL (e.g. a client
	// chroot_env for the exec driver).
	ExtraConfig string
	// Within bounds the wait for a ready node with a healthy raw_exec
	// driver; default 60 s.
	Within time.Duration
}

// Agent is a running agent.
type Agent struct {
	// Addr is the HTTP API address, e.g. "http://127.0.0.1:41234".
	Addr string
	// Token is the bootstrap (management) token when ACLs are enabled.
	Token string

	bin     string
	opts    Options
	dir     string
	cfgPath string
	cmd     *exec.Cmd
	done    chan struct{}
	stopped bool
}

// Start launches `<bin> agent -dev` and waits (up to within) for its client
// node to be ready with a healthy raw_exec driver.
func Start(bin string, within time.Duration) (*Agent, error) {
	return StartWith(bin, Options{Dev: true, Within: within})
}

// StartWith launches an agent shaped by opts and waits for its client node.
func StartWith(bin string, opts Options) (*Agent, error) {
	if opts.Within <= 0 {
		opts.Within = 60 * time.Second
	}
	if opts.Dev && opts.ACL {
		return nil, errors.New("devagent: ACLs need a normal agent (Dev false)")
	}
	dir, err := os.MkdirTemp("", "bay-nomad-agent-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	clientExtra := ""
	if !opts.Dev {
		// A normal client: enabled explicitly, ports on loopback like -dev.
		clientExtra = "  enabled           = true\n  network_interface = \"lo\"\n"
	}
	conf := fmt.Sprintf(`
data_dir  = %q
bind_addr = "127.0.0.1"
log_level = "INFO"
# Tests have no internet: never look up the checkpoint service.
disable_update_check = true
ports {
  http = %d
  rpc  = %d
  serf = %d
}
advertise {
  http = "127.0.0.1"
  rpc  = "127.0.0.1"
  serf = "127.0.0.1"
}
client {
%s  cni_path = %q
  options = {
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
`, filepath.Join(dir, "data"), ports[0], ports[1], ports[2], clientExtra, CNIPath)
	if !opts.Dev {
		conf += `
server {
  enabled          = true
  bootstrap_expect = 1
}
`
		if opts.ACL {
			conf += "acl {\n  enabled = true\n}\n"
		}
	}
	conf += opts.ExtraConfig
	cfgPath := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	a := &Agent{Addr: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), bin: bin, opts: opts, dir: dir, cfgPath: cfgPath}
	if err := a.launch(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if opts.ACL {
		if err := a.bootstrapACL(opts.Within); err != nil {
			tail := a.LogTail(4000)
			a.Stop()
			return nil, fmt.Errorf("%w\nagent log tail:\n%s", err, tail)
		}
	}
	if err := a.waitReady(opts.Within); err != nil {
		tail := a.LogTail(4000)
		a.Stop()
		return nil, fmt.Errorf("%w\nagent log tail:\n%s", err, tail)
	}
	return a, nil
}

// launch starts the agent process on the prepared config.
func (a *Agent) launch() error {
	logf, err := os.OpenFile(filepath.Join(a.dir, "agent.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	args := []string{"agent", "-config", a.cfgPath}
	if a.opts.Dev {
		args = []string{"agent", "-dev", "-config", a.cfgPath}
	}
	cmd := exec.Command(a.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a stop reaches its helpers too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start nomad agent: %w", err)
	}
	a.cmd, a.done = cmd, make(chan struct{})
	done := a.done
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	return nil
}

// Halt stops the agent process only (SIGINT to the agent, not to its task
// helpers), as an outage would: a normal client leaves its tasks running
// and re-attaches to them when it comes back (Resume). Jobs, volumes and
// the data dir stay.
func (a *Agent) Halt() {
	if a.cmd == nil || a.opts.Dev {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

// Resume starts a halted agent again on the same data dir and ports and
// waits for its node.
func (a *Agent) Resume() error {
	if a.opts.Dev {
		return errors.New("devagent: a dev agent keeps no state to resume")
	}
	if err := a.launch(); err != nil {
		return err
	}
	return a.waitReady(a.opts.Within)
}

// bootstrapACL makes the management token once the server has a leader.
func (a *Agent) bootstrapACL(within time.Duration) error {
	c, err := api.NewClient(&api.Config{Address: a.Addr})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(within)
	for {
		tok, _, err := c.ACLTokens().Bootstrap(nil)
		if err == nil {
			a.Token = tok.SecretID
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bootstrap ACLs: %w", err)
		}
		select {
		case <-a.done:
			return errors.New("nomad agent exited")
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// Client returns an API client for the agent.
func (a *Agent) Client() (*api.Client, error) {
	return api.NewClient(&api.Config{Address: a.Addr, SecretID: a.Token})
}

// Dir is the agent's directory (config, log, data).
func (a *Agent) Dir() string { return a.dir }

// LogTail returns the last n bytes of the agent's log.
func (a *Agent) LogTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(a.dir, "agent.log"))
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func (a *Agent) waitReady(within time.Duration) error {
	c, err := a.Client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-a.done:
			return errors.New("nomad agent exited")
		default:
		}
		nodes, _, err := c.Nodes().List(nil)
		if err == nil {
			for _, n := range nodes {
				if d := n.Drivers["raw_exec"]; n.Status == "ready" && d != nil && d.Healthy {
					return nil
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("no ready node with raw_exec within %s", within)
}

// Stop drains and stops the agent and removes its data dir. It is safe to
// call twice, and after Halt.
func (a *Agent) Stop() {
	if a.stopped {
		return
	}
	a.stopped = true
	if c, err := a.Client(); err == nil {
		a.drain(c, 30*time.Second)
	}
	select {
	case <-a.done: // halted and not resumed
	default:
		pgid := a.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGINT)
		select {
		case <-a.done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-a.done
		}
	}
	// An interrupted dev agent leaves its tasks running: end what it left.
	killStragglers(a.dir)
	for _, id := range a.allocDirs() {
		cleanAllocNetwork(id)
	}
	unmountUnder(a.dir)
	_ = os.RemoveAll(a.dir)
}

// drain purges every job and volume and has the client destroy every
// allocation (which removes its alloc dir, network namespace and CNI rules).
func (a *Agent) drain(c *api.Client, within time.Duration) {
	deadline := time.Now().Add(within)
	if jobs, _, err := c.Jobs().List(nil); err == nil {
		for _, j := range jobs {
			_, _, _ = c.Jobs().Deregister(j.ID, true, nil)
		}
	}
	nodes, _, _ := c.Nodes().List(nil)
	for time.Now().Before(deadline) && len(a.allocDirs()) > 0 {
		for _, n := range nodes {
			_ = c.Nodes().GC(n.ID, nil)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if vols, _, err := c.HostVolumes().List(nil, nil); err == nil {
		for _, v := range vols {
			_, _, _ = c.HostVolumes().Delete(&api.HostVolumeDeleteRequest{ID: v.ID}, nil)
		}
	}
}

// allocDirs are the allocations the client still holds.
func (a *Agent) allocDirs() []string {
	entries, _ := os.ReadDir(filepath.Join(a.dir, "data", "alloc"))
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Name())
	}
	return ids
}

// cleanAllocNetwork removes what CNI set up for an allocation the client
// did not get to destroy: its namespace, iptables rules and chains, and its
// IPAM reservation.
func cleanAllocNetwork(id string) {
	_ = exec.Command("ip", "netns", "delete", id).Run()
	out, err := exec.Command("iptables", "-t", "nat", "-S").Output()
	if err == nil {
		chains := map[string]bool{}
		for _, line := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(line, "-A ") || !strings.Contains(line, id) {
				continue
			}
			args, err := splitRule(line)
			if err != nil {
				continue
			}
			for i := range args {
				if args[i] == "-j" && i+1 < len(args) && strings.HasPrefix(args[i+1], "CNI-") && !strings.HasPrefix(args[i+1], "CNI-HOSTPORT") {
					chains[args[i+1]] = true
				}
			}
			args[0] = "-D"
			_ = exec.Command("iptables", append([]string{"-t", "nat"}, args...)...).Run()
		}
		for ch := range chains {
			_ = exec.Command("iptables", "-t", "nat", "-F", ch).Run()
			_ = exec.Command("iptables", "-t", "nat", "-X", ch).Run()
		}
	}
	ipam, _ := os.ReadDir("/var/run/cni/nomad")
	for _, e := range ipam {
		p := filepath.Join("/var/run/cni/nomad", e.Name())
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), id) {
			_ = os.Remove(p)
		}
	}
	_ = os.Remove(filepath.Join("/var/lib/cni/results", "nomad-"+id+"-eth0"))
}

// splitRule splits an `iptables -S` line into arguments, honouring the
// double quotes around comments.
func splitRule(line string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inQuote, escaped, have := false, false, false
	for _, r := range line {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped = true
		case r == '"':
			inQuote = !inQuote
			have = true
		case r == ' ' && !inQuote:
			if have || cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unbalanced quotes in %q", line)
	}
	if have || cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out, nil
}

// killStragglers kills what the agent left behind (executors, logmon,
// tasks): the processes whose command line or open files are under dir.
func killStragglers(dir string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if ownedBy(pid, dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func ownedBy(pid int, dir string) bool {
	base := filepath.Join("/proc", strconv.Itoa(pid))
	if b, err := os.ReadFile(filepath.Join(base, "cmdline")); err == nil && strings.Contains(string(b), dir) {
		return true
	}
	fds, _ := os.ReadDir(filepath.Join(base, "fd"))
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join(base, "fd", fd.Name())); err == nil && strings.HasPrefix(l, dir) {
			return true
		}
	}
	return false
}

// unmountUnder detaches what the client left mounted under dir, deepest
// first.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasPrefix(f[1], dir) {
			points = append(points, f[1])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

func freePorts(n int) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for tries := 0; len(out) < n && tries < 100; tries++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(out) < n {
		return nil, errors.New("no free ports")
	}
	return out, nil
}
