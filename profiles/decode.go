package profiles

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// BlockType is the HCL block type of a profile: profile "id" { ... }.
const BlockType = "profile"

// BlockSchema is the header of a profile block, for callers (the config
// loader) that embed profile blocks in a larger file.
func BlockSchema() hcl.BlockHeaderSchema {
	return hcl.BlockHeaderSchema{Type: BlockType, LabelNames: []string{"id"}}
}

// legacyAttrs are the single-container fields of the original project's
// profile shape. They become one container named LegacyContainerName.
var legacyAttrs = []string{"image", "runtime_type", "runtime_port", "capabilities", "driver", "command", "args"}

// LegacyContainerName is the container a legacy single-container profile
// is normalised into (DESIGN rule 10).
const LegacyContainerName = "primary"

func profileSchema() *hcl.BodySchema {
	s := &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "description"}, {Name: "idle_timeout"}, {Name: "env"},
			{Name: "warm_pool_size"}, {Name: "warm_rotate_ttl"}, {Name: "network"},
		},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "restart"},
			{Type: "container", LabelNames: []string{"name"}},
			{Type: "resources"}, // legacy form only
		},
	}
	for _, a := range legacyAttrs {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: a})
	}
	return s
}

var containerSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "runtime_type", Required: true}, {Name: "runtime_port"}, {Name: "capabilities"},
		{Name: "primary_for"}, {Name: "env"}, {Name: "driver"}, {Name: "image"},
		{Name: "command"}, {Name: "args"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "resources"}},
}

var restartSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "attempts"}, {Name: "delay"}},
}

var resourcesSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "cpu"}, {Name: "memory"}},
}

// spans remembers where each field of a decoded profile (or container) was
// written, so validation problems can point at the file position.
type spans struct {
	def        hcl.Range
	at         map[string]hcl.Range // "id", "name", attribute names, "restart.delay", ...
	containers []*spans
}

func (s *spans) lookup(field string) hcl.Range {
	if r, ok := s.at[field]; ok {
		return r
	}
	if i := strings.IndexByte(field, '.'); i > 0 {
		if r, ok := s.at[field[:i]]; ok {
			return r
		}
	}
	return s.def
}

// Parse decodes a file holding only profile blocks; a ".json" filename
// selects HCL's JSON syntax. Profiles are defaulted, normalised and
// validated; every problem is reported with its position.
func Parse(filename string, src []byte) ([]Profile, hcl.Diagnostics) {
	p := hclparse.NewParser()
	var f *hcl.File
	var diags hcl.Diagnostics
	if strings.EqualFold(filepath.Ext(filename), ".json") {
		f, diags = p.ParseJSON(src, filename)
	} else {
		f, diags = p.ParseHCL(src, filename)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	content, cd := f.Body.Content(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{BlockSchema()}})
	diags = append(diags, cd...)
	ps, dd := Decode(content.Blocks)
	return ps, append(diags, dd...)
}

// Decode turns profile blocks into profiles: defaults applied, the legacy
// single-container form normalised, every rule checked. Each problem is a
// diagnostic at the position of the offending field. Blocks of other types
// are ignored. The profiles are returned even when diagnostics have errors
// (with the broken ones included) so a caller can report everything at once.
func Decode(blocks hcl.Blocks) ([]Profile, hcl.Diagnostics) {
	var (
		out   []Profile
		diags hcl.Diagnostics
		seen  = map[string]hcl.Range{}
	)
	for _, b := range blocks {
		if b.Type != BlockType {
			continue
		}
		p, sp, dd := decodeProfile(b)
		diags = append(diags, dd...)
		for _, pr := range p.problems() {
			d := pr.diagnostic(&p, sp)
			if !coveredBy(d, dd) {
				diags = append(diags, d)
			}
		}
		if first, dup := seen[p.ID]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate profile",
				Detail:   fmt.Sprintf("profile %q is already defined at %s.", p.ID, first),
				Subject:  sp.lookup("id").Ptr(),
			})
		} else {
			seen[p.ID] = sp.lookup("id")
		}
		out = append(out, p)
	}
	return out, diags
}

