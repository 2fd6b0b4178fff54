package terraform

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/bay-sandbox/bay/config"
)

// baseInputs are the module inputs every rendering test starts from.
func baseInputs() map[string]cty.Value {
	return map[string]cty.Value{
		"gateway_image": cty.StringVal("bay:1.2.3"),
		"ship_image":    cty.StringVal("bay-ship:1.2.3"),
		"gull_image":    cty.StringVal("bay-gull:1.2.3"),
	}
}

func with(base map[string]cty.Value, kv ...any) map[string]cty.Value {
	out := map[string]cty.Value{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1].(cty.Value)
	}
	return out
}

// jobspec is a parsed gateway jobspec, reduced to what the tests compare.
type jobspec struct {
	job, group, task *hclsyntax.Block
	src              []byte
	// ctx holds the jobspec's own var.* (deploy/bay.nomad.hcl); nil for the
	// module's output, which Terraform rendered completely.
	ctx *hcl.EvalContext
}

func parseJobspec(t *testing.T, name string, src []byte) *jobspec {
	t.Helper()
	f, diags := hclparse.NewParser().ParseHCL(src, name)
	if len(diags) > 0 {
		t.Fatalf("rendered jobspec does not parse: %s\n%s", diags.Error(), src)
	}
	js := &jobspec{src: src}
	js.job = onlyBlock(t, f.Body.(*hclsyntax.Body), "job")
	js.group = onlyBlock(t, js.job.Body, "group")
	js.task = onlyBlock(t, js.group.Body, "task")
	return js
}

func onlyBlock(t *testing.T, body *hclsyntax.Body, typ string) *hclsyntax.Block {
	t.Helper()
	var found []*hclsyntax.Block
	for _, b := range body.Blocks {
		if b.Type == typ {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s block, found %d", typ, len(found))
	}
	return found[0]
}

func blocks(body *hclsyntax.Body, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range body.Blocks {
		if b.Type == typ {
			out = append(out, b)
		}
	}
	return out
}

// literal evaluates an attribute that must need no variables.
func literal(t *testing.T, body *hclsyntax.Body, name string) cty.Value {
	t.Helper()
	a, ok := body.Attributes[name]
	if !ok {
		t.Fatalf("%s: no attribute %q", body.SrcRange, name)
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("%s: %s", a.SrcRange, diags.Error())
	}
	return v
}

// templates maps each template block's destination to its data.
func (js *jobspec) templates(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, b := range blocks(js.task.Body, "template") {
		data, diags := b.Body.Attributes["data"].Expr.Value(js.ctx)
		if diags.HasErrors() {
			t.Fatalf("template data: %s", diags.Error())
		}
		out[literal(t, b.Body, "destination").AsString()] = data.AsString()
	}
	return out
}

// env returns the task's env block as Nomad would hand it to the task: the
// node attribute the addresses use interpolated with nodeIP.
func (js *jobspec) env(t *testing.T, nodeIP string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{
		"attr": cty.ObjectVal(map[string]cty.Value{"unique": cty.ObjectVal(map[string]cty.Value{
			"network": cty.ObjectVal(map[string]cty.Value{"ip-address": cty.StringVal(nodeIP)}),
		})}),
	}}
	// The task's directories and ports stay as written: the tests compare
	// them as Nomad's runtime references.
	for _, v := range []string{"NOMAD_TASK_DIR", "NOMAD_SECRETS_DIR", "NOMAD_ALLOC_DIR", "NOMAD_PORT_http"} {
		ctx.Variables[v] = cty.StringVal("${" + v + "}")
	}
	env := onlyBlock(t, js.task.Body, "env")
	for name, a := range env.Body.Attributes {
		v, diags := a.Expr.Value(ctx)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", a.SrcRange, diags.Error())
		}
		out[name] = v.AsString()
	}
	return out
}

// loadConfig writes a rendered bay.hcl and loads it with the real config
// package and the given environment, as the gateway does at start.
func loadConfig(t *testing.T, src string, env map[string]string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bay.hcl")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.LoadWithEnv(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("the gateway rejects the rendered config: %v\n%s", err, src)
	}
	return c
}

