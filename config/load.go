package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/bay-sandbox/bay/profiles"
)

// origin is where a setting's value came from: a file range or an
// environment variable, and the value it had then (a later change by a flag
// makes the origin stale, and Validate then names no position).
type origin struct {
	rng   *hcl.Range
	env   string
	value any
}

// Load reads the configuration: defaults, then each path in order (see
// LoadFiles), then the process environment; and validates the result. The
// error lists every problem, each with its file position or variable.
func Load(paths ...string) (*Config, error) {
	return LoadFiles(paths, os.Getenv)
}

// LoadWithEnv is Load of one path (none when "") with the environment read
// through getenv.
func LoadWithEnv(path string, getenv func(string) string) (*Config, error) {
	return LoadFiles([]string{path}, getenv)
}

// LoadFiles reads defaults, then the configuration files in paths, in order,
// then the environment through getenv. A path that is a directory stands for
// its .hcl and .json files in lexical order (as Nomad's -config does); empty
// paths are skipped. Later files merge into earlier ones: an attribute set
// again replaces the earlier value (lists included), a block that may appear
// once per file (nomad, runtimes, ...) adds to what earlier files set,
// constraint blocks add up, and a profile redefined by id replaces the
// earlier definition whole.
//
// Precedence: BAY_* variables override the files; the standard HashiCorp
// variables (NOMAD_ADDR, NOMAD_TOKEN, CONSUL_HTTP_ADDR, ...) fill only what
// the files left unset, as the Nomad and Consul CLIs do. cmd applies flags
// to the returned Config and calls Validate again.
func LoadFiles(paths []string, getenv func(string) string) (*Config, error) {
	files, err := expandPaths(paths)
	if err != nil {
		return nil, err
	}
	c := Default()
	c.origins = map[string]origin{}
	var errs []error
	m := &merge{profiles: map[string]int{}}
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		for _, d := range c.decodeFile(path, src, m).Errs() {
			errs = append(errs, d)
		}
	}
	profileDiags := c.decodeProfiles(m)
	for _, d := range profileDiags.Errs() {
		errs = append(errs, d)
	}
	profileErrs := profileDiags.HasErrors()
	errs = append(errs, c.applyEnv(getenv)...)
	// Profiles that failed to decode were already reported with positions.
	errs = append(errs, c.check(!profileErrs)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// expandPaths replaces each directory by its configuration files, sorted,
// skipping hidden files and editor backups as Nomad does.
func expandPaths(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("read config directory: %w", err)
		}
		var found []string
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") ||
				(strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#")) {
				continue
			}
			if ext := strings.ToLower(filepath.Ext(name)); ext != ".hcl" && ext != ".json" {
				continue
			}
			found = append(found, filepath.Join(p, name))
		}
		if len(found) == 0 {
			// An empty directory is almost always a wrong path or a
			// template that did not render; say so rather than run on
			// defaults.
			return nil, fmt.Errorf("read config: directory %s has no .hcl or .json files", p)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

// merge carries what spans files: the profile blocks (decoded together once
// every file is read, a later id replacing an earlier one) and whether any
// file had a nomad block.
type merge struct {
	profileBlocks []*hcl.Block
	profiles      map[string]int // id -> index in profileBlocks
	nomadBlock    bool
}

func (m *merge) addProfile(b *hcl.Block) {
	id := ""
	if len(b.Labels) > 0 {
		id = b.Labels[0]
	}
	// Within one file a repeated id stays an error (Decode reports it);
	// a later file redefines the profile.
	if i, ok := m.profiles[id]; ok && id != "" && m.profileBlocks[i].DefRange.Filename != b.DefRange.Filename {
		m.profileBlocks[i] = b
		return
	}
	m.profiles[id] = len(m.profileBlocks)
	m.profileBlocks = append(m.profileBlocks, b)
}

// decodeProfiles decodes the merged profile blocks into c.Profiles.
func (c *Config) decodeProfiles(m *merge) hcl.Diagnostics {
	if len(m.profileBlocks) == 0 {
		return nil
	}
	ps, diags := profiles.Decode(m.profileBlocks)
	if diags.HasErrors() {
		return diags
	}
	set, err := profiles.NewSet(ps)
	if err != nil { // Decode checks the same rules; this is a safety net.
		return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid profiles", Detail: err.Error()})
	}
	c.Profiles = set
	return diags
}

var topSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "data_dir"}, {Name: "bind_addr"}, {Name: "port"}, {Name: "log_level"},
		{Name: "instance_id"}, {Name: "allocator"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "auth"}, {Type: "server"}, {Type: "gc"}, {Type: "idempotency"},
		{Type: "warm_pool"}, {Type: "runtimes"}, {Type: "local"}, {Type: "nomad"},
		{Type: "consul"}, {Type: "shutdown"}, {Type: "limits"}, {Type: "store"}, profiles.BlockSchema(),
	},
}

