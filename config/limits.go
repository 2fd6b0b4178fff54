package config

import (
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Limits bound what one client can hold or ask for (the `limits` block).
type Limits struct {
	// MaxTTL caps a sandbox's ttl and every extend_by: its expiry is never
	// more than MaxTTL from now. 0: no operator cap (a ten-year ceiling
	// still applies). With a cap, a sandbox created without ttl gets MaxTTL.
	MaxTTL time.Duration
	// HeaderTimeout bounds reading a request's headers.
	HeaderTimeout time.Duration
	// BodyTimeout is the longest a request body may stall between reads
	// (a large upload may take as long as it needs while it progresses).
	BodyTimeout time.Duration
	// IdleTimeout closes keep-alive connections with no next request.
	IdleTimeout time.Duration
	// WriteTimeout bounds writing one response (0: none).
	WriteTimeout time.Duration
	// MaxConnections and MaxConnectionsPerIP cap open client connections
	// (0: no cap; MaxConnections is also kept below the descriptor limit).
	// At a cap, the connection quiet the longest gives way to the new one.
	MaxConnections      int
	MaxConnectionsPerIP int
	// MaxBodyBytes caps a JSON request body (uploads stream, unbounded by it).
	MaxBodyBytes int
}

func defaultLimits() Limits {
	return Limits{
		HeaderTimeout:       20 * time.Second,
		BodyTimeout:         60 * time.Second,
		IdleTimeout:         75 * time.Second,
		MaxConnections:      16384,
		MaxConnectionsPerIP: 4096,
		MaxBodyBytes:        32 << 20,
	}
}

var limitsSchema = attrSchema("max_ttl", "header_timeout", "body_timeout", "idle_timeout", "write_timeout",
	"max_connections", "max_connections_per_ip", "max_body_bytes")

func (c *Config) decodeLimits(d *decoder, blocks map[string][]*hcl.Block) {
	b, ok := first(blocks, "limits")
	if !ok {
		return
	}
	a, _ := d.body(b, limitsSchema)
	l := &c.Limits
	d.get(a, "limits.max_ttl", "max_ttl", &l.MaxTTL)
	d.get(a, "limits.header_timeout", "header_timeout", &l.HeaderTimeout)
	d.get(a, "limits.body_timeout", "body_timeout", &l.BodyTimeout)
	d.get(a, "limits.idle_timeout", "idle_timeout", &l.IdleTimeout)
	d.get(a, "limits.write_timeout", "write_timeout", &l.WriteTimeout)
	d.get(a, "limits.max_connections", "max_connections", &l.MaxConnections)
	d.get(a, "limits.max_connections_per_ip", "max_connections_per_ip", &l.MaxConnectionsPerIP)
	d.get(a, "limits.max_body_bytes", "max_body_bytes", &l.MaxBodyBytes)
}

// maxTTLCeiling mirrors the gateway's: ten years.
const maxTTLCeiling = 10 * 365 * 24 * time.Hour

func (c *Config) checkLimits(fail failFunc) {
	l := &c.Limits
	if l.MaxTTL < 0 || l.MaxTTL > maxTTLCeiling {
		fail("limits.max_ttl", l.MaxTTL, "must be between 0 (no cap) and %s, got %s", maxTTLCeiling, l.MaxTTL)
	} else if l.MaxTTL > 0 && l.MaxTTL < time.Second {
		fail("limits.max_ttl", l.MaxTTL, "must be at least 1s, got %s", l.MaxTTL)
	}
	for field, d := range map[string]time.Duration{
		"limits.header_timeout": l.HeaderTimeout, "limits.body_timeout": l.BodyTimeout, "limits.idle_timeout": l.IdleTimeout,
	} {
		if d <= 0 {
			fail(field, d, "must be greater than 0, got %s", d)
		}
	}
	if l.WriteTimeout < 0 {
		fail("limits.write_timeout", l.WriteTimeout, "must be 0 (none) or more, got %s", l.WriteTimeout)
	}
	if l.MaxConnections < 0 {
		fail("limits.max_connections", l.MaxConnections, "must be 0 (no cap) or more, got %d", l.MaxConnections)
	}
	if l.MaxConnectionsPerIP < 0 {
		fail("limits.max_connections_per_ip", l.MaxConnectionsPerIP, "must be 0 (no cap) or more, got %d", l.MaxConnectionsPerIP)
	}
	if l.MaxBodyBytes < 1024 || l.MaxBodyBytes > 1<<30 {
		fail("limits.max_body_bytes", l.MaxBodyBytes, "must be between 1024 and 1073741824, got %d", l.MaxBodyBytes)
	}
}