// args returns the task's config args with Nomad's runtime variables for the
// task and secrets directories replaced by dirs under root.
func (js *jobspec) args(t *testing.T, root string) []string {
	t.Helper()
	a := onlyBlock(t, js.task.Body, "config").Body.Attributes["args"]
	// Nomad interpolates its runtime variables in the task's args.
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{
		"NOMAD_TASK_DIR":    cty.StringVal(filepath.Join(root, "local")),
		"NOMAD_SECRETS_DIR": cty.StringVal(filepath.Join(root, "secrets")),
	}}
	v, diags := a.Expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("%s: %s", a.SrcRange, diags.Error())
	}
	var out []string
	for _, e := range v.AsValueSlice() {
		out = append(out, e.AsString())
	}
	return out
}

// loadBay writes the task's config templates where Nomad puts them (the
// ones in secrets/ rendered with the Nomad variable holding items) and loads
// them with Bay's own loader, from the paths the task's args give, with env:
// what the gateway does at start.
func (js *jobspec) loadBay(t *testing.T, env, items map[string]string) (*config.Config, error) {
	t.Helper()
	root := t.TempDir()
	for dest, data := range js.templates(t) {
		if !strings.Contains(dest, "/bay.d/") {
			continue
		}
		if strings.HasPrefix(dest, "secrets/") {
			data = secretsEnv(t, data, "", items)
		}
		path := filepath.Join(root, dest)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var paths []string
	args := js.args(t, root)
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--config" {
			paths = append(paths, args[i+1])
		}
	}
	if len(paths) == 0 {
		t.Fatalf("no --config in the task's args %q", args)
	}
	return config.LoadFiles(paths, func(k string) string { return env[k] })
}

// mustLoadBay is loadBay that fails the test when Bay refuses the config.
func (js *jobspec) mustLoadBay(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	c, err := js.loadBay(t, env, nil)
	if err != nil {
		t.Fatalf("the gateway rejects the rendered config: %v\n%s", err, js.src)
	}
	return c
}