func attrSchema(names ...string) *hcl.BodySchema {
	s := &hcl.BodySchema{}
	for _, n := range names {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: n})
	}
	return s
}

func withBlocks(s *hcl.BodySchema, blocks ...string) *hcl.BodySchema {
	for _, b := range blocks {
		s.Blocks = append(s.Blocks, hcl.BlockHeaderSchema{Type: b})
	}
	return s
}

var tlsAttrs = []string{"ca_file", "cert_file", "key_file", "insecure", "server_name"}

// decoder reads attributes into typed fields, noting where each came from.
type decoder struct {
	diags   hcl.Diagnostics
	origins map[string]origin
}

// body decodes body against schema and groups its nested blocks by type,
// reporting repeats of blocks that may appear once (all but repeatable).
func (d *decoder) body(body hcl.Body, schema *hcl.BodySchema, repeatable ...string) (hcl.Attributes, map[string][]*hcl.Block) {
	content, diags := body.Content(schema)
	d.diags = append(d.diags, diags...)
	blocks := map[string][]*hcl.Block{}
	for _, b := range content.Blocks {
		blocks[b.Type] = append(blocks[b.Type], b)
	}
	for typ, bs := range blocks {
		if len(bs) < 2 || contains(repeatable, typ) {
			continue
		}
		for _, b := range bs[1:] {
			d.diags = append(d.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate " + typ + " block",
				Detail:   fmt.Sprintf("only one %s block is allowed; the first is at %s.", typ, bs[0].DefRange),
				Subject:  b.DefRange.Ptr(),
			})
		}
	}
	return content.Attributes, blocks
}

// get decodes attribute name into dst and records field's origin.
func (d *decoder) get(attrs hcl.Attributes, field, name string, dst any) {
	a, ok := attrs[name]
	if !ok {
		return
	}
	var diags hcl.Diagnostics
	if dp, isDur := dst.(*time.Duration); isDur {
		diags = profiles.DecodeDuration(a, dp)
	} else {
		diags = profiles.DecodeAttr(a, dst)
	}
	d.diags = append(d.diags, diags...)
	if !diags.HasErrors() {
		d.origins[field] = origin{rng: a.Expr.Range().Ptr(), value: reflect.ValueOf(dst).Elem().Interface()}
	}
}

// first returns the single block of a type, or an empty body.
func first(blocks map[string][]*hcl.Block, typ string) (hcl.Body, bool) {
	if bs := blocks[typ]; len(bs) > 0 {
		return bs[0].Body, true
	}
	return hcl.EmptyBody(), false
}

