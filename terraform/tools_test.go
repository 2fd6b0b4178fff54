package terraform

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/bay-sandbox/bay/internal/testutil"
)

// nomadRun runs the nomad CLI offline: the address points nowhere, so job
// validate and job run -output use the CLI's own parser and validation.
func nomadRun(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = testutil.Env("NOMAD_ADDR=http://127.0.0.1:1", "NOMAD_TOKEN=", "NOMAD_NAMESPACE=", "NOMAD_REGION=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// apiJob is the part of Nomad's JSON job the tests read.
type apiJob struct {
	ID         string
	Type       string
	TaskGroups []struct {
		Name     string
		Networks []struct {
			ReservedPorts []struct {
				Label string
				Value int
				To    int
			}
		}
		Volumes map[string]struct {
			Type   string
			Source string
		}
		Services []struct {
			Name     string
			Provider string
			Checks   []struct {
				Type string
				Path string
			}
		}
		Tasks []struct {
			Driver       string
			Config       map[string]any
			Env          map[string]string
			VolumeMounts []struct {
				Volume      string
				Destination string
			}
			Templates []struct {
				EmbeddedTmpl string
				DestPath     string
				Envvars      bool
			}
		}
	}
}

// validateJobspec runs nomad job validate and job run -output on a jobspec
// file and returns the job as Nomad's API would receive it.
func validateJobspec(t *testing.T, bin, path string, vars ...string) apiJob {
	t.Helper()
	args := []string{"job", "validate"}
	for _, v := range vars {
		args = append(args, "-var", v)
	}
	if out, err := nomadRun(t, bin, append(args, path)...); err != nil || !strings.Contains(out, "Job validation successful") {
		t.Fatalf("nomad job validate %s: %v\n%s", filepath.Base(path), err, out)
	}
	args = []string{"job", "run", "-output"}
	for _, v := range vars {
		args = append(args, "-var", v)
	}
	out, err := nomadRun(t, bin, append(args, path)...)
	if err != nil {
		t.Fatalf("nomad job run -output: %v\n%s", err, out)
	}
	var wrapped struct{ Job apiJob }
	if err := json.Unmarshal([]byte(out), &wrapped); err != nil {
		t.Fatalf("decode nomad's JSON: %v\n%s", err, out)
	}
	j := wrapped.Job
	if len(j.TaskGroups) != 1 || len(j.TaskGroups[0].Tasks) != 1 {
		t.Fatalf("want one group with one task, got %+v", j)
	}
	return j
}

func TestNomadValidatesJobspecs(t *testing.T) {
	bin := testutil.Nomad(t)
	m := loadModule(t, moduleDir)
	dir := t.TempDir()

	type rendered struct {
		name   string
		inputs map[string]cty.Value
	}
	cases := []rendered{
		{"default", baseInputs()},
		{"consul", with(baseInputs(), "discovery", cty.StringVal("consul"), "job_name", cty.StringVal("bay-c"),
			// Template syntax in the config must reach the gateway as written.
			"extra_config", cty.StringVal("# 50%{x} of ${Y}\nserver {\n  request_timeout = \"${X}\"\n}\n"))},
		{"example", exampleInputs(t)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			locals := m.render(t, tc.inputs)
			path := filepath.Join(dir, tc.name+".nomad.hcl")
			if err := os.WriteFile(path, []byte(locals["jobspec"].AsString()), 0o600); err != nil {
				t.Fatal(err)
			}
			j := validateJobspec(t, bin, path)
			g := j.TaskGroups[0]
			task := g.Tasks[0]
			if j.Type != "service" || task.Driver != "docker" {
				t.Errorf("job type %s, driver %s", j.Type, task.Driver)
			}
			// Nomad keeps the config byte for byte: HCL escapes undone, node
			// attributes left for run time.
			var cfg string
			for _, tp := range task.Templates {
				if tp.DestPath == "local/bay.d/10-bay.hcl" {
					cfg = tp.EmbeddedTmpl
				}
			}
			if strings.TrimRight(cfg, "\n") != strings.TrimRight(locals["bay_config"].AsString(), "\n") {
				t.Errorf("Nomad's config template differs from the rendered config:\n got %q\nwant %q", cfg, locals["bay_config"].AsString())
			}
			if got := task.Env["NOMAD_ADDR"]; got != "http://${attr.unique.network.ip-address}:4646" {
				t.Errorf("NOMAD_ADDR = %q, want the node attribute kept for run time", got)
			}
			if got := task.Config["args"]; !strings.Contains(strings.Join(toStrings(got), " "), "--config ${NOMAD_TASK_DIR}/bay.d") {
				t.Errorf("args = %v", got)
			}
			if len(g.Services) != 1 || len(g.Services[0].Checks) != 1 || g.Services[0].Checks[0].Path != "/health" {
				t.Errorf("services = %+v", g.Services)
			}
			if len(task.VolumeMounts) != 1 || task.VolumeMounts[0].Destination != "/var/lib/bay" || g.Volumes["data"].Type != "host" {
				t.Errorf("volume %+v mounts %+v", g.Volumes, task.VolumeMounts)
			}
			if len(g.Networks) != 1 || len(g.Networks[0].ReservedPorts) != 1 || g.Networks[0].ReservedPorts[0].To != 8114 {
				t.Errorf("networks = %+v", g.Networks)
			}
		})
	}

	t.Run("deploy", func(t *testing.T) {
		path := filepath.Join(deployDir, "bay.nomad.hcl")
		j := validateJobspec(t, bin, path, "image=bay:test", "port=9114")
		task := j.TaskGroups[0].Tasks[0]
		if task.Config["image"] != "bay:test" || j.TaskGroups[0].Networks[0].ReservedPorts[0].Value != 9114 {
			t.Errorf("variables not applied: image %v ports %+v", task.Config["image"], j.TaskGroups[0].Networks)
		}
		if out, err := nomadRun(t, bin, "fmt", "-check", path, filepath.Join(deployDir, "bay-data.volume.hcl")); err != nil {
			t.Errorf("nomad fmt -check: %v\n%s", err, out)
		}
	})
}

func toStrings(v any) []string {
	var out []string
	if list, ok := v.([]any); ok {
		for _, x := range list {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}

// terraformBin returns terraform from PATH or skips.
func terraformBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("no terraform binary on PATH")
	}
	return p
}

func terraformRun(t *testing.T, bin, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = testutil.Env("CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_INPUT=0",
		"TF_CLI_CONFIG_FILE="+filepath.Join(dir, ".terraformrc"), "TF_DATA_DIR="+filepath.Join(dir, ".terraform"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String() + errb.String(), err
	}
	return out.String(), nil
}

func TestTerraformFmt(t *testing.T) {
	bin := terraformBin(t)
	abs, _ := filepath.Abs(".")
	if out, err := terraformRun(t, bin, t.TempDir(), "fmt", "-check", "-recursive", "-diff", abs); err != nil {
		t.Errorf("terraform fmt -check: %v\n%s", err, out)
	}
}

// TestTerraformAgreesWithThisEvaluator renders the module's locals with the
// real terraform (the module's variables and locals in a provider-free root
// module, so nothing is downloaded) and compares with the Go rendering the
// other tests check; then checks terraform itself rejects a bad input.
func TestTerraformAgreesWithThisEvaluator(t *testing.T) {
	bin := terraformBin(t)
	m := loadModule(t, moduleDir)
	root := t.TempDir()

	var locals []byte
	for _, f := range m.files {
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			if b.Type == "locals" {
				r := b.Range()
				locals = append(append(locals, f.Bytes[r.Start.Byte:r.End.Byte]...), '\n')
			}
		}
	}
	if len(locals) == 0 {
		t.Fatal("the module has no locals")
	}
	vars, err := os.ReadFile(filepath.Join(m.dir, "variables.tf"))
	if err != nil {
		t.Fatal(err)
	}
	main := string(locals) + `
output "jobspec" {
  value = local.jobspec
}
output "bay_config" {
  value = local.bay_config
}
output "acl_policy" {
  value = local.acl_policy
}
`
	write := func(name, content string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("variables.tf", string(vars))
	write("main.tf", main)
	write(".terraformrc", "")
	tmpls, _ := filepath.Glob(filepath.Join(m.dir, "templates", "*"))
	acl, _ := filepath.Glob(filepath.Join(m.dir, "acl", "*"))
	for _, p := range append(tmpls, acl...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		write(filepath.Join(filepath.Base(filepath.Dir(p)), filepath.Base(p)), string(b))
	}

	inputs := with(baseInputs(), "discovery", cty.StringVal("consul"),
		"profiles", cty.StringVal("profile \"p\" {\n  env = { A = \"${SANDBOX_ID}\" }\n  description = \"100%{x}\"\n}\n"))
	tfvars := map[string]json.RawMessage{}
	for k, v := range inputs {
		b, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			t.Fatal(err)
		}
		tfvars[k] = b
	}
	b, _ := json.Marshal(tfvars)
	write("test.auto.tfvars.json", string(b))

	if out, err := terraformRun(t, bin, root, "init", "-backend=false", "-input=false"); err != nil {
		t.Fatalf("terraform init: %v\n%s", err, out)
	}
	if out, err := terraformRun(t, bin, root, "apply", "-auto-approve", "-input=false"); err != nil {
		t.Fatalf("terraform apply: %v\n%s", err, out)
	}
	out, err := terraformRun(t, bin, root, "output", "-json")
	if err != nil {
		t.Fatalf("terraform output: %v\n%s", err, out)
	}
	var outputs map[string]struct{ Value string }
	if err := json.Unmarshal([]byte(out), &outputs); err != nil {
		t.Fatalf("decode outputs: %v\n%s", err, out)
	}
	ours := m.render(t, inputs)
	for _, name := range []string{"jobspec", "bay_config", "acl_policy"} {
		if got, want := outputs[name].Value, ours[name].AsString(); got != want {
			t.Errorf("%s: terraform renders differently from the Go evaluator:\nterraform: %q\ngo:        %q", name, got, want)
		}
	}

	// Terraform runs the same validations.
	out, err = terraformRun(t, bin, root, "plan", "-input=false", "-var", "port=0", "-var", "discovery=etcd")
	if err == nil || !strings.Contains(out, "The port must be a whole number") || !strings.Contains(out, `discovery provider must be`) {
		t.Errorf("terraform plan with bad inputs: err %v\n%s", err, out)
	}
}
