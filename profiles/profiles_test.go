package profiles

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

const fullHCL = `
profile "browser-python" {
  description     = "Python + browser"
  idle_timeout    = "10m"
  env             = { FOO = "bar-${SANDBOX_ID}", TASK = "${NOMAD_TASK_DIR}/x", N = 3 }
  warm_pool_size  = 2
  warm_rotate_ttl = "1h"
  restart {
    attempts = 5
    delay    = "2s"
  }
  container "ship" {
    runtime_type = "ship"
    runtime_port = 9000
    capabilities = ["python", "shell", "filesystem"]
    primary_for  = ["filesystem"]
    env          = { WHO = "${CONTAINER_NAME}@${CARGO_PATH}" }
    resources {
      cpu    = 700
      memory = 768
    }
    driver  = "raw_exec"
    command = "/usr/local/bin/ship"
    args    = ["--verbose"]
  }
  container "gull" {
    runtime_type = "gull"
    driver       = "docker"
    image        = "ghcr.io/example/gull:latest"
  }
}
`

const fullJSON = `{
  "profile": {
    "browser-python": {
      "description": "Python + browser",
      "idle_timeout": "10m",
      "env": {"FOO": "bar-${SANDBOX_ID}", "TASK": "${NOMAD_TASK_DIR}/x", "N": 3},
      "warm_pool_size": 2,
      "warm_rotate_ttl": "1h",
      "restart": {"attempts": 5, "delay": "2s"},
      "container": {
        "ship": {
          "runtime_type": "ship",
          "runtime_port": 9000,
          "capabilities": ["python", "shell", "filesystem"],
          "primary_for": ["filesystem"],
          "env": {"WHO": "${CONTAINER_NAME}@${CARGO_PATH}"},
          "resources": {"cpu": 700, "memory": 768},
          "driver": "raw_exec",
          "command": "/usr/local/bin/ship",
          "args": ["--verbose"]
        },
        "gull": {"runtime_type": "gull", "driver": "docker", "image": "ghcr.io/example/gull:latest"}
      }
    }
  }
}`

func wantFull() Profile {
	return Profile{
		ID:            "browser-python",
		Description:   "Python + browser",
		IdleTimeout:   10 * time.Minute,
		Env:           map[string]string{"FOO": "bar-${SANDBOX_ID}", "TASK": "${NOMAD_TASK_DIR}/x", "N": "3"},
		WarmPoolSize:  2,
		WarmRotateTTL: time.Hour,
		Restart:       RestartPolicy{Attempts: 5, Delay: 2 * time.Second},
		Containers: []Container{
			{
				Name: "ship", RuntimeType: RuntimeShip, RuntimePort: 9000,
				Capabilities: []string{"python", "shell", "filesystem"},
				PrimaryFor:   []string{"filesystem"},
				Env:          map[string]string{"WHO": "${CONTAINER_NAME}@${CARGO_PATH}"},
				Resources:    Resources{CPU: 700, MemoryMB: 768},
				Driver:       "raw_exec", Command: "/usr/local/bin/ship", Args: []string{"--verbose"},
			},
			{
				Name: "gull", RuntimeType: RuntimeGull, RuntimePort: DefaultGullPort,
				Capabilities: []string{"browser"},
				Resources:    Resources{CPU: 1000, MemoryMB: 1024},
				Driver:       "docker", Image: "ghcr.io/example/gull:latest",
			},
		},
	}
}

func mustParse(t *testing.T, name, src string) []Profile {
	t.Helper()
	ps, diags := Parse(name, []byte(src))
	if diags.HasErrors() {
		t.Fatalf("parse %s: %s", name, diags)
	}
	return ps
}

func TestParseHCLAndJSON(t *testing.T) {
	for _, tc := range []struct{ name, src string }{
		{"bay.hcl", fullHCL},
		{"bay.json", fullJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := mustParse(t, tc.name, tc.src)
			if len(ps) != 1 {
				t.Fatalf("got %d profiles, want 1", len(ps))
			}
			if want := wantFull(); !reflect.DeepEqual(ps[0], want) {
				t.Errorf("decoded\n%+v\nwant\n%+v", ps[0], want)
			}
		})
	}
}

