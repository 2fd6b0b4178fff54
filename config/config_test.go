package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/profiles"
)

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, name, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func load(t *testing.T, name, src string, env ...string) *Config {
	t.Helper()
	c, err := LoadWithEnv(writeFile(t, name, src), envOf(env...))
	if err != nil {
		t.Fatalf("load:\n%v", err)
	}
	return c
}

// loadErr loads a broken file and returns its error lines, with the temp
// directory stripped so positions read "bay.hcl:L,C-C: ...".
func loadErr(t *testing.T, name, src string, env ...string) []string {
	t.Helper()
	path := writeFile(t, name, src)
	c, err := LoadWithEnv(path, envOf(env...))
	if err == nil {
		t.Fatalf("no error loading\n%s", src)
	}
	if c != nil {
		t.Errorf("a config came back with an error")
	}
	text := strings.ReplaceAll(err.Error(), filepath.Dir(path)+string(filepath.Separator), "")
	return strings.Split(text, "\n")
}

// settings strips what is not comparable across two loads.
func settings(c *Config) Config {
	s := *c
	s.origins = nil
	s.Profiles = nil
	return s
}

func TestDefaults(t *testing.T) {
	d := Default()
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if d.DataDir != "./.bay" || d.Addr() != "127.0.0.1:8114" || d.Allocator != AllocatorLocal || d.LogLevel != "info" {
		t.Errorf("defaults: %+v", d)
	}
	if d.Server.StartTimeout != 120*time.Second || d.GC.Interval != time.Minute || !d.GC.Enabled || d.Idempotency.TTL != time.Hour ||
		d.Local.GracePeriod != 12*time.Second || d.Nomad.Address != "http://127.0.0.1:4646" || !reflect.DeepEqual(d.Nomad.Datacenters, []string{"*"}) {
		t.Errorf("defaults: %+v", d)
	}
	if got := d.Profiles.IDs(); !reflect.DeepEqual(got, []string{"python-default", "browser-python"}) {
		t.Errorf("default profiles %v", got)
	}
	host, _ := os.Hostname()
	if d.InstanceID != instanceID(host) || d.InstanceID == "" {
		t.Errorf("instance id %q for host %q", d.InstanceID, host)
	}

	// No file and no environment gives exactly the defaults.
	c, err := LoadWithEnv("", envOf())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(settings(c), settings(d)) || !reflect.DeepEqual(c.Profiles.All(), d.Profiles.All()) {
		t.Errorf("Load(\"\") = %+v, want defaults", c)
	}
}

func TestInstanceID(t *testing.T) {
	for host, want := range map[string]string{
		"Worker-01.Example.COM":        "worker-01-example-com",
		"":                             "bay",
		"--":                           "bay",
		"a_b  c":                       "a-b-c",
		strings.Repeat("x", 70):        strings.Repeat("x", 63),
		strings.Repeat("x", 62) + ".y": strings.Repeat("x", 62),
	} {
		if got := instanceID(host); got != want {
			t.Errorf("instanceID(%q) = %q, want %q", host, got, want)
		}
		if !instanceIDPattern.MatchString(instanceID(host)) {
			t.Errorf("instanceID(%q) is not a valid instance id", host)
		}
	}
}

func TestExampleFileLoads(t *testing.T) {
	c, err := LoadWithEnv("../examples/bay.hcl", envOf())
	if err != nil {
		t.Fatalf("examples/bay.hcl:\n%v", err)
	}
	if c.Allocator != AllocatorLocal || c.InstanceID != "bay-example" || !reflect.DeepEqual(c.Auth.APIKeys, []string{"change-me-0123456789"}) {
		t.Errorf("example settings: %+v", c)
	}
	if want := []Constraint{{Attribute: "${attr.kernel.name}", Operator: "=", Value: "linux"}}; !reflect.DeepEqual(c.Nomad.Constraints, want) {
		t.Errorf("constraints %+v, want %+v", c.Nomad.Constraints, want)
	}
	if got := c.Profiles.IDs(); !reflect.DeepEqual(got, []string{"python-default", "browser-python", "legacy"}) {
		t.Errorf("profiles %v", got)
	}
	legacy, _ := c.Profiles.Get("legacy")
	if len(legacy.Containers) != 1 || legacy.Containers[0].Name != "primary" || legacy.Containers[0].Image == "" {
		t.Errorf("legacy profile %+v", legacy)
	}
	bp, _ := c.Profiles.Get("browser-python")
	if got := bp.ContainerEnv(&bp.Containers[0], profiles.Vars{SandboxID: "s1", CargoPath: "/c"}); got["FOO"] != "bar-s1" || got["WORKSPACE"] != "/c" {
		t.Errorf("browser-python env %v", got)
	}
	// With the nomad block it documents, the example is also a valid Nomad config.
	c.Allocator = AllocatorNomad
	if err := c.Validate(); err != nil {
		t.Errorf("example as nomad config: %v", err)
	}
}