func TestModuleRendersDefaultDeployment(t *testing.T) {
	m := loadModule(t, moduleDir)
	locals := m.render(t, baseInputs())
	js := parseJobspec(t, "default", []byte(locals["jobspec"].AsString()))
	bayConfig := locals["bay_config"].AsString()

	if got := js.job.Labels[0]; got != "bay" {
		t.Errorf("job id = %q, want bay", got)
	}
	if got := literal(t, js.job.Body, "type").AsString(); got != "service" {
		t.Errorf("job type = %q", got)
	}
	if got := literal(t, onlyBlock(t, js.task.Body, "config").Body, "image").AsString(); got != "bay:1.2.3" {
		t.Errorf("image = %q", got)
	}
	if got := literal(t, js.task.Body, "driver").AsString(); got != "docker" {
		t.Errorf("driver = %q", got)
	}
	port := onlyBlock(t, onlyBlock(t, js.group.Body, "network").Body, "port")
	if s, _ := literal(t, port.Body, "static").AsBigFloat().Int64(); s != 8114 {
		t.Errorf("static port = %d", s)
	}
	check := onlyBlock(t, onlyBlock(t, js.group.Body, "service").Body, "check")
	if got := literal(t, check.Body, "path").AsString(); got != "/health" {
		t.Errorf("check path = %q", got)
	}
	vol := onlyBlock(t, js.group.Body, "volume")
	if got := literal(t, vol.Body, "source").AsString(); got != "bay-data" {
		t.Errorf("volume source = %q", got)
	}

	tmpls := js.templates(t)
	if got := tmpls["local/bay.d/10-bay.hcl"]; strings.TrimRight(got, "\n") != strings.TrimRight(bayConfig, "\n") {
		t.Errorf("the config template does not carry the rendered config verbatim:\n got: %q\nwant: %q", got, bayConfig)
	}
	if got := tmpls["secrets/bay.env"]; !strings.Contains(got, `nomadVar "nomad/jobs/bay"`) {
		t.Errorf("secrets template does not read nomad/jobs/bay:\n%s", got)
	}

	env := js.env(t, "10.1.2.3")
	env["BAY_API_KEY"] = "from-the-nomad-variable-0123" // what the secrets template adds
	c := js.mustLoadBay(t, env)
	if !c.Shutdown.DrainSessions || c.Shutdown.DeleteCargos || c.Shutdown.Timeout != time.Minute {
		t.Errorf("shutdown = %+v, want drain on destroy, cargos kept, 60 s", c.Shutdown)
	}
	if got := literal(t, js.task.Body, "kill_timeout").AsString(); got != "75s" {
		t.Errorf("kill_timeout = %q, want the drain timeout + 15 s", got)
	}
	// The default: the gateway's own workload identity is its Nomad token.
	id := onlyBlock(t, js.task.Body, "identity")
	if !literal(t, id.Body, "env").True() {
		t.Error("identity block does not export NOMAD_TOKEN")
	}
	if c.Allocator != config.AllocatorNomad || c.Nomad.Discovery != config.DiscoveryNomad || c.Nomad.DefaultDriver != "docker" {
		t.Errorf("allocator/discovery/driver = %s/%s/%s", c.Allocator, c.Nomad.Discovery, c.Nomad.DefaultDriver)
	}
	if c.Nomad.Address != "http://10.1.2.3:4646" {
		t.Errorf("nomad address = %q, want the node's agent from NOMAD_ADDR", c.Nomad.Address)
	}
	if c.DataDir != "/var/lib/bay" || c.BindAddr != "0.0.0.0" || c.Port != 8114 || c.InstanceID != "bay" {
		t.Errorf("data_dir/bind/port/instance = %s/%s/%d/%s", c.DataDir, c.BindAddr, c.Port, c.InstanceID)
	}
	if !slices.Contains(c.Auth.APIKeys, "from-the-nomad-variable-0123") || c.Auth.AllowAnonymous {
		t.Errorf("auth = %+v", c.Auth)
	}
	if c.Runtimes.AgentBrowser != "/usr/local/bin/agent-browser" || c.Runtimes.Python != "/usr/bin/python3" {
		t.Errorf("runtimes = %+v", c.Runtimes)
	}
	images := map[string]string{}
	for _, p := range c.Profiles.All() {
		for _, ct := range p.Containers {
			images[p.ID+"/"+ct.Name] = ct.Driver + " " + ct.Image
		}
	}
	want := map[string]string{
		"python-default/ship": "docker bay-ship:1.2.3",
		"browser-python/ship": "docker bay-ship:1.2.3",
		"browser-python/gull": "docker bay-gull:1.2.3",
	}
	if !reflect.DeepEqual(images, want) {
		t.Errorf("profile containers = %v, want %v", images, want)
	}
}