func TestParseAppliesDefaults(t *testing.T) {
	ps := mustParse(t, "bay.hcl", `
profile "p" {
  container "ship" { runtime_type = "ship" }
  container "gull" { runtime_type = "gull" }
}`)
	p := ps[0]
	if p.IdleTimeout != 30*time.Minute || p.Restart != (RestartPolicy{3, time.Second}) || p.WarmRotateTTL != 30*time.Minute || p.WarmPoolSize != 0 {
		t.Errorf("profile defaults: idle %s restart %+v rotate %s warm %d", p.IdleTimeout, p.Restart, p.WarmRotateTTL, p.WarmPoolSize)
	}
	want := []Container{NewContainer("ship", RuntimeShip), NewContainer("gull", RuntimeGull)}
	if !reflect.DeepEqual(p.Containers, want) {
		t.Errorf("containers %+v, want %+v", p.Containers, want)
	}
	if want[0].RuntimePort != 8123 || want[1].RuntimePort != 8115 ||
		want[0].Resources != (Resources{500, 512}) || want[1].Resources != (Resources{1000, 1024}) {
		t.Errorf("runtime defaults wrong: %+v", want)
	}
}

func TestLegacyNormalisation(t *testing.T) {
	ps := mustParse(t, "bay.hcl", `
profile "legacy" {
  image        = "ship:latest"
  capabilities = ["python", "filesystem"]
  resources {
    cpu    = 250
    memory = 256
  }
  env          = { A = "1" }
  idle_timeout = "5m"
}
profile "bare" {
  runtime_type = "gull"
}`)
	want := Profile{
		ID: "legacy", IdleTimeout: 5 * time.Minute, WarmRotateTTL: DefaultWarmRotateTTL,
		Restart: RestartPolicy{3, time.Second},
		Env:     map[string]string{"A": "1"},
		Containers: []Container{{
			Name: "primary", RuntimeType: "ship", RuntimePort: 8123,
			Capabilities: []string{"python", "filesystem"}, PrimaryFor: []string{"python", "filesystem"},
			Resources: Resources{250, 256}, Image: "ship:latest",
		}},
	}
	if !reflect.DeepEqual(ps[0], want) {
		t.Errorf("legacy\n%+v\nwant\n%+v", ps[0], want)
	}
	bare := ps[1].Containers
	if len(bare) != 1 || bare[0].Name != LegacyContainerName || bare[0].RuntimeType != "gull" ||
		bare[0].RuntimePort != 8115 || !reflect.DeepEqual(bare[0].PrimaryFor, []string{"browser"}) {
		t.Errorf("bare legacy gull: %+v", bare)
	}
}

// errAt asserts diags hold an error at line:col whose text contains want.
func errAt(t *testing.T, diags hcl.Diagnostics, line, col int, want string) {
	t.Helper()
	for _, d := range diags {
		if d.Severity != hcl.DiagError || d.Subject == nil {
			continue
		}
		if d.Subject.Start.Line == line && d.Subject.Start.Column == col && strings.Contains(d.Error(), want) {
			return
		}
	}
	t.Errorf("no error at %d,%d containing %q; got:\n%s", line, col, want, diagLines(diags))
}

func diagLines(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		b.WriteString("  " + d.Error() + "\n")
	}
	return b.String()
}

