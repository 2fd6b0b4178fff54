package jobspecs

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/bay-sandbox/bay/internal/testutil"
	"github.com/bay-sandbox/bay/profiles"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func shipContainer(name string) profiles.Container {
	return profiles.Container{
		Name:         name,
		RuntimeType:  profiles.RuntimeShip,
		RuntimePort:  profiles.DefaultShipPort,
		Capabilities: []string{profiles.CapPython, profiles.CapShell, profiles.CapFilesystem},
		Env:          map[string]string{"SHIP_HOME": "${CARGO_PATH}/home"},
		Resources:    profiles.Resources{CPU: 500, MemoryMB: 512},
	}
}

func gullContainer() profiles.Container {
	return profiles.Container{
		Name:         "gull",
		RuntimeType:  profiles.RuntimeGull,
		RuntimePort:  profiles.DefaultGullPort,
		Capabilities: []string{profiles.CapBrowser},
		Resources:    profiles.Resources{CPU: 1000, MemoryMB: 1024},
	}
}

func legacyProfile() *profiles.Profile {
	c := shipContainer("primary")
	c.PrimaryFor = slices.Clone(c.Capabilities)
	return &profiles.Profile{
		ID:          "python-default",
		IdleTimeout: 10 * time.Minute,
		Env:         map[string]string{"SANDBOX": "${SANDBOX_ID}", "WHO": "${CONTAINER_NAME}"},
		Restart:     profiles.RestartPolicy{Attempts: 3, Delay: time.Second},
		Containers:  []profiles.Container{c},
	}
}

func browserProfile(driver string) *profiles.Profile {
	ship, gull := shipContainer("ship"), gullContainer()
	ship.Driver, gull.Driver = driver, driver
	if driver == DriverDocker {
		ship.Image, gull.Image = "bay/ship:1", "bay/gull:1"
	}
	return &profiles.Profile{
		ID:         "browser-python",
		Env:        map[string]string{"TZ": "UTC"},
		Restart:    profiles.RestartPolicy{Attempts: 5, Delay: 2 * time.Second},
		Containers: []profiles.Container{ship, gull},
	}
}

func input(p *profiles.Profile) Input {
	return Input{
		Profile:        p,
		SandboxID:      "sbx1",
		SessionID:      "ses1",
		Owner:          "alice",
		CargoID:        "cargo1",
		VolumeName:     "bay-cargo-cargo1",
		VolumeHostPath: "/opt/nomad/data/host_volumes/0a1b2c",
		Secret:         "0123456789abcdef-session-secret",
	}
}

func options() Options {
	return Options{
		InstanceID: "gw-1",
		Binaries:   map[string]string{profiles.RuntimeShip: "/usr/local/bin/ship", profiles.RuntimeGull: "/usr/local/bin/gull"},
		RuntimeEnv: map[string]map[string]string{
			profiles.RuntimeShip: {"BAY_PYTHON": "/usr/bin/python3"},
			profiles.RuntimeGull: {"AGENT_BROWSER_EXECUTABLE_PATH": "/usr/bin/chromium", "BAY_AGENT_BROWSER": "/usr/local/bin/agent-browser"},
		},
	}
}

type goldenCase struct {
	name string
	in   Input
	opts Options
}

func goldenCases() []goldenCase {
	nomadOpts := options()
	nomadOpts.ServiceProvider = ProviderNomad

	placed := options()
	placed.Region = "eu"
	placed.Namespace = "sandboxes"
	placed.Datacenters = []string{"dc1", "dc2"}
	placed.NodePool = "bay"
	placed.Constraints = []Constraint{
		{Attribute: "${attr.kernel.name}", Value: "linux"},
		{Attribute: "${node.class}", Operator: "regexp", Value: "^sandbox-"},
	}

	mixed := browserProfile("")
	mixed.Containers[0].Driver = DriverExec
	mixed.Containers[0].Command = "/opt/ship/bin/ship"
	mixed.Containers[0].Args = []string{"serve", "--port", "8123"}

	noVolume := input(browserProfile(DriverRawExec))
	noVolume.VolumeName, noVolume.VolumeHostPath = "", ""

	noRestart := legacyProfile()
	noRestart.Restart = profiles.RestartPolicy{Attempts: 0, Delay: time.Second}

	return []goldenCase{
		{"legacy_primary_raw_exec_consul", input(legacyProfile()), options()},
		{"ship_gull_raw_exec_consul", input(browserProfile(DriverRawExec)), options()},
		{"ship_gull_raw_exec_nomad", input(browserProfile(DriverRawExec)), nomadOpts},
		{"ship_gull_exec_nomad", input(browserProfile(DriverExec)), nomadOpts},
		{"ship_gull_docker_consul_placed", input(browserProfile(DriverDocker)), placed},
		{"ship_exec_command_gull_default_driver", input(mixed), options()},
		{"ship_gull_no_volume", noVolume, options()},
		{"legacy_no_restart", input(noRestart), options()},
	}
}