func TestModuleRendersCustomisedDeployment(t *testing.T) {
	const apiKey = "s3cret-key-that-must-not-leak"
	profiles := `profile "data" {
  description = "tagged ${SANDBOX_ID}"
  env         = { RUN = "${SANDBOX_ID}-${SESSION_ID}", TASKDIR = "${NOMAD_TASK_DIR}" }

  container "ship" {
    runtime_type = "ship"
    image        = "registry.example/ship:2"
    resources {
      cpu    = 700
      memory = 900
    }
  }
}
`
	m := loadModule(t, moduleDir)
	locals := m.render(t, with(map[string]cty.Value{"gateway_image": cty.StringVal("bay:2")},
		"job_name", cty.StringVal("bay-prod"),
		"namespace", cty.StringVal("sandboxes"),
		"region", cty.StringVal("eu"),
		"datacenters", strs("eu-1", "eu-2"),
		"session_datacenters", strs("eu-2"),
		"discovery", cty.StringVal("consul"),
		"api_key", cty.StringVal(apiKey),
		"consul_token", cty.StringVal("consul-token-value"),
		"port", cty.NumberIntVal(9000),
		"instance_id", cty.StringVal("gw-eu"),
		"profiles", cty.StringVal(profiles),
		"extra_config", cty.StringVal("gc {\n  interval = \"45s\"\n}\n"),
		"data_volume", cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("bay-prod-data"), "create": cty.False}),
	))
	src := locals["jobspec"].AsString()
	js := parseJobspec(t, "custom", []byte(src))
	for _, secret := range []string{apiKey, "consul-token-value"} {
		if strings.Contains(src, secret) || strings.Contains(locals["bay_config"].AsString(), secret) {
			t.Errorf("a secret leaked into the jobspec or config")
		}
	}
	secrets := locals["secret_env"].AsValueMap()
	if len(secrets) != 3 || secrets["BAY_API_KEY"].AsString() != apiKey || secrets["CONSUL_HTTP_TOKEN"].AsString() != "consul-token-value" ||
		secrets["BAY_SECRETS_VERSION"].AsString() != "1" {
		t.Errorf("secret_env = %#v", secrets)
	}
	if js.job.Labels[0] != "bay-prod" || literal(t, js.job.Body, "namespace").AsString() != "sandboxes" ||
		literal(t, js.job.Body, "region").AsString() != "eu" {
		t.Errorf("job %s namespace/region wrong", js.job.Labels[0])
	}
	if dcs := literal(t, js.job.Body, "datacenters"); !dcs.Equals(cty.TupleVal([]cty.Value{cty.StringVal("eu-1"), cty.StringVal("eu-2")})).True() {
		t.Errorf("datacenters = %#v", dcs)
	}
	svc := onlyBlock(t, js.group.Body, "service")
	if literal(t, svc.Body, "provider").AsString() != "consul" || literal(t, svc.Body, "name").AsString() != "bay-prod" {
		t.Error("service provider/name not from discovery/job_name")
	}
	if got := literal(t, onlyBlock(t, js.group.Body, "volume").Body, "source").AsString(); got != "bay-prod-data" {
		t.Errorf("volume source = %q", got)
	}
	if got := js.templates(t)["secrets/bay.env"]; !strings.Contains(got, `"nomad/jobs/bay-prod"`) {
		t.Errorf("secrets template path:\n%s", got)
	}

	env := js.env(t, "10.9.9.9")
	c := js.mustLoadBay(t, env)
	if c.Nomad.Discovery != "consul" || c.Consul.Address != "http://10.9.9.9:8500" {
		t.Errorf("discovery %q, consul address %q", c.Nomad.Discovery, c.Consul.Address)
	}
	if c.Nomad.Namespace != "sandboxes" || c.Nomad.Region != "eu" || !reflect.DeepEqual(c.Nomad.Datacenters, []string{"eu-2"}) {
		t.Errorf("nomad = %+v", c.Nomad)
	}
	if c.Port != 8114 || c.InstanceID != "gw-eu" {
		t.Errorf("port %d (the container side stays 8114), instance %q", c.Port, c.InstanceID)
	}
	if c.GC.Interval != 45*time.Second {
		t.Errorf("extra_config not applied: gc interval %s", c.GC.Interval)
	}
	p, ok := c.Profiles.Get("data")
	if !ok || c.Profiles.Len() != 1 {
		t.Fatalf("profiles = %v", c.Profiles.All())
	}
	// Placeholders pass through Terraform, the jobspec and HCL untouched.
	if p.Description != "tagged ${SANDBOX_ID}" || p.Env["RUN"] != "${SANDBOX_ID}-${SESSION_ID}" || p.Env["TASKDIR"] != "${NOMAD_TASK_DIR}" {
		t.Errorf("placeholders mangled: description %q env %v", p.Description, p.Env)
	}
	if ct := p.Containers[0]; ct.Image != "registry.example/ship:2" || ct.Resources.CPU != 700 || ct.Resources.MemoryMB != 900 {
		t.Errorf("container = %+v", ct)
	}
}

