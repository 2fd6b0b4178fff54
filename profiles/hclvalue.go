package profiles

import (
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"
)

// literalContext makes every variable an expression mentions evaluate to its
// own "${...}" text. HCL would otherwise treat "${SANDBOX_ID}" (or Nomad's
// "${NOMAD_TASK_DIR}") as a reference and fail; these placeholders are meant
// to be expanded later, per session, so they must survive decoding verbatim.
func literalContext(expr hcl.Expression) *hcl.EvalContext {
	vars := expr.Variables()
	if len(vars) == 0 {
		return nil
	}
	roots := map[string]*litNode{}
	for _, tr := range vars {
		name := tr.RootName()
		n, ok := roots[name]
		if !ok {
			n = &litNode{text: name}
			roots[name] = n
		}
		for _, step := range tr[1:] {
			var key, text string
			switch s := step.(type) {
			case hcl.TraverseAttr:
				key, text = s.Name, n.text+"."+s.Name
			case hcl.TraverseIndex:
				if s.Key.Type() != cty.String || !s.Key.IsKnown() || s.Key.IsNull() {
					key = ""
				} else {
					key = s.Key.AsString()
					text = n.text + "[" + strconv.Quote(key) + "]"
				}
			}
			if key == "" {
				break // numeric indexes and splats are left for HCL to reject
			}
			if n.children == nil {
				n.children = map[string]*litNode{}
			}
			c, ok := n.children[key]
			if !ok {
				c = &litNode{text: text}
				n.children[key] = c
			}
			n = c
		}
	}
	ctx := &hcl.EvalContext{Variables: make(map[string]cty.Value, len(roots))}
	for name, n := range roots {
		ctx.Variables[name] = n.value()
	}
	return ctx
}

type litNode struct {
	text     string
	children map[string]*litNode
}

func (n *litNode) value() cty.Value {
	if len(n.children) == 0 {
		return cty.StringVal("${" + n.text + "}")
	}
	attrs := make(map[string]cty.Value, len(n.children))
	for k, c := range n.children {
		attrs[k] = c.value()
	}
	return cty.ObjectVal(attrs)
}

// DecodeAttr evaluates an attribute into dst (a pointer to a Go value gocty
// understands), reporting failures at the attribute's position. Literal
// "${...}" text is kept verbatim (see literalContext). The gateway's config
// uses it too, so both files read the same way.
func DecodeAttr(a *hcl.Attribute, dst any) hcl.Diagnostics {
	val, diags := a.Expr.Value(literalContext(a.Expr))
	if diags.HasErrors() {
		return diags
	}
	ty, err := gocty.ImpliedType(dst)
	if err != nil {
		panic(fmt.Sprintf("profiles: unsuitable decode target %T: %s", dst, err))
	}
	bad := func(err error) hcl.Diagnostics {
		return append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid value for " + a.Name,
			Detail:   fmt.Sprintf("%s: %s.", a.Name, err),
			Subject:  a.Expr.Range().Ptr(),
		})
	}
	if val.IsNull() {
		return bad(fmt.Errorf("must not be null"))
	}
	if val, err = convert.Convert(val, ty); err != nil {
		return bad(err)
	}
	if err := gocty.FromCtyValue(val, dst); err != nil {
		return bad(err)
	}
	return diags
}

// DecodeDuration reads a duration written as a string such as "30s" or "10m".
func DecodeDuration(a *hcl.Attribute, dst *time.Duration) hcl.Diagnostics {
	var s string
	if diags := DecodeAttr(a, &s); diags.HasErrors() {
		return diags
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid duration for " + a.Name,
			Detail:   fmt.Sprintf("%s: %q is not a duration such as \"30s\" or \"10m\".", a.Name, s),
			Subject:  a.Expr.Range().Ptr(),
		}}
	}
	*dst = d
	return nil
}