// decodeFile applies one configuration file over what earlier files set; its
// profile blocks go to m, decoded once every file is read.
func (c *Config) decodeFile(path string, src []byte, m *merge) hcl.Diagnostics {
	p := hclparse.NewParser()
	var f *hcl.File
	var diags hcl.Diagnostics
	if strings.EqualFold(filepath.Ext(path), ".json") {
		f, diags = p.ParseJSON(src, path)
	} else {
		f, diags = p.ParseHCL(src, path)
	}
	if diags.HasErrors() {
		return diags
	}
	d := &decoder{diags: diags, origins: c.origins}
	attrs, blocks := d.body(f.Body, topSchema, profiles.BlockType)
	d.get(attrs, "data_dir", "data_dir", &c.DataDir)
	d.get(attrs, "bind_addr", "bind_addr", &c.BindAddr)
	d.get(attrs, "port", "port", &c.Port)
	d.get(attrs, "log_level", "log_level", &c.LogLevel)
	d.get(attrs, "instance_id", "instance_id", &c.InstanceID)
	d.get(attrs, "allocator", "allocator", &c.Allocator)

	if b, ok := first(blocks, "auth"); ok {
		schema := attrSchema("api_keys", "allow_anonymous", "keys_file")
		schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: "key", LabelNames: []string{"name"}})
		a, kb := d.body(b, schema, "key")
		d.get(a, "auth.api_keys", "api_keys", &c.Auth.APIKeys)
		d.get(a, "auth.allow_anonymous", "allow_anonymous", &c.Auth.AllowAnonymous)
		d.get(a, "auth.keys_file", "keys_file", &c.Auth.KeysFile)
		c.Auth.Keys = append(c.Auth.Keys, decodeKeys(d, kb["key"], "auth.key")...)
	}
	if b, ok := first(blocks, "server"); ok {
		a, _ := d.body(b, attrSchema("request_timeout", "start_timeout", "max_sandboxes_per_owner", "max_sessions", "warmup_on_create"))
		d.get(a, "server.request_timeout", "request_timeout", &c.Server.RequestTimeout)
		d.get(a, "server.start_timeout", "start_timeout", &c.Server.StartTimeout)
		d.get(a, "server.max_sandboxes_per_owner", "max_sandboxes_per_owner", &c.Server.MaxSandboxesPerOwner)
		d.get(a, "server.max_sessions", "max_sessions", &c.Server.MaxSessions)
		d.get(a, "server.warmup_on_create", "warmup_on_create", &c.Server.WarmupOnCreate)
	}
	if b, ok := first(blocks, "gc"); ok {
		a, _ := d.body(b, attrSchema("enabled", "interval", "idle_session", "expired_sandbox", "orphan_cargo", "orphan_session"))
		d.get(a, "gc.enabled", "enabled", &c.GC.Enabled)
		d.get(a, "gc.interval", "interval", &c.GC.Interval)
		d.get(a, "gc.idle_session", "idle_session", &c.GC.IdleSession)
		d.get(a, "gc.expired_sandbox", "expired_sandbox", &c.GC.ExpiredSandbox)
		d.get(a, "gc.orphan_cargo", "orphan_cargo", &c.GC.OrphanCargo)
		d.get(a, "gc.orphan_session", "orphan_session", &c.GC.OrphanSession)
	}
	if b, ok := first(blocks, "idempotency"); ok {
		a, _ := d.body(b, attrSchema("ttl"))
		d.get(a, "idempotency.ttl", "ttl", &c.Idempotency.TTL)
	}
	if b, ok := first(blocks, "warm_pool"); ok {
		a, _ := d.body(b, attrSchema("enabled"))
		d.get(a, "warm_pool.enabled", "enabled", &c.WarmPool.Enabled)
	}
	if b, ok := first(blocks, "runtimes"); ok {
		a, _ := d.body(b, attrSchema("ship", "gull", "python", "agent_browser"))
		d.get(a, "runtimes.ship", "ship", &c.Runtimes.Ship)
		d.get(a, "runtimes.gull", "gull", &c.Runtimes.Gull)
		d.get(a, "runtimes.python", "python", &c.Runtimes.Python)
		d.get(a, "runtimes.agent_browser", "agent_browser", &c.Runtimes.AgentBrowser)
	}
	if b, ok := first(blocks, "local"); ok {
		a, _ := d.body(b, attrSchema("grace_period", "mount_workspace", "isolation", "sandbox_uid"))
		d.get(a, "local.grace_period", "grace_period", &c.Local.GracePeriod)
		d.get(a, "local.mount_workspace", "mount_workspace", &c.Local.MountWorkspace)
		d.get(a, "local.isolation", "isolation", &c.Local.Isolation)
		d.get(a, "local.sandbox_uid", "sandbox_uid", &c.Local.SandboxUID)
	}
	c.decodeLimits(d, blocks)
	if b, ok := first(blocks, "nomad"); ok {
		m.nomadBlock = true
		c.decodeNomad(d, b)
	}
	if b, ok := first(blocks, "consul"); ok {
		a, bs := d.body(b, withBlocks(attrSchema("address", "token", "datacenter"), "tls"))
		d.get(a, "consul.address", "address", &c.Consul.Address)
		d.get(a, "consul.token", "token", &c.Consul.Token)
		d.get(a, "consul.datacenter", "datacenter", &c.Consul.Datacenter)
		if tb, ok := first(bs, "tls"); ok {
			d.tls(tb, "consul.tls.", &c.Consul.TLS)
		}
	}
	if b, ok := first(blocks, "shutdown"); ok {
		a, _ := d.body(b, attrSchema("drain_sessions", "delete_cargos", "purge_job", "timeout"))
		d.get(a, "shutdown.drain_sessions", "drain_sessions", &c.Shutdown.DrainSessions)
		d.get(a, "shutdown.delete_cargos", "delete_cargos", &c.Shutdown.DeleteCargos)
		d.get(a, "shutdown.purge_job", "purge_job", &c.Shutdown.PurgeJob)
		d.get(a, "shutdown.timeout", "timeout", &c.Shutdown.Timeout)
	}
	if b, ok := first(blocks, "store"); ok {
		a, _ := d.body(b, attrSchema("driver", "dsn", "max_conns", "lease_ttl"))
		d.get(a, "store.driver", "driver", &c.Store.Driver)
		d.get(a, "store.dsn", "dsn", &c.Store.DSN)
		d.get(a, "store.max_conns", "max_conns", &c.Store.MaxConns)
		d.get(a, "store.lease_ttl", "lease_ttl", &c.Store.LeaseTTL)
	}
	if _, explicit := c.origins["allocator"]; !explicit && m.nomadBlock {
		c.Allocator = AllocatorNomad
	}
	for _, b := range blocks[profiles.BlockType] {
		m.addProfile(b)
	}
	return d.diags
}