func goldenPath(name string) string { return filepath.Join("testdata", name+".json") }

func marshal(t *testing.T, job *api.Job) []byte {
	t.Helper()
	b, err := json.MarshalIndent(job, "", "  ")
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return append(b, '\n')
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			job, err := Render(tc.in, tc.opts)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			got := marshal(t, job)
			if *update {
				if err := os.WriteFile(goldenPath(tc.name), got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(goldenPath(tc.name))
			if err != nil {
				t.Fatalf("read golden (run go test ./jobspecs -update): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the rendered job (run go test ./jobspecs -update and review the diff)\n%s", goldenPath(tc.name), firstDiff(got, want))
			}
			// Rendering twice gives the same bytes: no map-order leaks.
			again, _ := Render(tc.in, tc.opts)
			if !bytes.Equal(got, marshal(t, again)) {
				t.Errorf("render is not deterministic")
			}
		})
	}
}

func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + gl + "\nwant: " + wl
		}
	}
	return ""
}

func render(t *testing.T, in Input, opts Options) *api.Job {
	t.Helper()
	job, err := Render(in, opts)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return job
}

func task(t *testing.T, job *api.Job, name string) *api.Task {
	t.Helper()
	for _, tk := range job.TaskGroups[0].Tasks {
		if tk.Name == name {
			return tk
		}
	}
	t.Fatalf("no task %q", name)
	return nil
}

func TestJobShape(t *testing.T) {
	in := input(browserProfile(""))
	job := render(t, in, options())

	if *job.ID != "bay-sbx1-ses1" || *job.Name != *job.ID || *job.Type != "service" {
		t.Errorf("id/name/type = %q/%q/%q", *job.ID, *job.Name, *job.Type)
	}
	wantMeta := map[string]string{
		MetaSandboxID: "sbx1", MetaSessionID: "ses1", MetaProfile: "browser-python",
		MetaOwner: "alice", MetaCargoID: "cargo1", MetaInstance: "gw-1",
	}
	for k, v := range wantMeta {
		if job.Meta[k] != v {
			t.Errorf("meta %s = %q, want %q", k, job.Meta[k], v)
		}
	}
	if !slices.Equal(job.Datacenters, []string{"*"}) || job.Region != nil || job.NodePool != nil {
		t.Errorf("defaults: datacenters %v region %v pool %v", job.Datacenters, job.Region, job.NodePool)
	}
	if len(job.TaskGroups) != 1 {
		t.Fatalf("groups = %d", len(job.TaskGroups))
	}
	g := job.TaskGroups[0]
	if *g.Name != GroupName || *g.Count != 1 {
		t.Errorf("group %q count %d", *g.Name, *g.Count)
	}
	if len(g.Networks) != 1 || g.Networks[0].Mode != "bridge" {
		t.Fatalf("networks = %+v", g.Networks)
	}
	wantPorts := []api.Port{{Label: "ship", To: 8123}, {Label: "gull", To: 8115}}
	if !slices.Equal(g.Networks[0].DynamicPorts, wantPorts) {
		t.Errorf("ports = %+v, want %+v", g.Networks[0].DynamicPorts, wantPorts)
	}
	vol := g.Volumes[CargoVolume]
	if vol == nil || vol.Type != "host" || vol.Source != "bay-cargo-cargo1" || vol.ReadOnly ||
		vol.AccessMode != "single-node-writer" || vol.AttachmentMode != "file-system" {
		t.Errorf("volume = %+v", vol)
	}
	rp := g.RestartPolicy
	if *rp.Attempts != 5 || *rp.Delay != 2*time.Second || *rp.Mode != "delay" || *rp.Interval < time.Duration(*rp.Attempts)*(*rp.Delay) {
		t.Errorf("restart = %d %v %v %q", *rp.Attempts, *rp.Delay, *rp.Interval, *rp.Mode)
	}
	if r := g.ReschedulePolicy; r == nil || *r.Attempts != 0 || *r.Unlimited {
		t.Errorf("reschedule = %+v, want none", r)
	}
	if got := []string{g.Tasks[0].Name, g.Tasks[1].Name}; !slices.Equal(got, []string{"ship", "gull"}) {
		t.Errorf("tasks in profile order = %v", got)
	}
	for _, tk := range g.Tasks {
		if tk.Driver != DriverRawExec {
			t.Errorf("%s driver = %q, want the default raw_exec", tk.Name, tk.Driver)
		}
		if *tk.KillTimeout != DefaultKillTimeout || tk.KillSignal != "SIGTERM" {
			t.Errorf("%s kill = %v %q", tk.Name, *tk.KillTimeout, tk.KillSignal)
		}
		if len(tk.Services) != 1 {
			t.Fatalf("%s services = %d", tk.Name, len(tk.Services))
		}
		s := tk.Services[0]
		if s.Name != "bay-"+tk.Name || s.PortLabel != tk.Name || s.Provider != "consul" || s.TaskName != tk.Name {
			t.Errorf("%s service = %+v", tk.Name, s)
		}
		if !slices.Equal(s.Tags, []string{"bay", "sandbox=sbx1", "session=ses1", "container=" + tk.Name}) {
			t.Errorf("%s tags = %v", tk.Name, s.Tags)
		}
		if len(s.Checks) != 1 || s.Checks[0].Type != "http" || s.Checks[0].Path != "/health" ||
			s.Checks[0].Interval < time.Second || s.Checks[0].Interval > 2*time.Second || s.Checks[0].Timeout != time.Second {
			t.Errorf("%s checks = %+v", tk.Name, s.Checks)
		}
	}
	if r := task(t, job, "gull").Resources; *r.CPU != 1000 || *r.MemoryMB != 1024 {
		t.Errorf("gull resources = %d/%d", *r.CPU, *r.MemoryMB)
	}
}