func TestModuleValidationsRejectBadInputs(t *testing.T) {
	m := loadModule(t, moduleDir)
	obj := func(kv ...any) cty.Value {
		attrs := map[string]cty.Value{}
		for i := 0; i < len(kv); i += 2 {
			attrs[kv[i].(string)] = kv[i+1].(cty.Value)
		}
		return cty.ObjectVal(attrs)
	}
	cases := []struct {
		name, variable string
		value          cty.Value
		wantErr        string // substring of the failing error_message; "" = valid
	}{
		{"job name uppercase", "job_name", cty.StringVal("Bay"), "job_name"},
		{"job name ok", "job_name", cty.StringVal("bay-2"), ""},
		{"no datacenters", "datacenters", cty.ListValEmpty(cty.String), "datacenters"},
		{"empty datacenter", "datacenters", strs("dc1", " "), "datacenters"},
		{"image with space", "gateway_image", cty.StringVal("bay latest"), "gateway_image"},
		{"empty image", "gateway_image", cty.StringVal(""), "gateway_image"},
		{"port 0", "port", cty.NumberIntVal(0), "port"},
		{"port fraction", "port", cty.NumberFloatVal(8114.5), "port"},
		{"port too big", "port", cty.NumberIntVal(70000), "port"},
		{"tiny gateway", "gateway_resources", obj("cpu", cty.NumberIntVal(50), "memory", cty.NumberIntVal(256)), "CPU"},
		{"volume name", "data_volume", obj("name", cty.StringVal("bay data")), "data_volume"},
		{"volume ok", "data_volume", obj("name", cty.StringVal("bay_data"), "create", cty.False), ""},
		{"instance id", "instance_id", cty.StringVal("-gw"), "instance_id"},
		{"log level", "log_level", cty.StringVal("verbose"), "log_level"},
		{"short api key", "api_key", cty.StringVal("short"), "api_key"},
		{"api key with quote", "api_key", cty.StringVal(`abcdefghijklmnop"q`), "api_key"},
		{"api key ok", "api_key", cty.StringVal("abcdefghijklmnopqrstuvwx"), ""},
		{"nomad address", "gateway_nomad_address", cty.StringVal("127.0.0.1:4646"), "gateway_nomad_address"},
		{"nomad token", "gateway_nomad_token", cty.StringVal("a b"), "gateway_nomad_token"},
		{"discovery", "discovery", cty.StringVal("etcd"), "discovery"},
		{"session driver", "session_driver", cty.StringVal("podman"), "session_driver"},
		{"volume plugin", "volume_plugin", cty.StringVal(""), "volume_plugin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vars, err := m.inputs(with(baseInputs(), tc.variable, tc.value))
			if err != nil {
				t.Fatal(err)
			}
			failed, err := m.validate(vars)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.wantErr == "" && len(failed) > 0:
				t.Errorf("rejected: %q", failed)
			case tc.wantErr != "" && (len(failed) != 1 || !strings.Contains(failed[0], tc.wantErr)):
				t.Errorf("failures = %q, want one mentioning %q", failed, tc.wantErr)
			}
		})
	}

	if _, err := m.inputs(map[string]cty.Value{}); err == nil || !strings.Contains(err.Error(), "gateway_image") {
		t.Errorf("missing gateway_image: err = %v", err)
	}
}