const sampleHCL = `
data_dir    = "/var/lib/bay"
bind_addr   = "0.0.0.0"
port        = 9001
log_level   = "debug"
instance_id = "gw-1"
auth {
  api_keys        = ["k1", "k2"]
  allow_anonymous = true
}
server {
  request_timeout         = "2m"
  start_timeout           = "45s"
  max_sandboxes_per_owner = 5
  max_sessions            = 20
}
gc {
  enabled         = false
  interval        = "5m"
  orphan_cargo    = false
}
idempotency { ttl = "30m" }
warm_pool { enabled = false }
runtimes {
  ship   = "/opt/ship"
  python = "/usr/bin/python3"
}
local { grace_period = "2s" }
nomad {
  address     = "https://nomad.internal:4646"
  namespace   = "sandboxes"
  datacenters = ["dc1", "dc2"]
  tls { insecure = true }
  constraint {
    attribute = "${node.class}"
    value     = "sandbox"
  }
  constraint {
    operator = "distinct_hosts"
  }
  default_driver = "exec"
  discovery      = "consul"
  volume { node_pool = "storage" }
  start_timeout = "90s"
  kill_timeout  = "3s"
}
consul {
  address    = "127.0.0.1:8500"
  datacenter = "dc1"
}
profile "only" {
  container "ship" { runtime_type = "ship" }
}
`

const sampleJSON = `{
  "data_dir": "/var/lib/bay",
  "bind_addr": "0.0.0.0",
  "port": 9001,
  "log_level": "debug",
  "instance_id": "gw-1",
  "auth": {"api_keys": ["k1", "k2"], "allow_anonymous": true},
  "server": {"request_timeout": "2m", "start_timeout": "45s", "max_sandboxes_per_owner": 5, "max_sessions": 20},
  "gc": {"enabled": false, "interval": "5m", "orphan_cargo": false},
  "idempotency": {"ttl": "30m"},
  "warm_pool": {"enabled": false},
  "runtimes": {"ship": "/opt/ship", "python": "/usr/bin/python3"},
  "local": {"grace_period": "2s"},
  "nomad": {
    "address": "https://nomad.internal:4646",
    "namespace": "sandboxes",
    "datacenters": ["dc1", "dc2"],
    "tls": {"insecure": true},
    "constraint": [{"attribute": "${node.class}", "value": "sandbox"}, {"operator": "distinct_hosts"}],
    "default_driver": "exec",
    "discovery": "consul",
    "volume": {"node_pool": "storage"},
    "start_timeout": "90s",
    "kill_timeout": "3s"
  },
  "consul": {"address": "127.0.0.1:8500", "datacenter": "dc1"},
  "profile": {"only": {"container": {"ship": {"runtime_type": "ship"}}}}
}`