func TestRawExecUsesHostPathAndNoMount(t *testing.T) {
	job := render(t, input(browserProfile(DriverRawExec)), options())
	for _, name := range []string{"ship", "gull"} {
		tk := task(t, job, name)
		if len(tk.VolumeMounts) != 0 {
			t.Errorf("%s: raw_exec has volume mounts %+v", name, tk.VolumeMounts)
		}
		if tk.Env["BAY_WORKSPACE_PATH"] != "/opt/nomad/data/host_volumes/0a1b2c" {
			t.Errorf("%s BAY_WORKSPACE_PATH = %q", name, tk.Env["BAY_WORKSPACE_PATH"])
		}
	}
	ship := task(t, job, "ship")
	wantArgs := []string{"--port", "8123", "--workspace", "/opt/nomad/data/host_volumes/0a1b2c"}
	if ship.Config["command"] != "/usr/local/bin/ship" || !slices.Equal(ship.Config["args"].([]string), wantArgs) {
		t.Errorf("ship config = %+v", ship.Config)
	}
	if ship.Env["SHIP_HOME"] != "/opt/nomad/data/host_volumes/0a1b2c/home" {
		t.Errorf("${CARGO_PATH} not expanded to the host path: %q", ship.Env["SHIP_HOME"])
	}
}

func TestMountingDriversMountWorkspace(t *testing.T) {
	for _, driver := range []string{DriverExec, DriverDocker} {
		t.Run(driver, func(t *testing.T) {
			job := render(t, input(browserProfile(driver)), options())
			for _, name := range []string{"ship", "gull"} {
				tk := task(t, job, name)
				if len(tk.VolumeMounts) != 1 || *tk.VolumeMounts[0].Volume != CargoVolume ||
					*tk.VolumeMounts[0].Destination != "/workspace" || *tk.VolumeMounts[0].ReadOnly {
					t.Errorf("%s mounts = %+v", name, tk.VolumeMounts)
				}
				if tk.Env["BAY_WORKSPACE_PATH"] != "/workspace" {
					t.Errorf("%s BAY_WORKSPACE_PATH = %q", name, tk.Env["BAY_WORKSPACE_PATH"])
				}
			}
			ship := task(t, job, "ship")
			switch driver {
			case DriverDocker:
				if ship.Config["image"] != "bay/ship:1" || !slices.Equal(ship.Config["ports"].([]string), []string{"ship"}) {
					t.Errorf("docker config = %+v", ship.Config)
				}
				if _, ok := ship.Config["command"]; ok {
					t.Errorf("docker config has a command the profile did not give: %+v", ship.Config)
				}
			case DriverExec:
				if !slices.Equal(ship.Config["args"].([]string), []string{"--port", "8123", "--workspace", "/workspace"}) {
					t.Errorf("exec args = %v", ship.Config["args"])
				}
			}
		})
	}
}

