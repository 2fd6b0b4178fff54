package nomad

import (
	"testing"
	"time"
)

func TestConfigFileBeatsEnvAndEnvFillsGaps(t *testing.T) {
	t.Setenv("NOMAD_ADDR", "http://env:4646")
	t.Setenv("NOMAD_TOKEN", "env-token")
	t.Setenv("NOMAD_NAMESPACE", "env-ns")
	t.Setenv("NOMAD_CACERT", "/env/ca.pem")
	t.Setenv("CONSUL_HTTP_ADDR", "env-consul:8500")
	t.Setenv("CONSUL_HTTP_TOKEN", "env-consul-token")
	c := Config{
		Address: "https://file:4646", Region: "eu",
		TLS:    TLS{ClientCert: "/file/cert.pem", ClientKey: "/file/key.pem", ServerName: "nomad.internal"},
		Consul: Consul{Datacenter: "dc9", TLS: TLS{CACert: "/file/consul-ca.pem", Insecure: true}},
	}
	c.setDefaults()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	nc := c.nomadConfig()
	if nc.Address != "https://file:4646" || nc.Region != "eu" || nc.SecretID != "env-token" || nc.Namespace != "env-ns" {
		t.Fatalf("nomad config = %+v", nc)
	}
	if tl := nc.TLSConfig; tl.CACert != "/env/ca.pem" || tl.ClientCert != "/file/cert.pem" || tl.ClientKey != "/file/key.pem" || tl.TLSServerName != "nomad.internal" {
		t.Fatalf("nomad tls = %+v", tl)
	}
	cc := c.consulConfig()
	if cc.Address != "env-consul:8500" || cc.Token != "env-consul-token" || cc.Datacenter != "dc9" ||
		cc.TLSConfig.CAFile != "/file/consul-ca.pem" || !cc.TLSConfig.InsecureSkipVerify {
		t.Fatalf("consul config = %+v", cc)
	}
	// Defaults.
	if c.Discovery != DiscoveryNomad || c.Job.ServiceProvider != DiscoveryNomad || c.VolumePlugin != "mkdir" ||
		c.StartTimeout != 60*time.Second || c.Job.Region != "eu" {
		t.Fatalf("defaults = %+v", c)
	}
	bad := Config{Discovery: "etcd"}
	bad.setDefaults()
	if bad.validate() == nil {
		t.Fatal("unknown discovery accepted")
	}
}

func TestParseLocator(t *testing.T) {
	r, err := parseLocator(volumeRef{ID: "v1", Name: "bay-cargo-x", HostPath: "/h"}.locator())
	if err != nil || r.ID != "v1" || r.Name != "bay-cargo-x" || r.HostPath != "/h" {
		t.Fatalf("json locator = %+v %v", r, err)
	}
	if r, err := parseLocator(" v2 "); err != nil || r.ID != "v2" || r.Name != "" {
		t.Fatalf("bare id = %+v %v", r, err)
	}
	for _, bad := range []string{"", "{", `{"name":"x"}`} {
		if _, err := parseLocator(bad); err == nil {
			t.Fatalf("locator %q accepted", bad)
		}
	}
}