// TestModulePreconditions evaluates the nomad_job preconditions: the default
// profiles need both runtime images.
func TestModulePreconditions(t *testing.T) {
	m := loadModule(t, moduleDir)
	job := m.resources["nomad_job.gateway"]
	var conds []hcl.Expression
	for _, lc := range blocks(job.Body, "lifecycle") {
		for _, pc := range blocks(lc.Body, "precondition") {
			conds = append(conds, pc.Body.Attributes["condition"].Expr)
		}
	}
	if len(conds) == 0 {
		t.Fatal("nomad_job.gateway has no precondition")
	}
	holds := func(in map[string]cty.Value) bool {
		vars, err := m.inputs(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range conds {
			v, diags := c.Value(m.evalContext(vars, map[string]cty.Value{}))
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			if v.False() {
				return false
			}
		}
		return true
	}
	gw := map[string]cty.Value{"gateway_image": cty.StringVal("bay:1")}
	if holds(gw) {
		t.Error("default profiles without ship/gull images accepted")
	}
	if holds(with(gw, "ship_image", cty.StringVal("s:1"))) {
		t.Error("default profiles without a gull image accepted")
	}
	if !holds(baseInputs()) {
		t.Error("both images given, still refused")
	}
	if !holds(with(gw, "profiles", cty.StringVal(`profile "p" {}`))) {
		t.Error("own profiles without images refused")
	}
}

// TestTemplatefileCallsMatchTemplates checks each templatefile call passes
// exactly the variables its template uses (Terraform fails on a missing
// one; an unused one is a mistake waiting to happen).
func TestTemplatefileCallsMatchTemplates(t *testing.T) {
	m := loadModule(t, moduleDir)
	calls := 0
	ctx := m.evalContext(map[string]cty.Value{}, map[string]cty.Value{})
	for name, a := range m.locals {
		hclsyntax.VisitAll(a.Expr, func(n hclsyntax.Node) hcl.Diagnostics {
			call, ok := n.(*hclsyntax.FunctionCallExpr)
			if !ok || call.Name != "templatefile" {
				return nil
			}
			calls++
			pathVal, diags := call.Args[0].Value(ctx)
			if diags.HasErrors() {
				t.Fatalf("local.%s: template path: %s", name, diags.Error())
			}
			obj, ok := call.Args[1].(*hclsyntax.ObjectConsExpr)
			if !ok {
				t.Fatalf("local.%s: templatefile vars must be an object literal", name)
			}
			passed := map[string]bool{}
			for _, item := range obj.Items {
				k, diags := item.KeyExpr.Value(nil)
				if diags.HasErrors() {
					t.Fatalf("local.%s: %s", name, diags.Error())
				}
				passed[k.AsString()] = true
			}
			src, err := os.ReadFile(pathVal.AsString())
			if err != nil {
				t.Fatal(err)
			}
			tmpl, diags := hclsyntax.ParseTemplate(src, pathVal.AsString(), hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatalf("%s: %s", pathVal.AsString(), diags.Error())
			}
			used := map[string]bool{}
			for _, tr := range tmpl.Variables() {
				used[tr.RootName()] = true
			}
			for k := range passed {
				if !used[k] {
					t.Errorf("%s: %q is passed but never used", filepath.Base(pathVal.AsString()), k)
				}
			}
			for k := range used {
				if !passed[k] {
					t.Errorf("%s: uses %q, which local.%s does not pass", filepath.Base(pathVal.AsString()), k, name)
				}
			}
			return nil
		})
	}
	if calls != 3 {
		t.Errorf("found %d templatefile calls, want 3 (profiles, bay.hcl, jobspec)", calls)
	}
}

// secretsEnv runs a secrets template as consul-template would, with the
// Nomad variable holding items (nil: no variable), and returns the env file.
func secretsEnv(t *testing.T, tmpl, wantPath string, items map[string]string) string {
	t.Helper()
	type item struct{ Key, Value string }
	funcs := template.FuncMap{
		"regexMatch": func(re, s string) (bool, error) { return regexp.MatchString(re, s) },
		"nomadVarExists": func(path string) bool {
			if wantPath != "" && path != wantPath {
				t.Errorf("template reads %q, want %q", path, wantPath)
			}
			return items != nil
		},
		"nomadVar": func(path string) map[string]item {
			if wantPath != "" && path != wantPath {
				t.Errorf("template reads %q, want %q", path, wantPath)
			}
			if items == nil {
				t.Error("nomadVar called for a missing variable: the task would block")
			}
			out := map[string]item{}
			for k, v := range items {
				out[k] = item{k, v}
			}
			return out
		},
		"toJSON": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}
	tp, err := template.New("secrets").Funcs(funcs).Parse(tmpl)
	if err != nil {
		t.Fatalf("secrets template: %v", err)
	}
	var b strings.Builder
	if err := tp.Execute(&b, nil); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestSecretsTemplateWritesEnvFile(t *testing.T) {
	m := loadModule(t, moduleDir)
	locals := m.render(t, baseInputs())
	fromModule := parseJobspec(t, "module", []byte(locals["jobspec"].AsString())).templates(t)["secrets/bay.env"]
	fromDeploy := deployJobspec(t).templates(t)["secrets/bay.env"]
	for name, tmpl := range map[string]string{"module": fromModule, "deploy": fromDeploy} {
		t.Run(name, func(t *testing.T) {
			got := secretsEnv(t, tmpl, "nomad/jobs/bay", map[string]string{
				"BAY_API_KEY": `key"with\quote`, "NOMAD_TOKEN": "tok-1",
				// PEM keys become files, not environment variables.
				"NOMAD_CLIENT_KEY_PEM": "-----BEGIN PRIVATE KEY-----",
			})
			lines := strings.Split(strings.TrimSpace(got), "\n")
			sort.Strings(lines)
			want := []string{`BAY_API_KEY="key\"with\\quote"`, `NOMAD_TOKEN="tok-1"`}
			if !reflect.DeepEqual(lines, want) {
				t.Errorf("env file = %q, want %q", lines, want)
			}
			if got := secretsEnv(t, tmpl, "nomad/jobs/bay", nil); strings.TrimSpace(got) != "" {
				t.Errorf("without the variable the env file = %q, want empty", got)
			}
		})
	}
}

// deployJobspec parses deploy/bay.nomad.hcl with its variables' defaults.
func deployJobspec(t *testing.T) *jobspec {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(deployDir, "bay.nomad.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	js := parseJobspec(t, "bay.nomad.hcl", src)
	js.ctx = &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(deployDefaults(t))}}
	return js
}

// deployDefaults returns deploy/bay.nomad.hcl's variable defaults.
func deployDefaults(t *testing.T) map[string]cty.Value {
	t.Helper()
	f, diags := hclparse.NewParser().ParseHCLFile(filepath.Join(deployDir, "bay.nomad.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	out := map[string]cty.Value{}
	for _, b := range blocks(f.Body.(*hclsyntax.Body), "variable") {
		out[b.Labels[0]] = literal(t, b.Body, "default")
	}
	return out
}

func TestDeployJobspecDefaultConfigLoads(t *testing.T) {
	defaults := deployDefaults(t)
	js := deployJobspec(t)
	// Evaluate the env block the way Nomad does: var.* from the defaults
	// first, then the node attribute at run time.
	env := map[string]string{}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(defaults)}}
	for name, a := range onlyBlock(t, js.task.Body, "env").Body.Attributes {
		v, diags := a.Expr.Value(ctx)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", a.SrcRange, diags.Error())
		}
		env[name] = strings.ReplaceAll(v.AsString(), "${attr.unique.network.ip-address}", "10.0.0.7")
	}
	c := loadConfig(t, defaults["config"].AsString(), env)
	if c.Allocator != config.AllocatorNomad || c.Nomad.DefaultDriver != "docker" || c.Nomad.Address != "http://10.0.0.7:4646" {
		t.Errorf("allocator %s driver %s address %s", c.Allocator, c.Nomad.DefaultDriver, c.Nomad.Address)
	}
	if c.DataDir != "/var/lib/bay" || c.BindAddr != "0.0.0.0" || c.InstanceID != "bay" {
		t.Errorf("data_dir/bind/instance = %s/%s/%s", c.DataDir, c.BindAddr, c.InstanceID)
	}
	p, ok := c.Profiles.Get("browser-python")
	if !ok || len(p.Containers) != 2 || p.Containers[1].Image != "bay-gull:latest" {
		t.Errorf("browser-python = %+v", p)
	}
}

