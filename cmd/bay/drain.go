package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/bay-sandbox/bay/config"
	"github.com/bay-sandbox/bay/gateway/drain"
)

// drainOnShutdown stops the gateway's sessions (shutdown { drain_sessions })
// when this shutdown is deliberate; see drain.Deliberate.
func drainOnShutdown(cfg *config.Config, st drain.Store, ss drain.Sessions, c drain.Compute, log hclog.Logger) {
	log = log.Named("drain")
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.Timeout)
	defer cancel()
	ok, why := drain.Deliberate(ctx, os.Getenv, nomadJobLookup(cfg))
	if !ok {
		log.Info("sessions kept for the next gateway", "reason", why)
		return
	}
	log.Info("deliberate shutdown: stopping every session", "reason", why, "delete_cargos", cfg.Shutdown.DeleteCargos)
	if _, err := drain.Run(ctx, st, ss, c, cfg.Shutdown.DeleteCargos, log); err != nil {
		log.Error("drain incomplete; the gc of the next gateway, or the operator, must finish it", "error", err)
	}
}

// nomadJobLookup reads the gateway's own job with the configured Nomad
// settings (the task's workload identity token arrives as NOMAD_TOKEN).
func nomadJobLookup(cfg *config.Config) drain.JobLookup {
	n := cfg.Nomad
	client, err := nomadapi.NewClient(&nomadapi.Config{
		Address: n.Address, Region: n.Region, SecretID: n.Token,
		TLSConfig: &nomadapi.TLSConfig{
			CACert: n.TLS.CAFile, ClientCert: n.TLS.CertFile, ClientKey: n.TLS.KeyFile,
			Insecure: n.TLS.Insecure, TLSServerName: n.TLS.ServerName,
		},
	})
	if err != nil {
		return func(context.Context, string, string) (bool, bool, error) {
			return false, false, fmt.Errorf("nomad client: %w", err)
		}
	}
	return func(ctx context.Context, namespace, id string) (bool, bool, error) {
		job, _, err := client.Jobs().Info(id, (&nomadapi.QueryOptions{Namespace: namespace}).WithContext(ctx))
		if err != nil {
			if strings.Contains(err.Error(), "404") {
				return false, false, nil
			}
			return false, false, err
		}
		return job.Stop != nil && *job.Stop, true, nil
	}
}