func TestFileHCLAndJSON(t *testing.T) {
	want := Default()
	want.DataDir, want.BindAddr, want.Port, want.LogLevel, want.InstanceID = "/var/lib/bay", "0.0.0.0", 9001, "debug", "gw-1"
	want.Allocator = AllocatorNomad // a nomad block selects it
	want.Auth = Auth{APIKeys: []string{"k1", "k2"}, AllowAnonymous: true}
	want.Server = Server{RequestTimeout: 2 * time.Minute, StartTimeout: 45 * time.Second, MaxSandboxesPerOwner: 5, MaxSessions: 20, WarmupOnCreate: true}
	want.GC.Enabled, want.GC.Interval, want.GC.OrphanCargo = false, 5*time.Minute, false
	want.Idempotency.TTL = 30 * time.Minute
	want.WarmPool.Enabled = false
	want.Runtimes = Runtimes{Ship: "/opt/ship", Python: "/usr/bin/python3"}
	want.Local.GracePeriod = 2 * time.Second
	want.Nomad = Nomad{
		Address: "https://nomad.internal:4646", Namespace: "sandboxes", Datacenters: []string{"dc1", "dc2"},
		TLS: TLS{Insecure: true},
		Constraints: []Constraint{
			{Attribute: "${node.class}", Operator: "=", Value: "sandbox"},
			{Operator: "distinct_hosts"},
		},
		DefaultDriver: "exec", Discovery: DiscoveryConsul,
		Volume:       Volume{Plugin: "mkdir", NodePool: "storage"},
		StartTimeout: 90 * time.Second, KillTimeout: 3 * time.Second, TokenCheck: TokenCheckWarn, CargoPoolSize: 2,
	}
	want.Consul = Consul{Address: "127.0.0.1:8500", Datacenter: "dc1"}
	wantProfiles := []profiles.Profile{{
		ID: "only", IdleTimeout: 30 * time.Minute, WarmRotateTTL: 30 * time.Minute,
		Restart:    profiles.RestartPolicy{Attempts: 3, Delay: time.Second},
		Containers: []profiles.Container{profiles.NewContainer("ship", "ship")},
	}}
	for _, tc := range []struct{ name, src string }{{"bay.hcl", sampleHCL}, {"bay.json", sampleJSON}} {
		t.Run(tc.name, func(t *testing.T) {
			c := load(t, tc.name, tc.src)
			if got := settings(c); !reflect.DeepEqual(got, settings(want)) {
				t.Errorf("got\n%+v\nwant\n%+v", got, settings(want))
			}
			if got := c.Profiles.All(); !reflect.DeepEqual(got, wantProfiles) {
				t.Errorf("profiles\n%+v\nwant\n%+v", got, wantProfiles)
			}
		})
	}
}

