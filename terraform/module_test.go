package terraform

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// This file is a small Terraform evaluator, enough for Bay's module: it
// reads a module's variables, locals, resources, outputs and module calls,
// and evaluates locals and variable validations with the functions the
// module uses, implemented as Terraform implements them (cty's stdlib, HCL's
// can, and templatefile = parse the file as an HCL template and evaluate it
// with the given variables only).

// exampleDirs are the example root modules, each with its lock file.
var exampleDirs = []string{"examples/dev", "examples/production"}

const (
	moduleDir  = "modules/bay-gateway"
	exampleDir = "examples/dev"
	deployDir  = "../deploy"
)

type variable struct {
	name        string
	typ         cty.Type
	defaults    *typeexpr.Defaults
	def         cty.Value // cty.NilVal when the variable is required
	sensitive   bool
	validations []validation
	rng         hcl.Range
}

type validation struct {
	cond hcl.Expression
	msg  string
}

type moduleCall struct {
	name   string
	source string
	inputs map[string]*hclsyntax.Attribute
	rng    hcl.Range
}

// module is one Terraform module directory.
type module struct {
	dir       string
	files     map[string]*hcl.File
	variables map[string]*variable
	locals    map[string]*hclsyntax.Attribute
	resources map[string]*hclsyntax.Block // "type.name"
	data      map[string]*hclsyntax.Block // "type.name"
	outputs   map[string]*hclsyntax.Block
	modules   map[string]*moduleCall
	providers map[string]*hclsyntax.Block
}

// loadModule parses every .tf file of dir; any diagnostic fails the test.
func loadModule(t *testing.T, dir string) *module {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := &module{
		dir: abs, files: map[string]*hcl.File{}, variables: map[string]*variable{},
		locals: map[string]*hclsyntax.Attribute{}, resources: map[string]*hclsyntax.Block{},
		data: map[string]*hclsyntax.Block{}, outputs: map[string]*hclsyntax.Block{},
		modules: map[string]*moduleCall{}, providers: map[string]*hclsyntax.Block{},
	}
	paths, _ := filepath.Glob(filepath.Join(abs, "*.tf"))
	if len(paths) == 0 {
		t.Fatalf("no .tf files in %s", dir)
	}
	p := hclparse.NewParser()
	for _, path := range paths {
		f, diags := p.ParseHCLFile(path)
		if diags.HasErrors() {
			t.Fatalf("parse %s: %s", path, diags.Error())
		}
		m.files[path] = f
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			m.add(t, b)
		}
	}
	return m
}

func (m *module) add(t *testing.T, b *hclsyntax.Block) {
	t.Helper()
	dup := func(kind, name string, exists bool) {
		if exists {
			t.Errorf("%s: duplicate %s %q", b.DefRange(), kind, name)
		}
	}
	switch b.Type {
	case "variable":
		v := m.decodeVariable(t, b)
		_, ok := m.variables[v.name]
		dup("variable", v.name, ok)
		m.variables[v.name] = v
	case "locals":
		for name, a := range b.Body.Attributes {
			_, ok := m.locals[name]
			dup("local", name, ok)
			m.locals[name] = a
		}
	case "resource", "data":
		key := b.Labels[0] + "." + b.Labels[1]
		target := m.resources
		if b.Type == "data" {
			target = m.data
		}
		_, ok := target[key]
		dup(b.Type, key, ok)
		target[key] = b
	case "output":
		_, ok := m.outputs[b.Labels[0]]
		dup("output", b.Labels[0], ok)
		m.outputs[b.Labels[0]] = b
	case "module":
		mc := &moduleCall{name: b.Labels[0], inputs: map[string]*hclsyntax.Attribute{}, rng: b.DefRange()}
		for name, a := range b.Body.Attributes {
			if name == "source" {
				v, diags := a.Expr.Value(nil)
				if diags.HasErrors() || v.Type() != cty.String {
					t.Fatalf("%s: module source must be a literal string", a.SrcRange)
				}
				mc.source = v.AsString()
				continue
			}
			if !slices.Contains([]string{"version", "providers", "depends_on", "count", "for_each"}, name) {
				mc.inputs[name] = a
			}
		}
		m.modules[mc.name] = mc
	case "provider":
		m.providers[b.Labels[0]] = b
	case "terraform":
	default:
		t.Errorf("%s: unexpected top-level block %q", b.DefRange(), b.Type)
	}
}