// shape is what deploy/bay.nomad.hcl and the module's jobspec must agree on.
type shape struct {
	Blocks    []string // every block path, e.g. job/group/task/volume_mount
	EnvKeys   []string
	Templates []string
	Mount     string
}

func shapeOf(t *testing.T, js *jobspec) shape {
	var s shape
	var walk func(prefix string, body *hclsyntax.Body)
	walk = func(prefix string, body *hclsyntax.Body) {
		for _, b := range body.Blocks {
			if b.Type == "variable" {
				continue
			}
			p := prefix + b.Type
			s.Blocks = append(s.Blocks, p)
			walk(p+"/", b.Body)
		}
	}
	walk("job/", js.job.Body)
	for k := range onlyBlock(t, js.task.Body, "env").Body.Attributes {
		s.EnvKeys = append(s.EnvKeys, k)
	}
	for dest := range js.templates(t) {
		s.Templates = append(s.Templates, dest)
	}
	s.Mount = literal(t, onlyBlock(t, js.task.Body, "volume_mount").Body, "destination").AsString()
	sort.Strings(s.Blocks)
	sort.Strings(s.EnvKeys)
	sort.Strings(s.Templates)
	return s
}

// TestDeployJobspecMatchesModule keeps the hand-run jobspec and the module's
// template the same job.
func TestDeployJobspecMatchesModule(t *testing.T) {
	m := loadModule(t, moduleDir)
	locals := m.render(t, baseInputs())
	fromModule := shapeOf(t, parseJobspec(t, "module", []byte(locals["jobspec"].AsString())))
	fromDeploy := shapeOf(t, deployJobspec(t))
	if !reflect.DeepEqual(fromModule, fromDeploy) {
		t.Errorf("deploy/bay.nomad.hcl and the module's jobspec differ:\nmodule: %+v\ndeploy: %+v", fromModule, fromDeploy)
	}
	if fromDeploy.Mount != "/var/lib/bay" {
		t.Errorf("data mounted at %q, want the image's /var/lib/bay", fromDeploy.Mount)
	}
}

