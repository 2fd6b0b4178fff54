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
	job, err := newOwnJob(cfg)
	if err != nil {
		log.Warn("no nomad client to read the gateway's own job", "error", err)
	}
	ok, why := drain.Deliberate(ctx, os.Getenv, job.lookup)
	if !ok {
		log.Info("sessions kept for the next gateway", "reason", why)
		return
	}
	log.Info("deliberate shutdown: stopping every session", "reason", why, "delete_cargos", cfg.Shutdown.DeleteCargos)
	if _, err := drain.Run(ctx, st, ss, c, cfg.Shutdown.DeleteCargos, log); err != nil {
		log.Error("drain incomplete; the gc of the next gateway, or the operator, must finish it", "error", err)
		return
	}
	if id := os.Getenv("NOMAD_JOB_ID"); cfg.Shutdown.PurgeJob && id != "" && job != nil {
		if err := job.purge(ctx, namespaceOf(os.Getenv), id); err != nil {
			log.Warn("purge own job", "job_id", id, "error", err)
			return
		}
		log.Info("own job purged", "job_id", id)
	}
}

func namespaceOf(getenv func(string) string) string {
	if ns := getenv("NOMAD_NAMESPACE"); ns != "" {
		return ns
	}
	return "default"
}

// ownJob reads and purges the gateway's own Nomad job.
type ownJob struct {
	client *nomadapi.Client
}

// lookup is a drain.JobLookup; a nil ownJob has no client.
func (o *ownJob) lookup(ctx context.Context, namespace, id string) (bool, bool, error) {
	if o == nil {
		return false, false, fmt.Errorf("no nomad client")
	}
	job, _, err := o.client.Jobs().Info(id, (&nomadapi.QueryOptions{Namespace: namespace}).WithContext(ctx))
	if err != nil {
		if strings.Contains(err.Error(), "404") {
			return false, false, nil
		}
		return false, false, err
	}
	return job.Stop != nil && *job.Stop, true, nil
}

func (o *ownJob) purge(ctx context.Context, namespace, id string) error {
	_, _, err := o.client.Jobs().DeregisterOpts(id, &nomadapi.DeregisterOptions{Purge: true},
		(&nomadapi.WriteOptions{Namespace: namespace}).WithContext(ctx))
	return err
}

// newOwnJob makes a Nomad client with the configured settings (the task's
// workload identity token arrives as NOMAD_TOKEN).
func newOwnJob(cfg *config.Config) (*ownJob, error) {
	n := cfg.Nomad
	client, err := nomadapi.NewClient(&nomadapi.Config{
		Address: n.Address, Region: n.Region, SecretID: n.Token,
		TLSConfig: &nomadapi.TLSConfig{
			CACert: n.TLS.CAFile, ClientCert: n.TLS.CertFile, ClientKey: n.TLS.KeyFile,
			Insecure: n.TLS.Insecure, TLSServerName: n.TLS.ServerName,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("nomad client: %w", err)
	}
	return &ownJob{client: client}, nil
}