func TestValidationErrorsWithPositions(t *testing.T) {
	// Each case: a profile body (inside profile "<id>" { ... }) and where the
	// error must be reported. Line 1 is the profile header.
	cases := []struct {
		name      string
		id        string
		body      string
		line, col int
		want      string
	}{
		{"bad id", "Bad_ID", `container "s" { runtime_type = "ship" }`, 1, 9, `id: must match`},
		{"no containers", "p", `description = "x"`, 1, 1, "at least one container"},
		{"idle zero", "p", `idle_timeout = "0s"` + "\n" + `container "s" { runtime_type = "ship" }`, 2, 16, "idle_timeout: must be greater than 0"},
		{"bad duration", "p", `idle_timeout = "ten minutes"` + "\n" + `container "s" { runtime_type = "ship" }`, 2, 16, `"ten minutes" is not a duration`},
		{"negative warm", "p", `warm_pool_size = -1` + "\n" + `container "s" { runtime_type = "ship" }`, 2, 18, "warm_pool_size: must be 0 or more"},
		{"negative attempts", "p", `restart { attempts = -1 }` + "\n" + `container "s" { runtime_type = "ship" }`, 2, 22, "restart.attempts: must be 0 or more"},
		{"negative delay", "p", `restart { delay = "-1s" }` + "\n" + `container "s" { runtime_type = "ship" }`, 2, 19, "restart.delay: must be 0 or more"},
		{"bad env name", "p", `env = { "1X" = "y" }` + "\n" + `container "s" { runtime_type = "ship" }`, 2, 7, `"1X" is not a valid environment variable name`},
		{"missing runtime_type", "p", `container "s" { }`, 2, 15, "runtime_type"},
		{"unknown runtime", "p", `container "s" { runtime_type = "whale" }`, 2, 32, `unknown runtime type "whale"`},
		{"bad container name", "p", `container "S_1" { runtime_type = "ship" }`, 2, 11, `container "S_1": name: must match`},
		{"duplicate container", "p", `container "s" { runtime_type = "ship" }` + "\n" + `container "s" { runtime_type = "gull" }`, 3, 11, `container "s" is defined twice`},
		{"unknown capability", "p", `container "s" {` + "\n" + `runtime_type = "ship"` + "\n" + `capabilities = ["gpu"]` + "\n}", 4, 16, `unknown capability "gpu"`},
		{"capability vs runtime", "p", `container "g" {` + "\n" + `runtime_type = "gull"` + "\n" + `capabilities = ["python"]` + "\n}", 4, 16, `a gull container cannot offer "python"`},
		{"no capabilities", "p", `container "g" {` + "\n" + `runtime_type = "gull"` + "\n" + `capabilities = []` + "\n}", 4, 16, "at least one capability"},
		{"primary not offered", "p", `container "g" {` + "\n" + `runtime_type = "gull"` + "\n" + `primary_for = ["python"]` + "\n}", 4, 15, `"python" is not one of this container's capabilities`},
		{"primary twice", "p", `container "a" {` + "\n" + `runtime_type = "ship"` + "\n" + `primary_for = ["shell"]` + "\n}\n" +
			`container "b" {` + "\n" + `runtime_type = "ship"` + "\n" + `runtime_port = 9000` + "\n" + `primary_for = ["shell"]` + "\n}", 9, 15, `"shell" is already primary in container "a"`},
		{"port range", "p", `container "s" {` + "\n" + `runtime_type = "ship"` + "\n" + `runtime_port = 70000` + "\n}", 4, 16, "runtime_port: must be 1..65535"},
		{"port clash", "p", `container "a" { runtime_type = "ship" }` + "\n" + `container "b" {` + "\n" + `runtime_type = "gull"` + "\n" + `runtime_port = 8123` + "\n}", 5, 16, `port 8123 is already used by container "a"`},
		{"bad driver", "p", `container "s" {` + "\n" + `runtime_type = "ship"` + "\n" + `driver = "podman"` + "\n}", 4, 10, `unknown driver "podman"`},
		{"docker needs image", "p", `container "s" {` + "\n" + `runtime_type = "ship"` + "\n" + `driver = "docker"` + "\n}", 2, 1, "the docker driver needs an image"},
		{"image with exec", "p", `container "s" {` + "\n" + `runtime_type = "ship"` + "\n" + `driver = "exec"` + "\n" + `image = "x"` + "\n}", 5, 9, "image is only used by the docker driver"},
		{"resources", "p", `container "s" {` + "\n" + `runtime_type = "ship"` + "\n" + `resources { memory = 0 }` + "\n}", 4, 22, "resources.memory: must be greater than 0"},
		{"wrong type", "p", `container "s" {` + "\n" + `runtime_type = "ship"` + "\n" + `runtime_port = "http"` + "\n}", 4, 16, "runtime_port"},
		{"mixed forms", "p", `image = "x"` + "\n" + `container "s" { runtime_type = "ship" }`, 2, 1, "cannot be mixed with container blocks"},
		{"unknown attribute", "p", `contianer_count = 1` + "\n" + `container "s" { runtime_type = "ship" }`, 2, 1, "Unsupported argument"},
		{"duplicate restart", "p", `restart {}` + "\n" + `restart {}` + "\n" + `container "s" { runtime_type = "ship" }`, 3, 1, "Duplicate restart block"},
		{"function call", "p", `env = { A = upper("x") }` + "\n" + `container "s" { runtime_type = "ship" }`, 2, 13, "Function calls not allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := `profile "` + tc.id + `" {` + "\n" + tc.body + "\n}\n"
			_, diags := Parse("bay.hcl", []byte(src))
			if !diags.HasErrors() {
				t.Fatalf("no error for\n%s", src)
			}
			errAt(t, diags, tc.line, tc.col, tc.want)
			if !strings.HasPrefix(diags.Errs()[0].Error(), "bay.hcl:") {
				t.Errorf("error %q does not start with the file position", diags.Errs()[0])
			}
		})
	}
}

