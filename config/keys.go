package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// APIKey is a named key bound to one owner (an `auth { key "name" {...} }`
// block, or one in the keys file). Only the SHA-256 of the key is kept.
type APIKey struct {
	Name string
	// Owner owns everything created with the key; X-Owner is refused
	// (403) unless the key is Admin.
	Owner string
	// SHA256 is the hex SHA-256 of the key (lowercase). A block may give
	// the key itself as `secret` instead; it is hashed at load.
	SHA256 string
	// Admin keys may act as any owner (X-Owner) and call /v1/admin routes.
	Admin bool
}

// LegacyOwner owns the keys of the `api_keys` list, BAY_API_KEY and the
// generated key; those keys are admin keys (single-tenant installs).
const LegacyOwner = "default"

var (
	keyNamePattern  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	keyOwnerPattern = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,128}$`)
	sha256Pattern   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

var keyBlockSchema = attrSchema("owner", "sha256", "secret", "admin")

// decodeKeys decodes `key "name" { owner, sha256 | secret, admin }` blocks;
// prefix names the setting in errors ("auth.key" or the keys file's).
func decodeKeys(d *decoder, blocks []*hcl.Block, prefix string) []APIKey {
	var out []APIKey
	for _, b := range blocks {
		name := b.Labels[0]
		a, _ := d.body(b.Body, keyBlockSchema)
		k := APIKey{Name: name}
		var secret string
		field := fmt.Sprintf("%s[%q].", prefix, name)
		d.get(a, field+"owner", "owner", &k.Owner)
		d.get(a, field+"sha256", "sha256", &k.SHA256)
		d.get(a, field+"secret", "secret", &secret)
		d.get(a, field+"admin", "admin", &k.Admin)
		k.SHA256 = strings.ToLower(strings.TrimSpace(k.SHA256))
		bad := func(msg string) {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid key " + name, Detail: msg, Subject: b.DefRange.Ptr()})
		}
		switch {
		case !keyNamePattern.MatchString(name):
			bad(fmt.Sprintf("key name %q must match %s", name, keyNamePattern))
		case !keyOwnerPattern.MatchString(k.Owner) || strings.HasPrefix(k.Owner, "__"):
			bad(fmt.Sprintf("owner %q must match %s and not start with \"__\"", k.Owner, keyOwnerPattern))
		case secret != "" && k.SHA256 != "":
			bad("give sha256 or secret, not both")
		case secret == "" && k.SHA256 == "":
			bad("sha256 (hex SHA-256 of the key) is required")
		case secret != "" && (strings.TrimSpace(secret) != secret || len(secret) < 16):
			bad("secret must be at least 16 characters without surrounding spaces")
		case k.SHA256 != "" && !sha256Pattern.MatchString(k.SHA256):
			bad("sha256 must be 64 hex digits (the SHA-256 of the key)")
		}
		if secret != "" {
			sum := sha256.Sum256([]byte(secret))
			k.SHA256 = hex.EncodeToString(sum[:])
		}
		for _, prev := range out {
			if prev.Name == name {
				bad(fmt.Sprintf("key %q is defined twice", name))
			}
			if prev.SHA256 == k.SHA256 && k.SHA256 != "" {
				bad(fmt.Sprintf("keys %q and %q are the same key", prev.Name, name))
			}
		}
		out = append(out, k)
	}
	return out
}

// LoadKeysFile reads a keys file: `key "name" { ... }` blocks only (HCL,
// or JSON by extension). It is read at start and again on SIGHUP or when
// the file changes, so keys can be added and revoked without a restart.
func LoadKeysFile(path string) ([]APIKey, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read keys file: %w", err)
	}
	p := hclparse.NewParser()
	var f *hcl.File
	var diags hcl.Diagnostics
	if strings.EqualFold(filepath.Ext(path), ".json") {
		f, diags = p.ParseJSON(src, path)
	} else {
		f, diags = p.ParseHCL(src, path)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	d := &decoder{origins: map[string]origin{}}
	_, blocks := d.body(f.Body, &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "key", LabelNames: []string{"name"}}}}, "key")
	keys := decodeKeys(d, blocks["key"], "key")
	if d.diags.HasErrors() {
		return nil, d.diags
	}
	return keys, nil
}

// checkKeys reports keys given twice across the list, the blocks and the
// keys file's first load (done by cmd).
func (c *Config) checkKeys(fail failFunc) {
	seen := map[string]string{}
	for _, k := range c.Auth.Keys {
		if prev, ok := seen[k.SHA256]; ok {
			fail("auth.key", k.Name, "keys %q and %q are the same key", prev, k.Name)
		}
		seen[k.SHA256] = k.Name
	}
	for i, k := range c.Auth.APIKeys {
		sum := sha256.Sum256([]byte(k))
		if prev, ok := seen[hex.EncodeToString(sum[:])]; ok {
			fail("auth.api_keys", c.Auth.APIKeys, "key %d of api_keys is also key %q", i+1, prev)
		}
	}
	if c.Auth.KeysFile != "" {
		if _, err := os.Stat(c.Auth.KeysFile); err != nil {
			fail("auth.keys_file", c.Auth.KeysFile, "%v", errors.Unwrap(err))
		}
	}
}
