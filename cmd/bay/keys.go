package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/config"
	"github.com/bay-sandbox/bay/gateway"
)

// keysPollInterval is how often the keys file's modification is checked.
const keysPollInterval = 2 * time.Second

// loadKeys is the named keys: the config's key blocks plus the keys file's.
func loadKeys(auth config.Auth) ([]gateway.Key, error) {
	all := append([]config.APIKey(nil), auth.Keys...)
	if auth.KeysFile != "" {
		fk, err := config.LoadKeysFile(auth.KeysFile)
		if err != nil {
			return nil, err
		}
		all = append(all, fk...)
	}
	out := make([]gateway.Key, 0, len(all))
	for _, k := range all {
		out = append(out, gateway.Key{Name: k.Name, Hash: k.SHA256, Owner: k.Owner, Admin: k.Admin})
	}
	return out, nil
}

// keySetter is what reloading needs of the gateway.
type keySetter interface{ SetKeys([]gateway.Key) }

// watchKeys re-reads the keys file on SIGHUP and whenever it changes, so
// keys are added and revoked without a restart. A file that fails to load
// leaves the keys in force as they were (and says why).
func watchKeys(ctx context.Context, auth config.Auth, srv keySetter, log hclog.Logger) {
	if auth.KeysFile == "" {
		return
	}
	log = log.Named("keys")
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	stamp := func() (time.Time, int64) {
		st, err := os.Stat(auth.KeysFile)
		if err != nil {
			return time.Time{}, -1
		}
		return st.ModTime(), st.Size()
	}
	var lastMod time.Time
	var lastSize int64
	reload := func(why string) {
		keys, err := loadKeys(auth)
		if err != nil {
			log.Error("keys file not reloaded; the previous keys stay in force", "file", auth.KeysFile, "reason", why, "error", err)
			return
		}
		srv.SetKeys(keys)
		log.Info("keys reloaded", "file", auth.KeysFile, "reason", why, "keys", len(keys))
	}
	// Load once more now: the file may have changed since the start.
	lastMod, lastSize = stamp()
	reload("start")
	tick := time.NewTicker(keysPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			lastMod, lastSize = stamp()
			reload("SIGHUP")
		case <-tick.C:
			if mod, size := stamp(); !mod.Equal(lastMod) || size != lastSize {
				lastMod, lastSize = mod, size
				reload("file changed")
			}
		}
	}
}