func (c *Config) decodeNomad(d *decoder, body hcl.Body) {
	n := &c.Nomad
	a, bs := d.body(body, withBlocks(attrSchema(
		"address", "region", "namespace", "token", "datacenters", "node_pool",
		"default_driver", "discovery", "start_timeout", "kill_timeout", "token_check", "cargo_pool_size"),
		"tls", "constraint", "volume"), "constraint")
	d.get(a, "nomad.address", "address", &n.Address)
	d.get(a, "nomad.region", "region", &n.Region)
	d.get(a, "nomad.namespace", "namespace", &n.Namespace)
	d.get(a, "nomad.token", "token", &n.Token)
	d.get(a, "nomad.datacenters", "datacenters", &n.Datacenters)
	d.get(a, "nomad.node_pool", "node_pool", &n.NodePool)
	d.get(a, "nomad.default_driver", "default_driver", &n.DefaultDriver)
	d.get(a, "nomad.discovery", "discovery", &n.Discovery)
	d.get(a, "nomad.start_timeout", "start_timeout", &n.StartTimeout)
	d.get(a, "nomad.kill_timeout", "kill_timeout", &n.KillTimeout)
	d.get(a, "nomad.token_check", "token_check", &n.TokenCheck)
	d.get(a, "nomad.cargo_pool_size", "cargo_pool_size", &n.CargoPoolSize)
	if tb, ok := first(bs, "tls"); ok {
		d.tls(tb, "nomad.tls.", &n.TLS)
	}
	for i, cb := range bs["constraint"] {
		ca, _ := d.body(cb.Body, attrSchema("attribute", "operator", "value"))
		ct := Constraint{Operator: "="}
		prefix := fmt.Sprintf("nomad.constraint[%d].", i)
		d.get(ca, prefix+"attribute", "attribute", &ct.Attribute)
		d.get(ca, prefix+"operator", "operator", &ct.Operator)
		d.get(ca, prefix+"value", "value", &ct.Value)
		// Point errors about unset fields at the block itself.
		for field, v := range map[string]string{"attribute": ct.Attribute, "operator": ct.Operator, "value": ct.Value} {
			if _, ok := c.origins[prefix+field]; !ok {
				c.origins[prefix+field] = origin{rng: cb.DefRange.Ptr(), value: v}
			}
		}
		n.Constraints = append(n.Constraints, ct)
	}
	if vb, ok := first(bs, "volume"); ok {
		va, _ := d.body(vb, attrSchema("plugin", "node_pool"))
		d.get(va, "nomad.volume.plugin", "plugin", &n.Volume.Plugin)
		d.get(va, "nomad.volume.node_pool", "node_pool", &n.Volume.NodePool)
	}
}

func (d *decoder) tls(body hcl.Body, prefix string, t *TLS) {
	a, _ := d.body(body, attrSchema(tlsAttrs...))
	d.get(a, prefix+"ca_file", "ca_file", &t.CAFile)
	d.get(a, prefix+"cert_file", "cert_file", &t.CertFile)
	d.get(a, prefix+"key_file", "key_file", &t.KeyFile)
	d.get(a, prefix+"insecure", "insecure", &t.Insecure)
	d.get(a, prefix+"server_name", "server_name", &t.ServerName)
}

