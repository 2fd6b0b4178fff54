package main

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/allocator/nomad"
	"github.com/bay-sandbox/bay/config"
	"github.com/bay-sandbox/bay/gateway/cargopool"
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

// checkNomadToken asks Nomad which of Bay's capabilities the gateway's
// token lacks (nomad { token_check }): "warn" logs each with what fails
// without it, "refuse" stops the gateway. Nomad not answering is only
// logged: the allocator retries and calls answer 503 until it is back.
func checkNomadToken(ctx context.Context, cfg *config.Config, alloc allocator.Allocator, log hclog.Logger) error {
	na, ok := alloc.(*nomad.Allocator)
	if !ok || cfg.Nomad.TokenCheck == config.TokenCheckOff {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	missing, err := na.CheckAccess(ctx)
	if err != nil {
		log.Warn("could not check the nomad token", "error", err)
		return nil
	}
	if len(missing) == 0 {
		log.Debug("nomad token has every capability bay needs")
		return nil
	}
	for _, m := range missing {
		log.Warn("nomad token lacks a capability", "capability", m.Capability, "fails", m.Impact)
	}
	if cfg.Nomad.TokenCheck == config.TokenCheckRefuse {
		return fmt.Errorf("the nomad token lacks what bay needs (grant examples/acl/bay-policy.hcl, or set nomad { token_check = \"warn\" }): %s", nomad.FormatMissing(missing))
	}
	return nil
}

// newCargoPool keeps nomad { cargo_pool_size } cargo volumes made and
// ready, so a new sandbox does not wait for its volume to become placeable
// (gateway/cargopool says why). The embedded default needs none: a local
// cargo is a directory. A disabled pool's Run and Claimed do nothing.
func newCargoPool(cfg *config.Config, st cargopool.Store, alloc allocator.Allocator, log hclog.Logger) (*cargopool.Pool, string) {
	size, backend := 0, ""
	if cfg.Allocator == config.AllocatorNomad && cfg.Nomad.CargoPoolSize > 0 {
		size, backend = cfg.Nomad.CargoPoolSize, nomad.BackendHostVolume
	}
	return cargopool.New(cargopool.Config{Size: size, Backend: backend}, st, alloc, log), backend
}
