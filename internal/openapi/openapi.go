// Package openapi reads Bay's contract (docs/openapi.json) for tests: the
// operations it documents, and validation of real responses against the
// schemas it declares (JSON Schema 2020-12, as OpenAPI 3.1 uses).
package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/bay-sandbox/bay/docs"
)

// docURL names the document as a JSON Schema resource, so that the
// "#/components/schemas/..." references inside it resolve.
const docURL = "urn:bay:openapi.json"

// Operation is one documented (method, path template).
type Operation struct {
	Method string // upper case
	Path   string // as documented, e.g. /v1/sandboxes/{id}
	ID     string // operationId
	re     *regexp.Regexp
	raw    map[string]any
}

// Doc is the parsed contract.
type Doc struct {
	Raw map[string]any
	Ops []Operation

	compiler *jsonschema.Compiler
	mu       sync.Mutex
	compiled map[string]*jsonschema.Schema
}

// Load parses the embedded document and checks its own consistency: every
// $ref resolves, path parameters are declared, operation ids are unique,
// and every schema it holds compiles.
func Load() (*Doc, error) {
	var raw map[string]any
	if err := json.Unmarshal([]byte(docs.OpenAPI()), &raw); err != nil {
		return nil, fmt.Errorf("parse openapi.json: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(docs.OpenAPI()))
	if err != nil {
		return nil, fmt.Errorf("parse openapi.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(docURL, inst); err != nil {
		return nil, fmt.Errorf("add openapi.json: %w", err)
	}
	d := &Doc{Raw: raw, compiler: c, compiled: map[string]*jsonschema.Schema{}}
	if v, _ := raw["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		return nil, fmt.Errorf("openapi version %q, want 3.1.x", v)
	}
	if err := d.checkRefs(raw, "#"); err != nil {
		return nil, err
	}
	paths, _ := raw["paths"].(map[string]any)
	ids := map[string]string{}
	for p, item := range paths {
		methods, _ := item.(map[string]any)
		for m, o := range methods {
			op, _ := o.(map[string]any)
			id, _ := op["operationId"].(string)
			if id == "" {
				return nil, fmt.Errorf("%s %s: no operationId", m, p)
			}
			if prev, dup := ids[id]; dup {
				return nil, fmt.Errorf("operationId %s used by %s and %s %s", id, prev, m, p)
			}
			ids[id] = m + " " + p
			if err := d.checkParams(p, op); err != nil {
				return nil, fmt.Errorf("%s %s: %w", m, p, err)
			}
			d.Ops = append(d.Ops, Operation{Method: strings.ToUpper(m), Path: p, ID: id, re: templateRe(p), raw: op})
		}
	}
	sort.Slice(d.Ops, func(i, j int) bool {
		if d.Ops[i].Path != d.Ops[j].Path {
			return d.Ops[i].Path < d.Ops[j].Path
		}
		return d.Ops[i].Method < d.Ops[j].Method
	})
	schemas, _ := raw["components"].(map[string]any)["schemas"].(map[string]any)
	for name := range schemas {
		if _, err := d.schema("#/components/schemas/" + name); err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
	}
	return d, nil
}

// checkRefs walks v and resolves every local $ref.
func (d *Doc) checkRefs(v any, at string) error {
	switch t := v.(type) {
	case map[string]any:
		if r, ok := t["$ref"].(string); ok {
			if _, err := d.resolve(r); err != nil {
				return fmt.Errorf("%s: %w", at, err)
			}
		}
		for k, c := range t {
			if err := d.checkRefs(c, at+"/"+k); err != nil {
				return err
			}
		}
	case []any:
		for i, c := range t {
			if err := d.checkRefs(c, at+"/"+strconv.Itoa(i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolve follows a local JSON pointer ("#/a/b").
func (d *Doc) resolve(ref string) (any, error) {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("$ref %q is not local", ref)
	}
	var cur any = d.Raw
	for _, tok := range strings.Split(p, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q does not resolve", ref)
		}
		if cur, ok = m[tok]; !ok {
			return nil, fmt.Errorf("$ref %q does not resolve", ref)
		}
	}
	return cur, nil
}

// deref follows $ref chains.
func (d *Doc) deref(v any) map[string]any {
	for range 8 {
		m, _ := v.(map[string]any)
		r, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		v, _ = d.resolve(r)
	}
	return nil
}

var paramRe = regexp.MustCompile(`\{([^}]+)\}`)

func (d *Doc) checkParams(path string, op map[string]any) error {
	declared := map[string]bool{}
	ps, _ := op["parameters"].([]any)
	for _, p := range ps {
		m := d.deref(p)
		if m["in"] == "path" {
			name, _ := m["name"].(string)
			declared[name] = true
			if m["required"] != true {
				return fmt.Errorf("path parameter %s must be required", name)
			}
		}
	}
	for _, mt := range paramRe.FindAllStringSubmatch(path, -1) {
		if !declared[mt[1]] {
			return fmt.Errorf("path parameter {%s} is not declared", mt[1])
		}
		delete(declared, mt[1])
	}
	for name := range declared {
		return fmt.Errorf("parameter %s is declared in path but not in the template", name)
	}
	if _, ok := op["responses"].(map[string]any); !ok {
		return fmt.Errorf("no responses")
	}
	return nil
}

func templateRe(path string) *regexp.Regexp {
	parts := paramRe.Split(path, -1)
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.MustCompile("^" + strings.Join(parts, "[^/]+") + "$")
}

// Find returns the operation serving method and a concrete path. A literal
// segment wins over a parameter (/history/last over /history/{exec}).
func (d *Doc) Find(method, path string) (Operation, bool) {
	var best Operation
	found := false
	for _, op := range d.Ops {
		if op.Method == strings.ToUpper(method) && op.re.MatchString(path) {
			if !found || strings.Count(op.Path, "{") < strings.Count(best.Path, "{") {
				best, found = op, true
			}
		}
	}
	return best, found
}

// schema compiles the schema at a pointer into the document.
func (d *Doc) schema(ptr string) (*jsonschema.Schema, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.compiled[ptr]; ok {
		return s, nil
	}
	s, err := d.compiler.Compile(docURL + ptr)
	if err != nil {
		return nil, err
	}
	d.compiled[ptr] = s
	return s, nil
}

// ValidateSchema validates a JSON value against a named component schema.
func (d *Doc) ValidateSchema(name string, body []byte) error {
	s, err := d.schema("#/components/schemas/" + name)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("response is not JSON: %w", err)
	}
	return s.Validate(inst)
}

// ValidateResponse checks a real response against the document: the
// operation exists, the status is documented (or covered by "default"), the
// content type is one it declares, and a JSON body validates against the
// declared schema.
func (d *Doc) ValidateResponse(method, rawPath string, status int, contentType string, body []byte) error {
	u, err := url.Parse(rawPath)
	if err != nil {
		return err
	}
	op, ok := d.Find(method, u.Path)
	if !ok {
		return fmt.Errorf("%s %s is not documented", method, u.Path)
	}
	responses, _ := op.raw["responses"].(map[string]any)
	key := strconv.Itoa(status)
	r, ok := responses[key]
	if !ok {
		if r, ok = responses["default"]; !ok {
			return fmt.Errorf("%s %s: status %d is not documented", method, op.Path, status)
		}
		key = "default"
	}
	resp := d.deref(r)
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(bytes.TrimSpace(body)) > 0 {
			return fmt.Errorf("%s %s %d: documented without a body, got %q", method, op.Path, status, body)
		}
		return nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("%s %s %d: content type %q: %w", method, op.Path, status, contentType, err)
	}
	if _, ok := content[mt]; !ok {
		return fmt.Errorf("%s %s %d: content type %s is not documented", method, op.Path, status, mt)
	}
	if mt != "application/json" {
		return nil
	}
	ptr := "#/paths/" + escape(op.Path) + "/" + strings.ToLower(method) + "/responses/" + key
	if rr, ok := r.(map[string]any)["$ref"].(string); ok {
		ptr = rr
	}
	s, err := d.schema(ptr + "/content/application~1json/schema")
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s %d: body is not JSON: %w", method, op.Path, status, err)
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("%s %s %d: %w\nbody: %s", method, op.Path, status, err, body)
	}
	return nil
}

func escape(p string) string {
	return strings.ReplaceAll(strings.ReplaceAll(p, "~", "~0"), "/", "~1")
}