func (m *module) decodeVariable(t *testing.T, b *hclsyntax.Block) *variable {
	t.Helper()
	v := &variable{name: b.Labels[0], typ: cty.DynamicPseudoType, def: cty.NilVal, rng: b.DefRange()}
	if a, ok := b.Body.Attributes["type"]; ok {
		ty, defaults, diags := typeexpr.TypeConstraintWithDefaults(a.Expr)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", a.SrcRange, diags.Error())
		}
		v.typ, v.defaults = ty, defaults
	} else {
		t.Errorf("%s: variable %q has no type", b.DefRange(), v.name)
	}
	if _, ok := b.Body.Attributes["description"]; !ok && strings.Contains(m.dir, "modules") {
		t.Errorf("%s: module variable %q has no description", b.DefRange(), v.name)
	}
	if a, ok := b.Body.Attributes["default"]; ok {
		val, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			t.Fatalf("%s: default: %s", a.SrcRange, diags.Error())
		}
		conv, err := v.convert(val)
		if err != nil {
			t.Fatalf("%s: default of %q does not fit its type: %v", a.SrcRange, v.name, err)
		}
		v.def = conv
	}
	if a, ok := b.Body.Attributes["sensitive"]; ok {
		val, _ := a.Expr.Value(nil)
		v.sensitive = val.True()
	}
	for _, vb := range b.Body.Blocks {
		if vb.Type != "validation" {
			continue
		}
		cond, ok := vb.Body.Attributes["condition"]
		msgAttr, ok2 := vb.Body.Attributes["error_message"]
		if !ok || !ok2 {
			t.Fatalf("%s: validation needs condition and error_message", vb.DefRange())
		}
		msg, _ := msgAttr.Expr.Value(nil)
		v.validations = append(v.validations, validation{cond: cond.Expr, msg: msg.AsString()})
	}
	return v
}

// convert applies optional-attribute defaults and converts to the type, as
// Terraform does for input values.
func (v *variable) convert(val cty.Value) (cty.Value, error) {
	if v.defaults != nil {
		val = v.defaults.Apply(val)
	}
	return convert.Convert(val, v.typ)
}

// baseFunctions are the Terraform functions the module uses, but
// templatefile, which templates may not call (as in Terraform).
func baseFunctions() map[string]function.Function {
	return map[string]function.Function{
		"can":          tryfunc.CanFunc,
		"compact":      stdlib.CompactFunc,
		"lower":        stdlib.LowerFunc,
		"merge":        stdlib.MergeFunc,
		"tostring":     stdlib.MakeToFunc(cty.String),
		"contains":     stdlib.ContainsFunc,
		"floor":        stdlib.FloorFunc,
		"format":       stdlib.FormatFunc,
		"jsonencode":   stdlib.JSONEncodeFunc,
		"length":       stdlib.LengthFunc,
		"regex":        stdlib.RegexFunc,
		"replace":      stdlib.ReplaceFunc,
		"trimspace":    stdlib.TrimSpaceFunc,
		"nonsensitive": stdlib.MakeToFunc(cty.DynamicPseudoType), // no marks here
	}
}