func TestEnv(t *testing.T) {
	p := legacyProfile()
	p.Env["PORT"] = "1"                        // identity wins
	p.Env["BAY_PYTHON"] = "/opt/py/bin/python" // profile beats gateway runtime env
	job := render(t, input(p), options())
	env := task(t, job, "primary").Env
	want := map[string]string{
		"BAY_SANDBOX_ID":     "sbx1",
		"BAY_SESSION_ID":     "ses1",
		"BAY_CONTAINER_NAME": "primary",
		"BAY_WORKSPACE_PATH": "/opt/nomad/data/host_volumes/0a1b2c",
		"PORT":               "8123",
		"BAY_PYTHON":         "/opt/py/bin/python",
		"SANDBOX":            "sbx1",
		"WHO":                "primary",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["AGENT_BROWSER_EXECUTABLE_PATH"]; ok {
		t.Errorf("gull runtime env leaked into a ship container")
	}
}

func TestNoVolume(t *testing.T) {
	in := input(browserProfile(DriverExec))
	in.VolumeName, in.VolumeHostPath = "", ""
	job := render(t, in, options())
	if len(job.TaskGroups[0].Volumes) != 0 {
		t.Errorf("volumes = %+v", job.TaskGroups[0].Volumes)
	}
	for _, tk := range job.TaskGroups[0].Tasks {
		if len(tk.VolumeMounts) != 0 || tk.Env["BAY_WORKSPACE_PATH"] != EphemeralWorkspace {
			t.Errorf("%s: mounts %+v workspace %q", tk.Name, tk.VolumeMounts, tk.Env["BAY_WORKSPACE_PATH"])
		}
	}
}

func TestRestartPolicy(t *testing.T) {
	tests := []struct {
		in          profiles.RestartPolicy
		attempts    int
		delay       time.Duration
		mode        string
		minInterval time.Duration
	}{
		{profiles.RestartPolicy{}, 3, time.Second, "delay", time.Minute},
		{profiles.RestartPolicy{Attempts: 3, Delay: time.Second}, 3, time.Second, "delay", time.Minute},
		{profiles.RestartPolicy{Attempts: 10, Delay: 30 * time.Second}, 10, 30 * time.Second, "delay", 5 * time.Minute},
		{profiles.RestartPolicy{Attempts: 0, Delay: time.Second}, 0, time.Second, "fail", time.Minute},
	}
	for _, tc := range tests {
		p := legacyProfile()
		p.Restart = tc.in
		rp := render(t, input(p), options()).TaskGroups[0].RestartPolicy
		if *rp.Attempts != tc.attempts || *rp.Delay != tc.delay || *rp.Mode != tc.mode || *rp.Interval < tc.minInterval {
			t.Errorf("%+v → attempts %d delay %v mode %q interval %v", tc.in, *rp.Attempts, *rp.Delay, *rp.Mode, *rp.Interval)
		}
		// Nomad rejects a policy whose restarts do not fit in the interval.
		if time.Duration(*rp.Attempts)*(*rp.Delay) > *rp.Interval {
			t.Errorf("%+v: attempts×delay exceeds interval %v", tc.in, *rp.Interval)
		}
	}
}

func TestNames(t *testing.T) {
	if got := JobID("s", "t"); got != "bay-s-t" {
		t.Errorf("JobID = %q", got)
	}
	tests := map[string]string{
		"ship":                  "bay-ship",
		"Gull_2":                "bay-gull-2",
		"a.b":                   "bay-a-b",
		strings.Repeat("x", 80): "bay-" + strings.Repeat("x", 59),
	}
	for in, want := range tests {
		if got := ServiceName(in); got != want {
			t.Errorf("ServiceName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := PortLabel("my-ship"); got != "my_ship" {
		t.Errorf("PortLabel = %q", got)
	}
}

func TestValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Input, *Options)
		want   string
	}{
		{"nil profile", func(in *Input, _ *Options) { in.Profile = nil }, "no profile"},
		{"empty sandbox id", func(in *Input, _ *Options) { in.SandboxID = "" }, "sandbox id"},
		{"empty session id", func(in *Input, _ *Options) { in.SessionID = "" }, "session id"},
		{"session id with slash", func(in *Input, _ *Options) { in.SessionID = "a/b" }, "session id"},
		{"no containers", func(in *Input, _ *Options) { in.Profile.Containers = nil }, "no containers"},
		{"unknown driver", func(in *Input, _ *Options) { in.Profile.Containers[0].Driver = "podman" }, `unknown driver "podman"`},
		{"unknown default driver", func(in *Input, o *Options) {
			in.Profile.Containers[0].Driver = ""
			o.DefaultDriver = "qemu"
		}, `unknown driver "qemu"`},
		{"docker without image", func(in *Input, _ *Options) { in.Profile.Containers[1].Driver = DriverDocker }, "docker needs an image"},
		{"exec without command", func(in *Input, o *Options) {
			in.Profile.Containers[0].Driver = DriverExec
			delete(o.Binaries, profiles.RuntimeShip)
		}, "needs a command"},
		{"raw_exec without host path", func(in *Input, _ *Options) { in.VolumeHostPath = "" }, "host path"},
		{"bad provider", func(_ *Input, o *Options) { o.ServiceProvider = "etcd" }, "service provider"},
		{"bad port", func(in *Input, _ *Options) { in.Profile.Containers[0].RuntimePort = 0 }, "runtime port"},
		{"same runtime port", func(in *Input, _ *Options) { in.Profile.Containers[1].RuntimePort = 8123 }, "both listen on port 8123"},
		{"duplicate container", func(in *Input, _ *Options) { in.Profile.Containers[1].Name = "ship" }, "collide"},
		{"colliding service names", func(in *Input, _ *Options) {
			in.Profile.Containers[0].Name, in.Profile.Containers[1].Name = "a-b", "a_b"
		}, "collide"},
		{"empty container name", func(in *Input, _ *Options) { in.Profile.Containers[0].Name = "" }, "name"},
		{"negative restart", func(in *Input, _ *Options) { in.Profile.Restart.Attempts = -1 }, "restart"},
		{"negative memory", func(in *Input, _ *Options) { in.Profile.Containers[0].Resources.MemoryMB = -1 }, "resources"},
		{"constraint without attribute", func(_ *Input, o *Options) { o.Constraints = []Constraint{{Value: "x"}} }, "constraint 0"},
		{"check interval too short", func(_ *Input, o *Options) { o.CheckInterval = 100 * time.Millisecond }, "check interval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, opts := input(browserProfile(DriverRawExec)), options()
			tc.mutate(&in, &opts)
			job, err := Render(in, opts)
			if err == nil {
				t.Fatalf("no error; job %s", *job.ID)
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

// TestGoldenJobsPassNomadValidation runs Nomad's own job validation (the
// CLI's local fallback, which converts and validates exactly as the server
// does, minus driver config) over every golden file.
func TestGoldenJobsPassNomadValidation(t *testing.T) {
	nomad := testutil.Nomad(t)
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(nomad, "job", "validate", "-json", goldenPath(tc.name))
			// An address nothing listens on makes the CLI validate locally
			// instead of asking an agent.
			cmd.Env = testutil.Env("NOMAD_ADDR=http://127.0.0.1:1", "NOMAD_TOKEN=")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Job validation successful") {
				t.Errorf("nomad job validate %s: %v\n%s", goldenPath(tc.name), err, out)
			}
		})
	}
}

func TestPlacementOptions(t *testing.T) {
	opts := options()
	opts.Region, opts.Namespace, opts.NodePool = "eu", "sandboxes", "bay"
	opts.Datacenters = []string{"dc1"}
	opts.Constraints = []Constraint{{Attribute: "${attr.kernel.name}", Value: "linux"}, {Attribute: "${node.class}", Operator: "regexp", Value: "^sb"}}
	job := render(t, input(legacyProfile()), opts)
	if *job.Region != "eu" || *job.Namespace != "sandboxes" || *job.NodePool != "bay" || !slices.Equal(job.Datacenters, []string{"dc1"}) {
		t.Errorf("placement = %v %v %v %v", *job.Region, *job.Namespace, *job.NodePool, job.Datacenters)
	}
	want := []api.Constraint{{LTarget: "${attr.kernel.name}", Operand: "=", RTarget: "linux"}, {LTarget: "${node.class}", Operand: "regexp", RTarget: "^sb"}}
	if len(job.Constraints) != 2 || *job.Constraints[0] != want[0] || *job.Constraints[1] != want[1] {
		t.Errorf("constraints = %+v %+v", job.Constraints[0], job.Constraints[1])
	}
}