// exampleInputs evaluates the example's module call with the example's own
// variable defaults, as Terraform would.
func exampleInputs(t *testing.T) map[string]cty.Value {
	t.Helper()
	ex := loadModule(t, exampleDir)
	vars, err := ex.inputs(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ex.evalContext(vars, map[string]cty.Value{})
	in := map[string]cty.Value{}
	for name, a := range ex.modules["bay"].inputs {
		v, diags := a.Expr.Value(ctx)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", a.SrcRange, diags.Error())
		}
		in[name] = v
	}
	return in
}

func TestExampleRenders(t *testing.T) {
	m := loadModule(t, moduleDir)
	locals := m.render(t, exampleInputs(t))
	js := parseJobspec(t, "example", []byte(locals["jobspec"].AsString()))
	c := js.mustLoadBay(t, js.env(t, "127.0.0.1"))
	if !reflect.DeepEqual(c.Nomad.Datacenters, []string{"dc1"}) || c.LogLevel != "debug" || c.GC.Interval != 30*time.Second {
		t.Errorf("datacenters %v, log level %s, gc interval %s", c.Nomad.Datacenters, c.LogLevel, c.GC.Interval)
	}
	if got := locals["secret_env"].AsValueMap(); len(got) != 1 || got["BAY_SECRETS_VERSION"].AsString() != "1" {
		t.Errorf("the example's empty api_key produced a secret: %#v", got)
	}
}

// TestVolumeSpec checks deploy/bay-data.volume.hcl makes a volume the
// gateway image (uid/gid 1000) can write and the job can claim.
func TestVolumeSpec(t *testing.T) {
	f, diags := hclparse.NewParser().ParseHCLFile(filepath.Join(deployDir, "bay-data.volume.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	body := f.Body.(*hclsyntax.Body)
	if got := literal(t, body, "name").AsString(); got != deployDefaults(t)["data_volume"].AsString() {
		t.Errorf("volume name %q is not the jobspec's data_volume default", got)
	}
	if literal(t, body, "type").AsString() != "host" || literal(t, body, "plugin_id").AsString() != "mkdir" {
		t.Error("want a host volume from the mkdir plugin")
	}
	params := onlyBlock(t, body, "parameters").Body
	if literal(t, params, "uid").AsString() != "1000" || literal(t, params, "gid").AsString() != "1000" {
		t.Error("volume not owned by the image's uid/gid 1000")
	}
	// An unset access mode in the job's volume block means single-node-writer
	// on file-system, so the volume must offer exactly that.
	capb := onlyBlock(t, body, "capability").Body
	if literal(t, capb, "access_mode").AsString() != "single-node-writer" || literal(t, capb, "attachment_mode").AsString() != "file-system" {
		t.Error("capability must be single-node-writer/file-system")
	}
}
