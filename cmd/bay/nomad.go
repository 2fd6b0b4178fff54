package main

import (
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/allocator/nomad"
	"github.com/bay-sandbox/bay/config"
	"github.com/bay-sandbox/bay/jobspecs"
)

// newNomadAllocator maps the gateway configuration onto the Nomad allocator.
func newNomadAllocator(cfg *config.Config, bins map[string]string, env map[string]map[string]string, log hclog.Logger) (allocator.Allocator, error) {
	n := cfg.Nomad
	cons := make([]jobspecs.Constraint, 0, len(n.Constraints))
	for _, c := range n.Constraints {
		cons = append(cons, jobspecs.Constraint{Attribute: c.Attribute, Operator: c.Operator, Value: c.Value})
	}
	a, err := nomad.New(nomad.Config{
		Address: n.Address, Region: n.Region, Namespace: n.Namespace, Token: n.Token,
		TLS: nomad.TLS{CACert: n.TLS.CAFile, ClientCert: n.TLS.CertFile, ClientKey: n.TLS.KeyFile, Insecure: n.TLS.Insecure, ServerName: n.TLS.ServerName},
		Job: jobspecs.Options{
			InstanceID: cfg.InstanceID, Region: n.Region, Namespace: n.Namespace, Datacenters: n.Datacenters,
			NodePool: n.NodePool, Constraints: cons, DefaultDriver: n.DefaultDriver, ServiceProvider: n.Discovery,
			Binaries: bins, RuntimeEnv: env, KillTimeout: n.KillTimeout,
		},
		Discovery:      n.Discovery,
		Consul:         nomad.Consul{Address: cfg.Consul.Address, Token: cfg.Consul.Token, Datacenter: cfg.Consul.Datacenter},
		VolumePlugin:   n.Volume.Plugin,
		VolumeNodePool: n.Volume.NodePool,
		StartTimeout:   n.StartTimeout,
	}, log)
	if err != nil {
		return nil, fmt.Errorf("start nomad allocator: %w", err)
	}
	return a, nil
}