func TestAllErrorsReportedAtOnce(t *testing.T) {
	src := `profile "p" {
  idle_timeout = "0s"
  warm_pool_size = -2
  container "a" {
    runtime_type = "ship"
    capabilities = ["browser"]
  }
  container "b" {
    runtime_type = "gull"
    runtime_port = 0
    driver = "docker"
  }
}
profile "p" {
  container "s" { runtime_type = "ship" }
}
`
	_, diags := Parse("bay.hcl", []byte(src))
	errAt(t, diags, 2, 18, "idle_timeout")
	errAt(t, diags, 3, 20, "warm_pool_size")
	errAt(t, diags, 6, 20, "cannot offer \"browser\"")
	errAt(t, diags, 10, 20, "runtime_port")
	errAt(t, diags, 8, 3, "needs an image")
	errAt(t, diags, 14, 9, `profile "p" is already defined at bay.hcl:1,9-12`)
	if n := len(diags.Errs()); n != 6 {
		t.Errorf("got %d errors, want 6:\n%s", n, diagLines(diags))
	}
}

func TestNoNoiseAfterDecodeErrors(t *testing.T) {
	cases := []struct {
		name  string
		src   string
		wants []string // one per expected error, in order
	}{
		{"unknown runtime alone", `profile "p" {
  container "s" { runtime_type = "whale" }
}`, []string{`bay.hcl:2,34-41: Invalid profile; profile "p": container "s": runtime_type: unknown runtime type "whale"`}},
		{"missing runtime alone", `profile "p" {
  container "s" {}
}`, []string{`bay.hcl:2,17-17: Missing required argument`}},
		{"bad value type alone", `profile "p" {
  container "s" {
    runtime_type = "ship"
    runtime_port = "http"
  }
}`, []string{`bay.hcl:4,20-26: Invalid value for runtime_port`}},
		{"mixed forms still checks the rest", `profile "p" {
  idle_timeout = "0s"
  image = "x"
  container "s" {
    runtime_type = "gull"
    runtime_port = 0
  }
}`, []string{
			`bay.hcl:3,3-8: Mixed profile forms`,
			`bay.hcl:2,18-22: Invalid profile; profile "p": idle_timeout`,
			`bay.hcl:6,20-21: Invalid profile; profile "p": container "s": runtime_port`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := Parse("bay.hcl", []byte(tc.src))
			errs := diags.Errs()
			if len(errs) != len(tc.wants) {
				t.Fatalf("got %d errors, want %d:\n%s", len(errs), len(tc.wants), diagLines(diags))
			}
			for i, w := range tc.wants {
				if !strings.HasPrefix(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want prefix %q", i, errs[i], w)
				}
			}
		})
	}
}

func TestSyntaxErrorHasPosition(t *testing.T) {
	_, diags := Parse("bay.hcl", []byte("profile \"p\" {\n  container \"s\" {\n"))
	if !diags.HasErrors() || !strings.HasPrefix(diags.Errs()[0].Error(), "bay.hcl:") {
		t.Fatalf("want a positioned syntax error, got %v", diags)
	}
	_, diags = Parse("bay.json", []byte(`{"profile": {"p": [}`))
	if !diags.HasErrors() || !strings.HasPrefix(diags.Errs()[0].Error(), "bay.json:1,") {
		t.Fatalf("want a positioned JSON syntax error, got %v", diags)
	}
}

func TestValidateProgrammatic(t *testing.T) {
	good := Defaults()
	if err := ValidateAll(good); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := good[1]
	bad.Containers = []Container{good[1].Containers[0], good[1].Containers[1]}
	bad.Containers[1].RuntimePort = bad.Containers[0].RuntimePort
	bad.Containers[1].Capabilities = []string{"shell"}
	bad.IdleTimeout = 0
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	msgs := err.(interface{ Unwrap() []error }).Unwrap()
	want := []string{
		`profile "browser-python": idle_timeout: must be greater than 0, got 0s`,
		`profile "browser-python": container "gull": runtime_port: port 8123 is already used by container "ship"`,
		`profile "browser-python": container "gull": capabilities: a gull container cannot offer "shell"`,
	}
	if len(msgs) != len(want) {
		t.Fatalf("got %d errors, want %d: %v", len(msgs), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(msgs[i].Error(), w) {
			t.Errorf("error %d = %q, want prefix %q", i, msgs[i], w)
		}
	}
	if err := ValidateAll([]Profile{good[0], good[0]}); err == nil || !strings.Contains(err.Error(), "defined more than once") {
		t.Errorf("duplicate ids: %v", err)
	}
}

func TestRoute(t *testing.T) {
	twoShips := Profile{ID: "x", Containers: []Container{
		NewContainer("first", RuntimeShip),
		NewContainer("second", RuntimeShip),
	}}
	twoShips.Containers[1].PrimaryFor = []string{CapShell}
	defaults := DefaultSet()
	bp, _ := defaults.Get(BrowserPython)
	cases := []struct {
		name string
		p    *Profile
		cap  string
		want string // "" = no route
	}{
		{"primary_for wins over order", &twoShips, CapShell, "second"},
		{"first offering container otherwise", &twoShips, CapPython, "first"},
		{"filesystem to ship in browser-python", bp, CapFilesystem, "ship"},
		{"browser to gull", bp, CapBrowser, "gull"},
		{"capability nobody offers", &twoShips, CapBrowser, ""},
		{"unknown capability", bp, "gpu", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := tc.p.Route(tc.cap)
			if tc.want == "" {
				if ok {
					t.Fatalf("routed %q to %q, want no route", tc.cap, c.Name)
				}
				return
			}
			if !ok || c.Name != tc.want {
				t.Fatalf("routed %q to %v (%v), want %q", tc.cap, c, ok, tc.want)
			}
		})
	}
	if got := bp.Capabilities(); !reflect.DeepEqual(got, []string{"python", "shell", "filesystem", "browser"}) {
		t.Errorf("capabilities %v", got)
	}
}