func TestEnvPrecedence(t *testing.T) {
	fileWithNomad := `nomad {
  address = "http://file:4646"
  tls { ca_file = "/file/ca.pem" }
}
port = 9000
auth { api_keys = ["from-file"] }
`
	cases := []struct {
		name  string
		file  string // "" = no file
		env   []string
		check func(t *testing.T, c *Config)
	}{
		{"file beats NOMAD_ADDR", fileWithNomad, []string{"NOMAD_ADDR", "http://env:4646", "NOMAD_TOKEN", "tok", "NOMAD_CACERT", "/env/ca.pem", "NOMAD_CLIENT_CERT", "/env/cert.pem"},
			func(t *testing.T, c *Config) {
				if c.Nomad.Address != "http://file:4646" || c.Nomad.TLS.CAFile != "/file/ca.pem" {
					t.Errorf("file lost to env: %+v", c.Nomad)
				}
				if c.Nomad.Token != "tok" || c.Nomad.TLS.CertFile != "/env/cert.pem" {
					t.Errorf("env did not fill the unset fields: %+v", c.Nomad)
				}
			}},
		{"NOMAD_* fill an empty file", "", []string{"NOMAD_ADDR", "http://env:4646", "NOMAD_REGION", "eu", "NOMAD_NAMESPACE", "ns", "NOMAD_SKIP_VERIFY", "1", "NOMAD_CLIENT_KEY", "/k", "NOMAD_TLS_SERVER_NAME", "srv"},
			func(t *testing.T, c *Config) {
				n := c.Nomad
				if n.Address != "http://env:4646" || n.Region != "eu" || n.Namespace != "ns" || !n.TLS.Insecure || n.TLS.KeyFile != "/k" || n.TLS.ServerName != "srv" {
					t.Errorf("nomad %+v", n)
				}
				if c.Allocator != AllocatorLocal {
					t.Errorf("NOMAD_ADDR alone switched the allocator to %q", c.Allocator)
				}
			}},
		{"CONSUL_*", "", []string{"CONSUL_HTTP_ADDR", "10.0.0.1:8500", "CONSUL_HTTP_TOKEN", "ct", "CONSUL_HTTP_SSL_VERIFY", "false", "CONSUL_CACERT", "/ca"},
			func(t *testing.T, c *Config) {
				if c.Consul.Address != "10.0.0.1:8500" || c.Consul.Token != "ct" || !c.Consul.TLS.Insecure || c.Consul.TLS.CAFile != "/ca" {
					t.Errorf("consul %+v", c.Consul)
				}
			}},
		{"BAY_* beat the file", fileWithNomad, []string{"BAY_PORT", "9100", "BAY_API_KEY", "from-env", "BAY_ALLOCATOR", "local", "BAY_DATA_DIR", "/d", "BAY_LOG_LEVEL", "WARN"},
			func(t *testing.T, c *Config) {
				if c.Port != 9100 || c.DataDir != "/d" || c.LogLevel != "WARN" || c.Allocator != AllocatorLocal {
					t.Errorf("config %+v", c)
				}
				if !reflect.DeepEqual(c.Auth.APIKeys, []string{"from-file", "from-env"}) {
					t.Errorf("api keys %v", c.Auth.APIKeys)
				}
			}},
		{"BAY_API_KEY already listed is not doubled", fileWithNomad, []string{"BAY_API_KEY", "from-file"},
			func(t *testing.T, c *Config) {
				if !reflect.DeepEqual(c.Auth.APIKeys, []string{"from-file"}) {
					t.Errorf("api keys %v", c.Auth.APIKeys)
				}
			}},
		{"every other BAY_*", "", []string{"BAY_BIND_ADDR", "::1", "BAY_ALLOW_ANONYMOUS", "true", "BAY_INSTANCE_ID", "gw-9",
			"BAY_GC_ENABLED", "false", "BAY_GC_INTERVAL", "2m", "BAY_SHIP_BIN", "/s", "BAY_GULL_BIN", "/g", "BAY_PYTHON", "/p", "BAY_AGENT_BROWSER", "/a"},
			func(t *testing.T, c *Config) {
				if c.BindAddr != "::1" || c.Addr() != "[::1]:8114" || !c.Auth.AllowAnonymous || c.InstanceID != "gw-9" || c.GC.Enabled || c.GC.Interval != 2*time.Minute {
					t.Errorf("config %+v", c)
				}
				if c.Runtimes != (Runtimes{Ship: "/s", Gull: "/g", Python: "/p", AgentBrowser: "/a"}) {
					t.Errorf("runtimes %+v", c.Runtimes)
				}
			}},
		{"nomad block selects nomad", fileWithNomad, nil,
			func(t *testing.T, c *Config) {
				if c.Allocator != AllocatorNomad {
					t.Errorf("allocator %q", c.Allocator)
				}
			}},
		{"explicit allocator beats the nomad block", "allocator = \"local\"\nnomad {}\n", nil,
			func(t *testing.T, c *Config) {
				if c.Allocator != AllocatorLocal {
					t.Errorf("allocator %q", c.Allocator)
				}
			}},
		{"BAY_ALLOCATOR=nomad with NOMAD_ADDR", "", []string{"BAY_ALLOCATOR", "nomad", "NOMAD_ADDR", "http://10.1.1.1:4646"},
			func(t *testing.T, c *Config) {
				if c.Allocator != AllocatorNomad || c.Nomad.Address != "http://10.1.1.1:4646" {
					t.Errorf("allocator %q address %q", c.Allocator, c.Nomad.Address)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c *Config
			if tc.file == "" {
				var err error
				if c, err = LoadWithEnv("", envOf(tc.env...)); err != nil {
					t.Fatal(err)
				}
			} else {
				c = load(t, "bay.hcl", tc.file, tc.env...)
			}
			tc.check(t, c)
		})
	}
}

func TestBadEnvValues(t *testing.T) {
	_, err := LoadWithEnv("", envOf("BAY_PORT", "http", "BAY_GC_INTERVAL", "5", "BAY_ALLOW_ANONYMOUS", "maybe", "NOMAD_SKIP_VERIFY", "yes please", "BAY_LOG_LEVEL", "loud"))
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		`NOMAD_SKIP_VERIFY: "yes please" is not a boolean`,
		`BAY_PORT: "http" is not a port number`,
		`BAY_ALLOW_ANONYMOUS: "maybe" is not a boolean`,
		`BAY_GC_INTERVAL: "5" is not a duration`,
		`BAY_LOG_LEVEL: log_level: "loud" is not one of`,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("error %d = %q, want prefix %q", i, lines[i], w)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want string // expected prefix of one error line
	}{
		{"port", "port = 0", "bay.hcl:1,8-9: Invalid port; port: must be 1..65535, got 0."},
		{"port type", `port = "x"`, "bay.hcl:1,8-11: Invalid value for port"},
		{"data_dir", `data_dir = ""`, "bay.hcl:1,12-14: Invalid data_dir; data_dir: must not be empty"},
		{"bind_addr", `bind_addr = "not an ip"`, "bay.hcl:1,13-24: Invalid bind_addr"},
		{"log_level", `log_level = "chatty"`, `bay.hcl:1,13-21: Invalid log_level; log_level: "chatty" is not one of`},
		{"instance_id", `instance_id = "a b"`, "bay.hcl:1,15-20: Invalid instance_id"},
		{"allocator", `allocator = "k8s"`, `bay.hcl:1,13-18: Invalid allocator; allocator: "k8s" is not one of local, nomad`},
		{"api key", `auth { api_keys = ["ok", ""] }`, "bay.hcl:1,19-29: Invalid auth.api_keys; auth.api_keys: key 2 is empty"},
		{"start_timeout", `server { start_timeout = "0s" }`, "bay.hcl:1,26-30: Invalid server.start_timeout; server.start_timeout: must be greater than 0"},
		{"request_timeout", `server { request_timeout = "-1s" }`, "bay.hcl:1,28-33: Invalid server.request_timeout"},
		{"quota", `server { max_sessions = -1 }`, "bay.hcl:1,25-27: Invalid server.max_sessions"},
		{"quota per owner", `server { max_sandboxes_per_owner = -3 }`, "bay.hcl:1,36-38: Invalid server.max_sandboxes_per_owner"},
		{"gc interval", `gc { interval = "0s" }`, "bay.hcl:1,17-21: Invalid gc.interval"},
		{"gc duration syntax", `gc { interval = "often" }`, `bay.hcl:1,17-24: Invalid duration for interval; interval: "often" is not a duration`},
		{"idempotency", `idempotency { ttl = "0s" }`, "bay.hcl:1,21-25: Invalid idempotency.ttl"},
		{"grace", `local { grace_period = "-1s" }`, "bay.hcl:1,24-29: Invalid local.grace_period"},
		{"nomad address", `nomad { address = "nomad:4646" }`, `bay.hcl:1,19-31: Invalid nomad.address; nomad.address: "nomad:4646" is not a URL`},
		{"datacenters", `nomad { datacenters = [] }`, "bay.hcl:1,23-25: Invalid nomad.datacenters"},
		{"constraint operator", "nomad {\n  constraint {\n    attribute = \"x\"\n    operator = \"~\"\n    value = \"y\"\n  }\n}", `bay.hcl:4,16-19: Invalid nomad.constraint[0].operator`},
		{"constraint value", "nomad {\n  constraint { attribute = \"${node.class}\" }\n}", `bay.hcl:2,3-13: Invalid nomad.constraint[0].value; nomad.constraint[0].value: must be set for operator "="`},
		{"constraint attribute", "nomad {\n  constraint { value = \"x\" }\n}", `bay.hcl:2,3-13: Invalid nomad.constraint[0].attribute`},
		{"default driver", `nomad { default_driver = "podman" }`, "bay.hcl:1,26-34: Invalid nomad.default_driver"},
		{"default driver docker needs images", `nomad { default_driver = "docker" }`, `bay.hcl:1,26-34: Invalid nomad.default_driver; nomad.default_driver: profile "python-default" container "ship" names no driver`},
		{"discovery", `nomad { discovery = "dns" }`, "bay.hcl:1,21-26: Invalid nomad.discovery"},
		{"volume plugin", "nomad {\n  volume { plugin = \"\" }\n}", "bay.hcl:2,21-23: Invalid nomad.volume.plugin"},
		{"nomad start_timeout", `nomad { start_timeout = "0s" }`, "bay.hcl:1,25-29: Invalid nomad.start_timeout"},
		{"kill_timeout", `nomad { kill_timeout = "-1s" }`, "bay.hcl:1,24-29: Invalid nomad.kill_timeout"},
		{"consul address", "nomad { discovery = \"consul\" }\nconsul { address = \"http://\" }", "bay.hcl:2,20-29: Invalid consul.address"},
		{"unknown attribute", `prot = 8114`, "bay.hcl:1,1-5: Unsupported argument"},
		{"unknown block", `serverr { }`, "bay.hcl:1,1-8: Unsupported block type"},
		{"duplicate block", "gc {}\ngc {}", "bay.hcl:2,1-3: Duplicate gc block"},
		{"syntax", "port = ", "bay.hcl:1,"},
		{"profile", "profile \"p\" {\n  container \"s\" { runtime_type = \"whale\" }\n}", `bay.hcl:2,34-41: Invalid profile; profile "p": container "s": runtime_type: unknown runtime type "whale"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lines := loadErr(t, "bay.hcl", tc.src)
			for _, l := range lines {
				if strings.HasPrefix(l, tc.want) || (!strings.HasPrefix(tc.want, "bay.hcl") && strings.Contains(l, tc.want)) {
					return
				}
			}
			t.Errorf("want an error starting %q, got:\n%s", tc.want, strings.Join(lines, "\n"))
		})
	}
}

func TestNomadSettingsIgnoredForLocal(t *testing.T) {
	// A broken NOMAD_ADDR in the environment must not stop a local gateway.
	if _, err := LoadWithEnv("", envOf("NOMAD_ADDR", "nomad:4646")); err != nil {
		t.Errorf("local gateway rejected: %v", err)
	}
	_, err := LoadWithEnv("", envOf("NOMAD_ADDR", "nomad:4646", "BAY_ALLOCATOR", "nomad"))
	if err == nil || !strings.HasPrefix(err.Error(), `NOMAD_ADDR: nomad.address: "nomad:4646" is not a URL`) {
		t.Errorf("nomad gateway: %v", err)
	}
}

func TestAllErrorsAtOnce(t *testing.T) {
	src := `port = 0
log_level = "chatty"
server {
  start_timeout = "soon"
}
gc { interval = "0s" }
profile "p" {
  idle_timeout = "0s"
  container "s" {
    runtime_type = "ship"
    capabilities = ["browser"]
  }
}
`
	lines := loadErr(t, "bay.hcl", src, "BAY_DATA_DIR", "", "BAY_GC_ENABLED", "nope")
	want := []string{
		"bay.hcl:4,19-25: Invalid duration for start_timeout",
		"bay.hcl:8,18-22: Invalid profile; profile \"p\": idle_timeout",
		"bay.hcl:11,20-31: Invalid profile; profile \"p\": container \"s\": capabilities",
		"BAY_GC_ENABLED: \"nope\" is not a boolean",
		"bay.hcl:1,8-9: Invalid port",
		"bay.hcl:2,13-21: Invalid log_level",
		"bay.hcl:6,17-21: Invalid gc.interval",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("error %d = %q, want prefix %q", i, lines[i], w)
		}
	}
}

func TestValidateAfterFlags(t *testing.T) {
	c := load(t, "bay.hcl", "port = 9000\n")
	c.Port = 0 // as a -port flag would
	err := c.Validate()
	if err == nil || err.Error() != "port: must be 1..65535, got 0" {
		t.Errorf("flag-set port: %v", err)
	}
	c.Port = 9001
	if err := c.Validate(); err != nil {
		t.Errorf("valid after fixing: %v", err)
	}

	_, err = LoadWithEnv("", envOf("BAY_PORT", "70000"))
	if err == nil || err.Error() != "BAY_PORT: port: must be 1..65535, got 70000" {
		t.Errorf("env port: %v", err)
	}

	// Profiles changed after loading are validated too.
	c = Default()
	p, _ := c.Profiles.Get("python-default")
	p.Containers[0].RuntimePort = -1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `profile "python-default": container "ship": runtime_port`) {
		t.Errorf("broken profile: %v", err)
	}
	c.Profiles = nil
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "at least one profile") {
		t.Errorf("no profiles: %v", err)
	}
}

func TestFileProfilesReplaceDefaults(t *testing.T) {
	c := load(t, "bay.hcl", `profile "x" {
  image = "ship:1"
  driver = "docker"
}`)
	if got := c.Profiles.IDs(); !reflect.DeepEqual(got, []string{"x"}) {
		t.Errorf("profiles %v", got)
	}
	if _, ok := c.Profiles.Get("python-default"); ok {
		t.Error("defaults kept alongside file profiles")
	}
}

func TestMissingFile(t *testing.T) {
	_, err := LoadWithEnv(filepath.Join(t.TempDir(), "nope.hcl"), envOf())
	if err == nil || !strings.HasPrefix(err.Error(), "read config: ") || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}