// applyEnv applies the environment: standard HashiCorp variables where the
// file left a setting unset, then BAY_* variables over everything.
func (c *Config) applyEnv(getenv func(string) string) []error {
	if c.origins == nil {
		c.origins = map[string]origin{}
	}
	var errs []error
	fromFile := func(field string) bool {
		o, ok := c.origins[field]
		return ok && o.rng != nil
	}
	setStr := func(env, field string, dst *string, override bool) {
		v := getenv(env)
		if v == "" || (!override && fromFile(field)) {
			return
		}
		*dst = v
		c.origins[field] = origin{env: env, value: v}
	}
	setBool := func(env, field string, dst *bool, invert, override bool) {
		v := getenv(env)
		if v == "" || (!override && fromFile(field)) {
			return
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a boolean (true/false)", env, v))
			return
		}
		*dst = b != invert
		c.origins[field] = origin{env: env, value: *dst}
	}

	// Standard variables: fill what the file left unset.
	setStr("NOMAD_ADDR", "nomad.address", &c.Nomad.Address, false)
	setStr("NOMAD_TOKEN", "nomad.token", &c.Nomad.Token, false)
	setStr("NOMAD_REGION", "nomad.region", &c.Nomad.Region, false)
	setStr("NOMAD_NAMESPACE", "nomad.namespace", &c.Nomad.Namespace, false)
	setStr("NOMAD_CACERT", "nomad.tls.ca_file", &c.Nomad.TLS.CAFile, false)
	setStr("NOMAD_CLIENT_CERT", "nomad.tls.cert_file", &c.Nomad.TLS.CertFile, false)
	setStr("NOMAD_CLIENT_KEY", "nomad.tls.key_file", &c.Nomad.TLS.KeyFile, false)
	setStr("NOMAD_TLS_SERVER_NAME", "nomad.tls.server_name", &c.Nomad.TLS.ServerName, false)
	setBool("NOMAD_SKIP_VERIFY", "nomad.tls.insecure", &c.Nomad.TLS.Insecure, false, false)
	setStr("CONSUL_HTTP_ADDR", "consul.address", &c.Consul.Address, false)
	setStr("CONSUL_HTTP_TOKEN", "consul.token", &c.Consul.Token, false)
	setStr("CONSUL_CACERT", "consul.tls.ca_file", &c.Consul.TLS.CAFile, false)
	setStr("CONSUL_CLIENT_CERT", "consul.tls.cert_file", &c.Consul.TLS.CertFile, false)
	setStr("CONSUL_CLIENT_KEY", "consul.tls.key_file", &c.Consul.TLS.KeyFile, false)
	setStr("CONSUL_TLS_SERVER_NAME", "consul.tls.server_name", &c.Consul.TLS.ServerName, false)
	// CONSUL_HTTP_SSL_VERIFY=false means insecure.
	setBool("CONSUL_HTTP_SSL_VERIFY", "consul.tls.insecure", &c.Consul.TLS.Insecure, true, false)

	// Bay's own variables override the file.
	setStr("BAY_DATA_DIR", "data_dir", &c.DataDir, true)
	setStr("BAY_BIND_ADDR", "bind_addr", &c.BindAddr, true)
	if v := getenv("BAY_PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("BAY_PORT: %q is not a port number", v))
		} else {
			c.Port = p
			c.origins["port"] = origin{env: "BAY_PORT", value: p}
		}
	}
	setStr("BAY_LOG_LEVEL", "log_level", &c.LogLevel, true)
	if v := getenv("BAY_API_KEY"); v != "" && !contains(c.Auth.APIKeys, v) {
		c.Auth.APIKeys = append(append([]string(nil), c.Auth.APIKeys...), v)
		c.origins["auth.api_keys"] = origin{env: "BAY_API_KEY", value: c.Auth.APIKeys}
	}
	setStr("BAY_KEYS_FILE", "auth.keys_file", &c.Auth.KeysFile, true)
	setBool("BAY_ALLOW_ANONYMOUS", "auth.allow_anonymous", &c.Auth.AllowAnonymous, false, true)
	setStr("BAY_ALLOCATOR", "allocator", &c.Allocator, true)
	setStr("BAY_LOCAL_ISOLATION", "local.isolation", &c.Local.Isolation, true)
	setStr("BAY_INSTANCE_ID", "instance_id", &c.InstanceID, true)
	setBool("BAY_GC_ENABLED", "gc.enabled", &c.GC.Enabled, false, true)
	if v := getenv("BAY_GC_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("BAY_GC_INTERVAL: %q is not a duration such as \"30s\" or \"10m\"", v))
		} else {
			c.GC.Interval = d
			c.origins["gc.interval"] = origin{env: "BAY_GC_INTERVAL", value: d}
		}
	}
	setBool("BAY_DRAIN_ON_SHUTDOWN", "shutdown.drain_sessions", &c.Shutdown.DrainSessions, false, true)
	setStr("BAY_STORE_DRIVER", "store.driver", &c.Store.Driver, true)
	setStr("BAY_STORE_DSN", "store.dsn", &c.Store.DSN, true)
	setStr("BAY_SHIP_BIN", "runtimes.ship", &c.Runtimes.Ship, true)
	setStr("BAY_GULL_BIN", "runtimes.gull", &c.Runtimes.Gull, true)
	setStr("BAY_PYTHON", "runtimes.python", &c.Runtimes.Python, true)
	setStr("BAY_AGENT_BROWSER", "runtimes.agent_browser", &c.Runtimes.AgentBrowser, true)
	return errs
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
