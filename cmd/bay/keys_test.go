package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/config"
	"github.com/bay-sandbox/bay/gateway"
)

type recordingSetter struct {
	mu   sync.Mutex
	sets [][]gateway.Key
}

func (r *recordingSetter) SetKeys(k []gateway.Key) {
	r.mu.Lock()
	r.sets = append(r.sets, k)
	r.mu.Unlock()
}

func (r *recordingSetter) last() ([]gateway.Key, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sets) == 0 {
		return nil, 0
	}
	return r.sets[len(r.sets)-1], len(r.sets)
}

func keyBlock(name, owner string) string {
	return `key "` + name + `" {
  owner  = "` + owner + `"
  secret = "` + name + `-secret-0123456789"
}
`
}

// TestKeysFileReload: editing the keys file adds and revokes keys without
// a restart; a broken edit keeps the keys in force.
func TestKeysFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.hcl")
	if err := os.WriteFile(path, []byte(keyBlock("alice", "alice")), 0o600); err != nil {
		t.Fatal(err)
	}
	auth := config.Auth{KeysFile: path, Keys: []config.APIKey{{Name: "static", Owner: "s", SHA256: gateway.HashKey("static-key-0123456789")}}}
	keys, err := loadKeys(auth)
	if err != nil || len(keys) != 2 || keys[1].Owner != "alice" || keys[1].Hash != gateway.HashKey("alice-secret-0123456789") {
		t.Fatalf("initial keys %+v %v", keys, err)
	}
	rec := &recordingSetter{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); watchKeys(ctx, auth, rec, hclog.NewNullLogger()) }()
	defer func() { cancel(); <-done }()

	wait := func(n int) []gateway.Key {
		t.Helper()
		deadline := time.Now().Add(3 * keysPollInterval)
		for time.Now().Before(deadline) {
			if k, got := rec.last(); got >= n {
				return k
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no reload #%d", n)
		return nil
	}
	wait(1) // the watcher's own first load
	// Replace alice with bob.
	if err := os.WriteFile(path, []byte(keyBlock("bob", "bob")+"\n# v2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k := wait(2)
	if len(k) != 2 || k[1].Owner != "bob" {
		t.Fatalf("after edit: %+v", k)
	}
	// A broken file: no reload.
	if err := os.WriteFile(path, []byte(`key "x" { owner = }`), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2*keysPollInterval + 200*time.Millisecond)
	if _, n := rec.last(); n != 2 {
		t.Fatalf("a broken keys file was applied (%d reloads)", n)
	}
	if _, err := loadKeys(auth); err == nil || !strings.Contains(err.Error(), "keys.hcl") {
		t.Fatalf("broken file error %v", err)
	}
}
