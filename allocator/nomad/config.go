package nomad

import (
	"fmt"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/nomad/api"

	"github.com/bay-sandbox/bay/jobspecs"
)

// Discovery providers.
const (
	DiscoveryNomad  = "nomad"
	DiscoveryConsul = "consul"
)

// Defaults for zero Config fields.
const (
	DefaultStartTimeout        = 60 * time.Second
	DefaultHealthCheckInterval = 50 * time.Millisecond
	DefaultVolumePlugin        = "mkdir"
	// DefaultStopTimeout bounds how long Stop waits for the allocation to
	// finish (SIGTERM, kill timeout) before it purges the job anyway.
	DefaultStopTimeout = 30 * time.Second
)

// TLS is how the allocator talks TLS to Nomad. Empty fields fall back to
// the standard NOMAD_CACERT, NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY,
// NOMAD_SKIP_VERIFY and NOMAD_TLS_SERVER_NAME variables.
type TLS struct {
	CACert     string
	ClientCert string
	ClientKey  string
	Insecure   bool
	ServerName string
}

// Consul is where Consul discovery looks. Empty fields fall back to
// CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN and the Consul client's defaults.
type Consul struct {
	Address    string
	Token      string
	Datacenter string
	// TLS falls back to CONSUL_CACERT, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY,
	// CONSUL_TLS_SERVER_NAME and CONSUL_HTTP_SSL_VERIFY.
	TLS TLS
}

// Config configures the Nomad allocator. Empty connection fields fall back to
// the standard NOMAD_* environment, as the nomad CLI does.
type Config struct {
	Address   string
	Region    string
	Namespace string
	Token     string
	TLS       TLS

	// Job is how sessions are rendered (jobspecs.Options). Job.InstanceID
	// also scopes re-adoption: jobs made by another gateway instance are
	// neither adopted nor reported. Job.Region and Job.Namespace default to
	// Region and Namespace; Job.ServiceProvider defaults to Discovery.
	Job jobspecs.Options

	// Discovery is "nomad" (native services, the default) or "consul".
	Discovery string
	Consul    Consul

	// VolumePlugin makes cargos (dynamic host volumes); default "mkdir".
	VolumePlugin string
	// VolumeNodePool places new cargo volumes; empty means Nomad's default.
	VolumeNodePool string

	// StartTimeout bounds a whole start (register to every container
	// healthy); default 60 s.
	StartTimeout time.Duration
	// HealthCheckInterval is how often /health is asked while a container is
	// expected to come up; default 50 ms.
	HealthCheckInterval time.Duration
	// StopTimeout bounds Stop's wait for the allocation to finish; default 30 s.
	StopTimeout time.Duration

	// Resolver replaces the resolver Discovery would build (tests).
	Resolver Resolver
}

func (c *Config) setDefaults() {
	if c.Discovery == "" {
		c.Discovery = DiscoveryNomad
	}
	if c.VolumePlugin == "" {
		c.VolumePlugin = DefaultVolumePlugin
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.HealthCheckInterval <= 0 {
		c.HealthCheckInterval = DefaultHealthCheckInterval
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	if c.Job.Region == "" {
		c.Job.Region = c.Region
	}
	if c.Job.Namespace == "" {
		c.Job.Namespace = c.Namespace
	}
	if c.Job.ServiceProvider == "" {
		c.Job.ServiceProvider = c.Discovery
	}
}

func (c *Config) validate() error {
	switch c.Discovery {
	case DiscoveryNomad, DiscoveryConsul:
	default:
		return fmt.Errorf("discovery %q is not %q or %q", c.Discovery, DiscoveryNomad, DiscoveryConsul)
	}
	return nil
}

// nomadConfig is the API client configuration: the NOMAD_* environment,
// overridden by whatever the config sets.
func (c *Config) nomadConfig() *api.Config {
	nc := api.DefaultConfig()
	if c.Address != "" {
		nc.Address = c.Address
	}
	if c.Region != "" {
		nc.Region = c.Region
	}
	if c.Namespace != "" {
		nc.Namespace = c.Namespace
	}
	if c.Token != "" {
		nc.SecretID = c.Token
	}
	if nc.TLSConfig == nil {
		nc.TLSConfig = &api.TLSConfig{}
	}
	t := nc.TLSConfig
	if c.TLS.CACert != "" {
		t.CACert = c.TLS.CACert
	}
	if c.TLS.ClientCert != "" {
		t.ClientCert = c.TLS.ClientCert
	}
	if c.TLS.ClientKey != "" {
		t.ClientKey = c.TLS.ClientKey
	}
	if c.TLS.ServerName != "" {
		t.TLSServerName = c.TLS.ServerName
	}
	if c.TLS.Insecure {
		t.Insecure = true
	}
	return nc
}

// consulConfig is the Consul client configuration: CONSUL_HTTP_* environment
// overridden by the config.
func (c *Config) consulConfig() *consulapi.Config {
	cc := consulapi.DefaultConfig()
	if c.Consul.Address != "" {
		cc.Address = c.Consul.Address
	}
	if c.Consul.Token != "" {
		cc.Token = c.Consul.Token
	}
	if c.Consul.Datacenter != "" {
		cc.Datacenter = c.Consul.Datacenter
	}
	t := c.Consul.TLS
	if t.CACert != "" {
		cc.TLSConfig.CAFile = t.CACert
	}
	if t.ClientCert != "" {
		cc.TLSConfig.CertFile = t.ClientCert
	}
	if t.ClientKey != "" {
		cc.TLSConfig.KeyFile = t.ClientKey
	}
	if t.ServerName != "" {
		cc.TLSConfig.Address = t.ServerName
	}
	if t.Insecure {
		cc.TLSConfig.InsecureSkipVerify = true
	}
	return cc
}
