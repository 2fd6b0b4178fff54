package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/bay-sandbox/bay/profiles"
)

var (
	instanceIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	hostnamePattern   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
)

var (
	logLevels = []string{"trace", "debug", "info", "warn", "error", "off"}
	drivers   = []string{"docker", "exec", "raw_exec"}
	// Nomad's constraint operators; the last three need no value.
	constraintOps = []string{"=", "==", "is", "!=", "not", ">", ">=", "<", "<=", "regexp",
		"set_contains", "set_contains_any", "set_contains_all", "version", "semver",
		"distinct_property", "distinct_hosts", "is_set", "is_not_set"}
	valuelessOps = []string{"distinct_hosts", "is_set", "is_not_set"}
)

// Validate checks every setting and profile and returns all problems joined
// (nil when valid). A problem with a setting that still holds the value the
// file or environment gave it names that position or variable, e.g.
// "bay.hcl:3,8-13: Invalid port; port: must be 1..65535, got 0." or
// "BAY_PORT: port: must be 1..65535, got 70000".
func (c *Config) Validate() error {
	return errors.Join(c.check(true)...)
}

// check validates the settings, and the profiles too when withProfiles
// (Load skips them when their decoding already reported errors).
func (c *Config) check(withProfiles bool) []error {
	var errs []error
	fail := func(field string, value any, format string, args ...any) {
		msg := field + ": " + fmt.Sprintf(format, args...)
		o, ok := c.origins[field]
		switch {
		case ok && o.rng != nil && reflect.DeepEqual(o.value, value):
			errs = append(errs, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid " + field,
				Detail:   msg + ".",
				Subject:  o.rng,
			})
		case ok && o.env != "" && reflect.DeepEqual(o.value, value):
			errs = append(errs, fmt.Errorf("%s: %s", o.env, msg))
		default:
			errs = append(errs, errors.New(msg))
		}
	}
	oneOf := func(field, value string, allowed []string) {
		if !contains(allowed, value) {
			fail(field, value, "%q is not one of %s", value, strings.Join(allowed, ", "))
		}
	}
	positive := func(field string, d any, ok bool) {
		if !ok {
			fail(field, d, "must be greater than 0, got %v", d)
		}
	}

	if c.DataDir == "" {
		fail("data_dir", c.DataDir, "must not be empty")
	}
	if c.BindAddr == "" || (net.ParseIP(c.BindAddr) == nil && !hostnamePattern.MatchString(c.BindAddr)) {
		fail("bind_addr", c.BindAddr, "%q is not an IP address or host name", c.BindAddr)
	}
	if c.Port < 1 || c.Port > 65535 {
		fail("port", c.Port, "must be 1..65535, got %d", c.Port)
	}
	if !contains(logLevels, strings.ToLower(c.LogLevel)) {
		fail("log_level", c.LogLevel, "%q is not one of %s", c.LogLevel, strings.Join(logLevels, ", "))
	}
	if !instanceIDPattern.MatchString(c.InstanceID) {
		fail("instance_id", c.InstanceID, "%q must match %s", c.InstanceID, instanceIDPattern)
	}
	oneOf("allocator", c.Allocator, []string{AllocatorLocal, AllocatorNomad})

	for i, k := range c.Auth.APIKeys {
		if strings.TrimSpace(k) != k || k == "" {
			fail("auth.api_keys", c.Auth.APIKeys, "key %d is empty or has surrounding spaces", i+1)
		}
	}
	positive("server.request_timeout", c.Server.RequestTimeout, c.Server.RequestTimeout > 0)
	positive("server.start_timeout", c.Server.StartTimeout, c.Server.StartTimeout > 0)
	if c.Server.MaxSandboxesPerOwner < 0 {
		fail("server.max_sandboxes_per_owner", c.Server.MaxSandboxesPerOwner, "must be 0 (unlimited) or more, got %d", c.Server.MaxSandboxesPerOwner)
	}
	if c.Server.MaxSessions < 0 {
		fail("server.max_sessions", c.Server.MaxSessions, "must be 0 (unlimited) or more, got %d", c.Server.MaxSessions)
	}
	if c.GC.Enabled {
		positive("gc.interval", c.GC.Interval, c.GC.Interval > 0)
	}
	oneOf("store.driver", c.Store.Driver, []string{StoreSQLite, StorePostgres})
	if c.Store.Driver == StoreSQLite && c.Store.DSN != "" {
		fail("store.dsn", c.Store.DSN, "is only used with driver = %q (SQLite lives in data_dir)", StorePostgres)
	}
	positive("store.max_conns", c.Store.MaxConns, c.Store.MaxConns > 0)
	if c.Store.LeaseTTL < time.Second {
		fail("store.lease_ttl", c.Store.LeaseTTL, "must be at least 1s, got %v", c.Store.LeaseTTL)
	}
	positive("idempotency.ttl", c.Idempotency.TTL, c.Idempotency.TTL > 0)
	if c.Local.Isolation != IsolationSandbox && c.Local.Isolation != IsolationNone {
		fail("local.isolation", c.Local.Isolation, "must be %q (the default) or %q, got %q", IsolationSandbox, IsolationNone, c.Local.Isolation)
	}
	if c.Local.SandboxUID < 0 || c.Local.SandboxUID > 1<<31-2 {
		fail("local.sandbox_uid", c.Local.SandboxUID, "must be a uid above 0, got %d", c.Local.SandboxUID)
	}
	if c.Local.GracePeriod < 0 {
		fail("local.grace_period", c.Local.GracePeriod, "must be 0 or more, got %s", c.Local.GracePeriod)
	}

	positive("shutdown.timeout", c.Shutdown.Timeout, c.Shutdown.Timeout > 0)
	if c.Shutdown.DeleteCargos && !c.Shutdown.DrainSessions {
		fail("shutdown.delete_cargos", c.Shutdown.DeleteCargos, "needs shutdown.drain_sessions = true")
	}
	if c.Shutdown.PurgeJob && !c.Shutdown.DrainSessions {
		fail("shutdown.purge_job", c.Shutdown.PurgeJob, "needs shutdown.drain_sessions = true")
	}
	c.checkLimits(fail)
	c.checkKeys(fail)

	if c.Allocator == AllocatorNomad {
		c.checkNomad(fail, oneOf, positive)
	}

	if withProfiles {
		if c.Profiles.Len() == 0 {
			errs = append(errs, errors.New("profiles: at least one profile is needed"))
		} else if err := profiles.ValidateAll(c.Profiles.All()); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

type failFunc func(field string, value any, format string, args ...any)

func (c *Config) checkNomad(fail failFunc, oneOf func(field, value string, allowed []string), positive func(string, any, bool)) {
	n := &c.Nomad
	if u, err := url.Parse(n.Address); err != nil || !contains([]string{"http", "https", "unix"}, u.Scheme) || (u.Scheme != "unix" && u.Host == "") {
		fail("nomad.address", n.Address, "%q is not a URL such as http://127.0.0.1:4646", n.Address)
	}
	if len(n.Datacenters) == 0 {
		fail("nomad.datacenters", n.Datacenters, `must list at least one datacenter ("*" for all)`)
	}
	for _, dc := range n.Datacenters {
		if dc == "" {
			fail("nomad.datacenters", n.Datacenters, "must not contain an empty name")
			break
		}
	}
	for i, ct := range n.Constraints {
		prefix := fmt.Sprintf("nomad.constraint[%d].", i)
		if !contains(constraintOps, ct.Operator) {
			fail(prefix+"operator", ct.Operator, "%q is not a Nomad constraint operator", ct.Operator)
			continue
		}
		if ct.Attribute == "" && ct.Operator != "distinct_hosts" {
			fail(prefix+"attribute", ct.Attribute, "must be set for operator %q", ct.Operator)
		}
		if ct.Value == "" && !contains(valuelessOps, ct.Operator) {
			fail(prefix+"value", ct.Value, "must be set for operator %q", ct.Operator)
		}
	}
	oneOf("nomad.default_driver", n.DefaultDriver, drivers)
	oneOf("nomad.discovery", n.Discovery, []string{DiscoveryNomad, DiscoveryConsul})
	oneOf("nomad.token_check", n.TokenCheck, []string{TokenCheckWarn, TokenCheckRefuse, TokenCheckOff})
	if n.CargoPoolSize < 0 || n.CargoPoolSize > 100 {
		fail("nomad.cargo_pool_size", n.CargoPoolSize, "must be between 0 and 100, got %d", n.CargoPoolSize)
	}
	if n.Volume.Plugin == "" {
		fail("nomad.volume.plugin", n.Volume.Plugin, "must not be empty")
	}
	positive("nomad.start_timeout", n.StartTimeout, n.StartTimeout > 0)
	if n.KillTimeout < 0 {
		fail("nomad.kill_timeout", n.KillTimeout, "must be 0 or more, got %s", n.KillTimeout)
	}
	if n.Discovery == DiscoveryConsul && c.Consul.Address != "" {
		addr := c.Consul.Address
		if !strings.Contains(addr, "://") {
			addr = "http://" + addr
		}
		if u, err := url.Parse(addr); err != nil || u.Host == "" {
			fail("consul.address", c.Consul.Address, "%q is not an address such as 127.0.0.1:8500", c.Consul.Address)
		}
	}

	// Containers without a driver run with the default one, which may be
	// docker: they need an image then.
	if n.DefaultDriver == "docker" {
		for _, p := range c.Profiles.All() {
			for _, ct := range p.Containers {
				if ct.Driver == "" && ct.Image == "" {
					fail("nomad.default_driver", n.DefaultDriver, "profile %q container %q names no driver, so it would use docker, which needs an image", p.ID, ct.Name)
				}
			}
		}
	}
}