func decodeProfile(b *hcl.Block) (Profile, *spans, hcl.Diagnostics) {
	p := Profile{
		ID:            b.Labels[0],
		IdleTimeout:   DefaultIdleTimeout,
		WarmRotateTTL: DefaultWarmRotateTTL,
		Restart:       RestartPolicy{Attempts: DefaultRestartAttempts, Delay: DefaultRestartDelay},
	}
	sp := &spans{def: b.DefRange, at: map[string]hcl.Range{"id": b.LabelRanges[0]}}
	content, diags := b.Body.Content(profileSchema())
	attrs := content.Attributes
	for name, a := range attrs {
		sp.at[name] = a.Expr.Range()
	}

	get := func(name string, dst any) {
		if a, ok := attrs[name]; ok {
			diags = append(diags, DecodeAttr(a, dst)...)
		}
	}
	get("description", &p.Description)
	get("env", &p.Env)
	get("warm_pool_size", &p.WarmPoolSize)
	get("network", &p.Network)
	if a, ok := attrs["idle_timeout"]; ok {
		diags = append(diags, DecodeDuration(a, &p.IdleTimeout)...)
	}
	if a, ok := attrs["warm_rotate_ttl"]; ok {
		diags = append(diags, DecodeDuration(a, &p.WarmRotateTTL)...)
	}

	blocks := map[string][]*hcl.Block{}
	for _, nb := range content.Blocks {
		blocks[nb.Type] = append(blocks[nb.Type], nb)
	}
	diags = append(diags, atMostOne(blocks["restart"])...)
	diags = append(diags, atMostOne(blocks["resources"])...)
	if rb := blocks["restart"]; len(rb) > 0 {
		rc, dd := rb[0].Body.Content(restartSchema)
		diags = append(diags, dd...)
		if a, ok := rc.Attributes["attempts"]; ok {
			sp.at["restart.attempts"] = a.Expr.Range()
			diags = append(diags, DecodeAttr(a, &p.Restart.Attempts)...)
		}
		if a, ok := rc.Attributes["delay"]; ok {
			sp.at["restart.delay"] = a.Expr.Range()
			diags = append(diags, DecodeDuration(a, &p.Restart.Delay)...)
		}
	}

	// The legacy form: container fields at the top level of the profile.
	var legacy []*hcl.Attribute
	for _, name := range legacyAttrs {
		if a, ok := attrs[name]; ok {
			legacy = append(legacy, a)
		}
	}
	legacyResources := blocks["resources"]
	containerBlocks := blocks["container"]
	isLegacy := len(legacy) > 0 || len(legacyResources) > 0

	if isLegacy && len(containerBlocks) > 0 {
		rng := containerBlocks[0].DefRange
		if len(legacy) > 0 {
			rng = legacy[0].NameRange
		} else if len(legacyResources) > 0 {
			rng = legacyResources[0].DefRange
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Mixed profile forms",
			Detail: fmt.Sprintf("profile %q: the legacy single-container fields (%s, resources) cannot be mixed with container blocks; move them into a container block.",
				p.ID, strings.Join(legacyAttrs, ", ")),
			Subject: &rng,
		})
		// Go on with the container blocks so their problems are reported too.
		isLegacy = false
	}
	if isLegacy {
		c := Container{Name: LegacyContainerName, RuntimeType: RuntimeShip}
		csp := &spans{def: b.DefRange, at: sp.at}
		only := hcl.Attributes{}
		for _, a := range legacy {
			only[a.Name] = a
		}
		diags = append(diags, decodeContainerFields(&c, only, legacyResources, csp)...)
		// A legacy profile's one container is primary for all it offers.
		c.PrimaryFor = append([]string(nil), c.Capabilities...)
		p.Containers = []Container{c}
		sp.containers = []*spans{csp}
	} else {
		for _, cb := range containerBlocks {
			c := Container{Name: cb.Labels[0]}
			csp := &spans{def: cb.DefRange, at: map[string]hcl.Range{"name": cb.LabelRanges[0]}}
			cc, dd := cb.Body.Content(containerSchema)
			diags = append(diags, dd...)
			for name, a := range cc.Attributes {
				csp.at[name] = a.Expr.Range()
			}
			diags = append(diags, atMostOne(cc.Blocks)...)
			diags = append(diags, decodeContainerFields(&c, cc.Attributes, cc.Blocks, csp)...)
			p.Containers = append(p.Containers, c)
			sp.containers = append(sp.containers, csp)
		}
	}
	return p, sp, diags
}

// decodeContainerFields reads the container attributes (from a container
// block, or from a legacy profile's top level) and fills the defaults that
// depend on the runtime type.
func decodeContainerFields(c *Container, attrs hcl.Attributes, resources []*hcl.Block, sp *spans) hcl.Diagnostics {
	var diags hcl.Diagnostics
	get := func(name string, dst any) bool {
		a, ok := attrs[name]
		if ok {
			diags = append(diags, DecodeAttr(a, dst)...)
		}
		return ok
	}
	get("runtime_type", &c.RuntimeType)
	d := containerDefaults(c.RuntimeType)
	if !get("runtime_port", &c.RuntimePort) {
		c.RuntimePort = d.RuntimePort
	}
	if !get("capabilities", &c.Capabilities) {
		c.Capabilities = d.Capabilities
	}
	get("primary_for", &c.PrimaryFor)
	get("env", &c.Env)
	get("driver", &c.Driver)
	get("image", &c.Image)
	get("command", &c.Command)
	get("args", &c.Args)
	c.Resources = d.Resources
	if len(resources) > 0 {
		rc, dd := resources[0].Body.Content(resourcesSchema)
		diags = append(diags, dd...)
		if a, ok := rc.Attributes["cpu"]; ok {
			sp.at["resources.cpu"] = a.Expr.Range()
			diags = append(diags, DecodeAttr(a, &c.Resources.CPU)...)
		}
		if a, ok := rc.Attributes["memory"]; ok {
			sp.at["resources.memory"] = a.Expr.Range()
			diags = append(diags, DecodeAttr(a, &c.Resources.MemoryMB)...)
		}
	}
	return diags
}

// coveredBy reports whether a validation problem repeats a decoding error:
// a field that failed to decode holds a default, and checking it would only
// add noise. A container whose required runtime_type is missing is covered
// by the "Missing required argument" error.
func coveredBy(d *hcl.Diagnostic, decodeDiags hcl.Diagnostics) bool {
	for _, e := range decodeDiags {
		if e.Severity != hcl.DiagError || e.Subject == nil {
			continue
		}
		if e.Subject.Filename == d.Subject.Filename && e.Subject.Start.Byte >= d.Subject.Start.Byte && e.Subject.End.Byte <= d.Subject.End.Byte {
			return true
		}
		if strings.Contains(d.Detail, `unknown runtime type ""`) && strings.Contains(e.Detail, `"runtime_type" is required`) {
			return true
		}
	}
	return false
}

func atMostOne(blocks []*hcl.Block) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, b := range blocks[min(1, len(blocks)):] {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Duplicate " + b.Type + " block",
			Detail:   fmt.Sprintf("only one %s block is allowed here; the first is at %s.", b.Type, blocks[0].DefRange),
			Subject:  b.DefRange.Ptr(),
		})
	}
	return diags
}