// renderTemplate evaluates a template file and also reports which of the
// given variables it never uses.
func renderTemplate(path string, vars cty.Value) (string, []string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	expr, diags := hclsyntax.ParseTemplate(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		return "", nil, diags
	}
	if !vars.Type().IsObjectType() && !vars.Type().IsMapType() {
		return "", nil, fmt.Errorf("templatefile vars must be an object or map, got %s", vars.Type().FriendlyName())
	}
	ctx := &hcl.EvalContext{Variables: vars.AsValueMap(), Functions: baseFunctions()}
	val, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return "", nil, diags
	}
	used := map[string]bool{}
	for _, tr := range expr.Variables() {
		used[tr.RootName()] = true
	}
	var unused []string
	for name := range ctx.Variables {
		if !used[name] {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	s, err := convert.Convert(val, cty.String)
	if err != nil {
		return "", nil, fmt.Errorf("%s: result is not a string: %w", path, err)
	}
	return s.AsString(), unused, nil
}

// inputs resolves variable values: given ones (converted to their type)
// over defaults; a required variable left out is an error.
func (m *module) inputs(given map[string]cty.Value) (map[string]cty.Value, error) {
	out := map[string]cty.Value{}
	for name := range given {
		if _, ok := m.variables[name]; !ok {
			return nil, fmt.Errorf("no variable %q in %s", name, m.dir)
		}
	}
	for name, v := range m.variables {
		val, ok := given[name]
		if !ok {
			if v.def == cty.NilVal {
				return nil, fmt.Errorf("variable %q is required", name)
			}
			out[name] = v.def
			continue
		}
		conv, err := v.convert(val)
		if err != nil {
			return nil, fmt.Errorf("variable %q: %w", name, err)
		}
		out[name] = conv
	}
	return out, nil
}

func (m *module) evalContext(vars, locals map[string]cty.Value) *hcl.EvalContext {
	fs := baseFunctions()
	// file reads from the module, as Terraform's does.
	fs["file"] = function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			b, err := os.ReadFile(args[0].AsString())
			if err != nil {
				return cty.NilVal, err
			}
			return cty.StringVal(string(b)), nil
		},
	})
	fs["templatefile"] = function.New(&function.Spec{
		Params: []function.Parameter{
			{Name: "path", Type: cty.String},
			{Name: "vars", Type: cty.DynamicPseudoType},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			out, _, err := renderTemplate(args[0].AsString(), args[1])
			if err != nil {
				return cty.NilVal, err
			}
			return cty.StringVal(out), nil
		},
	})
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"var":   cty.ObjectVal(vars),
			"local": cty.ObjectVal(locals),
			"path":  cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(m.dir)}),
		},
		Functions: fs,
	}
}

// validate runs every variable's validation blocks against the resolved
// values and returns the failing error messages.
func (m *module) validate(vars map[string]cty.Value) ([]string, error) {
	var failed []string
	ctx := m.evalContext(vars, map[string]cty.Value{})
	names := make([]string, 0, len(m.variables))
	for name := range m.variables {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, val := range m.variables[name].validations {
			res, diags := val.cond.Value(ctx)
			if diags.HasErrors() {
				return nil, fmt.Errorf("variable %q: validation: %s", name, diags.Error())
			}
			if res.IsNull() || res.Type() != cty.Bool {
				return nil, fmt.Errorf("variable %q: validation condition is not a bool", name)
			}
			if res.False() {
				failed = append(failed, val.msg)
			}
		}
	}
	return failed, nil
}

// evalLocals evaluates every local in dependency order.
func (m *module) evalLocals(vars map[string]cty.Value) (map[string]cty.Value, error) {
	done := map[string]cty.Value{}
	for len(done) < len(m.locals) {
		progress := false
		for name, a := range m.locals {
			if _, ok := done[name]; ok {
				continue
			}
			ready := true
			for _, tr := range a.Expr.Variables() {
				if tr.RootName() != "local" {
					continue
				}
				dep := tr[1].(hcl.TraverseAttr).Name
				if _, ok := done[dep]; !ok {
					ready = false
				}
			}
			if !ready {
				continue
			}
			val, diags := a.Expr.Value(m.evalContext(vars, done))
			if diags.HasErrors() {
				return nil, fmt.Errorf("local.%s: %s", name, diags.Error())
			}
			done[name] = val
			progress = true
		}
		if !progress {
			return nil, fmt.Errorf("locals have a cycle or an unknown local")
		}
	}
	return done, nil
}

// render evaluates the module with the given inputs: validations must pass.
func (m *module) render(t *testing.T, given map[string]cty.Value) map[string]cty.Value {
	t.Helper()
	vars, err := m.inputs(given)
	if err != nil {
		t.Fatal(err)
	}
	failed, err := m.validate(vars)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) > 0 {
		t.Fatalf("validations failed: %q", failed)
	}
	locals, err := m.evalLocals(vars)
	if err != nil {
		t.Fatal(err)
	}
	return locals
}

// strs is a shorthand for a list of strings.
func strs(s ...string) cty.Value {
	vals := make([]cty.Value, len(s))
	for i, v := range s {
		vals[i] = cty.StringVal(v)
	}
	return cty.ListVal(vals)
}
