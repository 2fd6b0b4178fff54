package config

import (
	"strings"
	"testing"
)

func TestStoreBlock(t *testing.T) {
	if d := Default().Store; d.Driver != StoreSQLite || d.DSN != "" || d.LeaseTTL.String() != "15s" || d.MaxConns != 10 {
		t.Errorf("default store = %+v: want sqlite, no dsn, 15s leases", d)
	}
	c := load(t, "bay.hcl", "store {\n  driver = \"postgres\"\n  dsn = \"postgres://bay@db/bay\"\n  max_conns = 20\n  lease_ttl = \"5s\"\n}\n")
	if c.Store.Driver != StorePostgres || c.Store.DSN != "postgres://bay@db/bay" || c.Store.MaxConns != 20 || c.Store.LeaseTTL.String() != "5s" {
		t.Errorf("store = %+v", c.Store)
	}
	c = load(t, "bay.hcl", "", "BAY_STORE_DRIVER", "postgres", "BAY_STORE_DSN", "host=db user=bay")
	if c.Store.Driver != StorePostgres || c.Store.DSN != "host=db user=bay" {
		t.Errorf("env store = %+v", c.Store)
	}
	lines := loadErr(t, "bay.hcl", "store {\n  driver = \"mysql\"\n  lease_ttl = \"10ms\"\n}\n")
	text := strings.Join(lines, "\n")
	for _, want := range []string{
		"bay.hcl:2,12-19: Invalid store.driver",
		"bay.hcl:3,15-21: Invalid store.lease_ttl",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
	text = strings.Join(loadErr(t, "bay.hcl", "", "BAY_STORE_DSN", "postgres://x/y"), "\n")
	if !strings.Contains(text, "BAY_STORE_DSN: store.dsn: is only used with driver = \"postgres\"") {
		t.Errorf("dsn with sqlite accepted or unclear:\n%s", text)
	}
}