func TestPlaceholderExpansion(t *testing.T) {
	p := mustParse(t, "bay.hcl", fullHCL)[0]
	ship, _ := p.Container("ship")
	got := p.ContainerEnv(ship, Vars{SandboxID: "sb1", SessionID: "se1", CargoPath: "/data/c1"})
	want := map[string]string{
		"FOO":  "bar-sb1",
		"TASK": "${NOMAD_TASK_DIR}/x", // Nomad's own interpolation is left alone
		"N":    "3",
		"WHO":  "ship@/data/c1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("env %v, want %v", got, want)
	}
	// Container env wins over profile env.
	p.Env["WHO"] = "profile"
	if got := p.ContainerEnv(ship, Vars{}); got["WHO"] != "ship@" {
		t.Errorf("container env lost to profile env: %q", got["WHO"])
	}
	if got := Expand("${SESSION_ID}-${UNKNOWN}-$${SANDBOX_ID}", Vars{SessionID: "s", SandboxID: "b"}); got != "s-${UNKNOWN}-$b" {
		t.Errorf("Expand = %q", got)
	}
}

func TestHCLEscapedPlaceholderIsLiteral(t *testing.T) {
	p := mustParse(t, "bay.hcl", `profile "p" {
  env = { A = "$${SANDBOX_ID}", B = "${node.unique.name}" }
  container "s" { runtime_type = "ship" }
}`)[0]
	if p.Env["A"] != "${SANDBOX_ID}" || p.Env["B"] != "${node.unique.name}" {
		t.Errorf("env %v", p.Env)
	}
}

func TestSet(t *testing.T) {
	s := DefaultSet()
	if got := s.IDs(); !reflect.DeepEqual(got, []string{PythonDefault, BrowserPython}) {
		t.Errorf("ids %v", got)
	}
	p, ok := s.Get(PythonDefault)
	if !ok || len(p.Containers) != 1 || p.Containers[0].Name != "ship" ||
		!reflect.DeepEqual(p.Capabilities(), []string{"python", "shell", "filesystem"}) || p.IdleTimeout != 30*time.Minute || p.Description == "" {
		t.Errorf("python-default = %+v", p)
	}
	if _, ok := s.Get("nope"); ok {
		t.Error("found unknown profile")
	}
	all := s.All()
	all[0].ID = "changed"
	if s.IDs()[0] != PythonDefault || s.Len() != 2 {
		t.Error("All exposed the set's slice")
	}
	var nilSet *Set
	if _, ok := nilSet.Get("x"); ok || nilSet.Len() != 0 || nilSet.All() != nil {
		t.Error("nil set not empty")
	}
	if _, err := NewSet([]Profile{{ID: "x"}}); err == nil {
		t.Error("NewSet accepted a profile without containers")
	}
}

func TestNetworkOption(t *testing.T) {
	ps := mustParse(t, "bay.hcl", `
profile "offline" {
  network = "none"
  container "ship" {
    runtime_type = "ship"
  }
}`)
	if ps[0].Network != NetworkNone {
		t.Fatalf("network = %q", ps[0].Network)
	}
	if err := ps[0].Validate(); err != nil {
		t.Fatal(err)
	}
	bad := ps[0]
	bad.Network = "bridge"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), `network: must be "none"`) {
		t.Fatalf("network = bridge: %v", err)
	}
}
