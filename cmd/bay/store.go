package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/bay-sandbox/bay/config"
	"github.com/bay-sandbox/bay/store"
	"github.com/bay-sandbox/bay/store/postgres"
	"github.com/bay-sandbox/bay/store/sqlite"
)

// openStore opens the configured state store: the SQLite file in dataDir,
// or the shared PostgreSQL database.
func openStore(ctx context.Context, cfg *config.Config, dataDir string) (store.Store, error) {
	switch cfg.Store.Driver {
	case config.StorePostgres:
		st, err := postgres.OpenWith(ctx, cfg.Store.DSN, postgres.Options{MaxConns: cfg.Store.MaxConns})
		if err != nil {
			return nil, err
		}
		return st, nil
	default:
		st, err := sqlite.Open(ctx, filepath.Join(dataDir, "bay.db"))
		if err != nil {
			return nil, err
		}
		return st, nil
	}
}

// claimInstance records the installation's instance id in a shared store,
// or checks it against the one recorded: gateways on one database are one
// installation, and Nomad jobs carry its id (meta bay.instance), so a
// gateway with another id would take the others' sessions for strangers'.
func claimInstance(ctx context.Context, st store.Meta, id string) error {
	const key = "instance_id"
	cur, ok, err := st.GetMeta(ctx, key)
	if err != nil {
		return err
	}
	if !ok {
		return st.SetMeta(ctx, key, id)
	}
	if cur != id {
		return fmt.Errorf("the database belongs to instance_id %q, this gateway is %q: gateways sharing a database must set the same instance_id", cur, id)
	}
	return nil
}
