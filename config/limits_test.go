package config

import (
	"strings"
	"testing"
	"time"
)

func TestLimitsBlock(t *testing.T) {
	c := load(t, "bay.hcl", `
limits {
  max_ttl                = "24h"
  header_timeout         = "5s"
  body_timeout           = "30s"
  idle_timeout           = "10s"
  write_timeout          = "1m"
  max_connections        = 100
  max_connections_per_ip = 10
  max_body_bytes         = 1048576
}`)
	want := Limits{MaxTTL: 24 * time.Hour, HeaderTimeout: 5 * time.Second, BodyTimeout: 30 * time.Second,
		IdleTimeout: 10 * time.Second, WriteTimeout: time.Minute, MaxConnections: 100, MaxConnectionsPerIP: 10, MaxBodyBytes: 1 << 20}
	if c.Limits != want {
		t.Fatalf("limits %+v, want %+v", c.Limits, want)
	}
	if d := Default().Limits; d.HeaderTimeout <= 0 || d.MaxBodyBytes != 32<<20 || d.MaxTTL != 0 {
		t.Fatalf("default limits %+v", d)
	}
}

func TestLimitsValidation(t *testing.T) {
	lines := loadErr(t, "bay.hcl", `
limits {
  max_ttl                = "100000h"
  header_timeout         = "0s"
  max_connections        = -1
  max_connections_per_ip = -2
  max_body_bytes         = 10
}`)
	text := strings.Join(lines, "\n")
	for _, want := range []string{"bay.hcl:3,28-37: Invalid limits.max_ttl", "bay.hcl:4,28-32: Invalid limits.header_timeout",
		"limits.max_connections:", "limits.max_connections_per_ip:", "limits.max_body_bytes: must be between 1024"} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
}

func TestKeyBlocksAndKeysFile(t *testing.T) {
	kf := writeFile(t, "keys.hcl", `
key "bob" {
  owner  = "bob"
  sha256 = "`+strings.Repeat("AB", 32)+`"
}`)
	c := load(t, "bay.hcl", `
auth {
  api_keys  = ["legacy-key-0123456789"]
  keys_file = "`+kf+`"
  key "alice" {
    owner  = "alice"
    secret = "alice-secret-0123456789"
  }
  key "ops" {
    owner  = "ops"
    sha256 = "`+strings.Repeat("0f", 32)+`"
    admin  = true
  }
}`)
	if len(c.Auth.Keys) != 2 || c.Auth.Keys[0].Owner != "alice" || len(c.Auth.Keys[0].SHA256) != 64 || !c.Auth.Keys[1].Admin || c.Auth.KeysFile != kf {
		t.Fatalf("keys %+v", c.Auth)
	}
	fk, err := LoadKeysFile(kf)
	if err != nil || len(fk) != 1 || fk[0].SHA256 != strings.Repeat("ab", 32) || fk[0].Admin {
		t.Fatalf("keys file: %+v %v", fk, err)
	}
	lines := strings.Join(loadErr(t, "bay.hcl", `
auth {
  key "x" { owner = "x" }
  key "y" {
    owner  = "__pool"
    secret = "long-enough-secret-1"
  }
  key "z" {
    owner  = "z"
    sha256 = "nothex"
  }
}`), "\n")
	for _, want := range []string{"sha256 (hex SHA-256 of the key) is required", `owner "__pool"`, "sha256 must be 64 hex digits"} {
		if !strings.Contains(lines, want) {
			t.Errorf("missing %q in:\n%s", want, lines)
		}
	}
}
