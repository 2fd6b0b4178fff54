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
	if d := Default().Limits; d.HeaderTimeout <= 0 || d.MaxBodyBytes != 64<<20 || d.MaxTTL != 0 {
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
