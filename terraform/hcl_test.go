package terraform

import (
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// TestEveryFileParses parses every .tf and .hcl file under terraform/ and
// deploy/ (templates are checked after rendering).
func TestEveryFileParses(t *testing.T) {
	var paths []string
	for _, root := range []string{".", deployDir} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != "." {
				return filepath.SkipDir // .terraform and friends
			}
			if ext := filepath.Ext(path); !d.IsDir() && (ext == ".tf" || ext == ".hcl") {
				paths = append(paths, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{
		"modules/bay-gateway/main.tf", "modules/bay-gateway/variables.tf", "modules/bay-gateway/outputs.tf",
		"modules/bay-gateway/versions.tf", "examples/dev/main.tf", "../deploy/bay.nomad.hcl", "../deploy/bay-data.volume.hcl",
	} {
		if !slices.Contains(paths, filepath.Clean(want)) {
			t.Errorf("%s is missing", want)
		}
	}
	p := hclparse.NewParser()
	for _, path := range paths {
		if _, diags := p.ParseHCLFile(path); len(diags) > 0 {
			t.Errorf("%s: %s", path, diags.Error())
		}
	}
}

// TestModuleDeclaresItsProvider checks versions.tf pins hashicorp/nomad.
// TestModuleDeclaresItsProvider checks the module states a version range of
// each provider (a lower bound for the features it uses), and every example
// pins exact versions, recorded in its committed lock file.
func TestModuleDeclaresItsProvider(t *testing.T) {
	required := func(m *module) map[string][2]string {
		out := map[string][2]string{}
		for _, f := range m.files {
			for _, b := range f.Body.(*hclsyntax.Body).Blocks {
				if b.Type != "terraform" {
					continue
				}
				for _, rp := range b.Body.Blocks {
					if rp.Type != "required_providers" {
						continue
					}
					for name, a := range rp.Body.Attributes {
						v, diags := a.Expr.Value(nil)
						if diags.HasErrors() {
							t.Fatalf("%s: %s", a.SrcRange, diags.Error())
						}
						out[name] = [2]string{v.GetAttr("source").AsString(), v.GetAttr("version").AsString()}
					}
				}
			}
		}
		return out
	}
	mod := required(loadModule(t, moduleDir))
	if p := mod["nomad"]; p[0] != "hashicorp/nomad" || !strings.Contains(p[1], ">= 2.6.1") {
		t.Errorf("module: nomad provider = %q, want hashicorp/nomad >= 2.6.1 (items_wo)", p)
	}
	if p := mod["time"]; p[0] != "hashicorp/time" || !strings.Contains(p[1], ">=") {
		t.Errorf("module: time provider = %q, want hashicorp/time with a lower bound", p)
	}
	for _, ex := range examples(t) {
		lock := readLock(t, filepath.Join(ex.dir, ".terraform.lock.hcl"))
		for name, p := range required(ex) {
			ver, ok := strings.CutPrefix(p[1], "= ")
			if !ok || !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(ver) {
				t.Errorf("%s: %s provider version %q is not an exact pin (= x.y.z)", ex.dir, name, p[1])
			}
			if got := lock[p[0]]; got != ver {
				t.Errorf("%s: lock file has %s at %q, the configuration pins %q", ex.dir, p[0], got, ver)
			}
		}
		for _, want := range []string{"nomad", "time"} {
			if _, ok := required(ex)[want]; !ok {
				t.Errorf("%s: no required_providers entry for %s", ex.dir, want)
			}
		}
	}
}

// readLock returns provider source ("hashicorp/nomad") -> locked version.
func readLock(t *testing.T, path string) map[string]string {
	t.Helper()
	f, diags := hclparse.NewParser().ParseHCLFile(path)
	if diags.HasErrors() {
		t.Fatalf("lock file: %s", diags.Error())
	}
	out := map[string]string{}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type != "provider" {
			continue
		}
		src := b.Labels[0]
		if i := strings.Index(src, "/"); i >= 0 {
			src = src[i+1:] // drop the registry host
		}
		v, diags := b.Body.Attributes["version"].Expr.Value(nil)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		out[src] = v.AsString()
	}
	return out
}

// examples loads every example root module.
func examples(t *testing.T) []*module {
	t.Helper()
	var out []*module
	for _, dir := range exampleDirs {
		out = append(out, loadModule(t, dir))
	}
	return out
}

// TestReferencesResolve walks every expression of the module and the example
// and checks each reference: var.x has a variable block, local.x a local,
// type.name a resource, module.m.o an output of the called module.
func TestReferencesResolve(t *testing.T) {
	mod := loadModule(t, moduleDir)
	for _, m := range append([]*module{mod}, examples(t)...) {
		for _, f := range m.files {
			// A dynamic block's iterator (its label) is a reference root
			// inside it; lifecycle.ignore_changes names attributes.
			iterators := map[string]bool{}
			hclsyntax.VisitAll(f.Body.(*hclsyntax.Body), func(n hclsyntax.Node) hcl.Diagnostics {
				if b, ok := n.(*hclsyntax.Block); ok && b.Type == "dynamic" {
					iterators[b.Labels[0]] = true
				}
				return nil
			})
			walkAttrs(f.Body.(*hclsyntax.Body), func(a *hclsyntax.Attribute) {
				if a.Name == "ignore_changes" {
					return
				}
				for _, tr := range a.Expr.Variables() {
					if iterators[tr.RootName()] {
						continue
					}
					if err := m.resolve(t, tr); err != "" {
						t.Errorf("%s: %s", tr.SourceRange(), err)
					}
				}
			})
		}
	}
	// The module uses every variable it declares.
	used := map[string]bool{}
	for _, f := range mod.files {
		walkAttrs(withoutValidations(f.Body.(*hclsyntax.Body)), func(a *hclsyntax.Attribute) {
			for _, tr := range a.Expr.Variables() {
				if tr.RootName() == "var" && len(tr) > 1 {
					used[tr[1].(hcl.TraverseAttr).Name] = true
				}
			}
		})
	}
	for name, v := range mod.variables {
		if !used[name] {
			t.Errorf("%s: variable %q is declared but never used", v.rng, name)
		}
	}
}

// TestValidationsReferenceOnlyTheirVariable keeps the module working on
// Terraform before 1.9, where a validation may only see its own variable.
func TestValidationsReferenceOnlyTheirVariable(t *testing.T) {
	m := loadModule(t, moduleDir)
	n := 0
	for name, v := range m.variables {
		for _, val := range v.validations {
			n++
			for _, tr := range val.cond.Variables() {
				if tr.RootName() != "var" || tr[1].(hcl.TraverseAttr).Name != name {
					t.Errorf("%s: validation of %q references %s", tr.SourceRange(), name, tr.RootName())
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d validation blocks; every constrained input should have one", n)
	}
}

// TestModuleCallsMatchVariables checks the example passes only inputs the
// module declares, and every required one.
func TestModuleCallsMatchVariables(t *testing.T) {
	for _, ex := range examples(t) {
		checkModuleCalls(t, ex)
	}
}

func checkModuleCalls(t *testing.T, ex *module) {
	if len(ex.modules) == 0 {
		t.Fatal("the example calls no module")
	}
	for _, mc := range ex.modules {
		called := loadModule(t, filepath.Join(exampleDir, mc.source))
		for name, a := range mc.inputs {
			if _, ok := called.variables[name]; !ok {
				t.Errorf("%s: module %q has no variable %q", a.SrcRange, mc.name, name)
			}
		}
		for name, v := range called.variables {
			if _, given := mc.inputs[name]; v.def == cty.NilVal && !given {
				t.Errorf("%s: required variable %q of module %q is not set", mc.rng, name, mc.name)
			}
		}
	}
	if _, ok := ex.providers["nomad"]; !ok {
		t.Error("the example configures no nomad provider")
	}
}

// walkAttrs calls fn for every expression attribute in body and its nested
// blocks (a variable's type is a type expression, not a reference).
func walkAttrs(body *hclsyntax.Body, fn func(*hclsyntax.Attribute)) {
	for _, a := range body.Attributes {
		fn(a)
	}
	for _, b := range body.Blocks {
		if b.Type == "variable" {
			inner := *b.Body
			inner.Attributes = hclsyntax.Attributes{}
			for name, a := range b.Body.Attributes {
				if name != "type" {
					inner.Attributes[name] = a
				}
			}
			walkAttrs(&inner, fn)
			continue
		}
		walkAttrs(b.Body, fn)
	}
}

// resolve reports what is wrong with a reference, or "".
func (m *module) resolve(t *testing.T, tr hcl.Traversal) string {
	attr := func(i int) string {
		if len(tr) <= i {
			return ""
		}
		if a, ok := tr[i].(hcl.TraverseAttr); ok {
			return a.Name
		}
		return ""
	}
	switch root := tr.RootName(); root {
	case "var":
		if _, ok := m.variables[attr(1)]; !ok {
			return "undeclared variable var." + attr(1)
		}
	case "local":
		if _, ok := m.locals[attr(1)]; !ok {
			return "undeclared local." + attr(1)
		}
	case "path", "terraform", "count", "each", "self":
	case "module":
		mc, ok := m.modules[attr(1)]
		if !ok {
			return "no module " + attr(1)
		}
		called := loadModule(t, filepath.Join(m.dir, mc.source))
		if _, ok := called.outputs[attr(2)]; !ok {
			return "module " + attr(1) + " has no output " + attr(2)
		}
	case "data":
		if _, ok := m.data[attr(1)+"."+attr(2)]; !ok {
			return "no data source data." + attr(1) + "." + attr(2)
		}
	default:
		if _, ok := m.resources[root+"."+attr(1)]; !ok {
			return "no resource " + root + "." + attr(1)
		}
	}
	return ""
}

// withoutValidations copies body without the variables' validation blocks,
// which reference their own variable and so are no use of it.
func withoutValidations(body *hclsyntax.Body) *hclsyntax.Body {
	out := *body
	out.Blocks = nil
	for _, b := range body.Blocks {
		if b.Type == "variable" {
			vb := *b
			inner := *b.Body
			inner.Blocks = nil
			vb.Body = &inner
			b = &vb
		}
		out.Blocks = append(out.Blocks, b)
	}
	return &out
}
