package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestConfigValidateMergesFragments(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "bay.hcl")
	frag := filepath.Join(dir, "bay.d")
	if err := os.WriteFile(base, []byte("nomad {\n  namespace = \"bay\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(frag, 0o755); err != nil {
		t.Fatal(err)
	}
	// A second nomad block in another file merges; alone it would be refused
	// only within one file.
	if err := os.WriteFile(filepath.Join(frag, "10-tls.hcl"), []byte("nomad {\n  discovery = \"dns\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"config", "validate", base, frag}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "10-tls.hcl:2,") {
		t.Fatalf("bad fragment: code %d, out %q, err %q", code, out.String(), errb.String())
	}
	if err := os.WriteFile(filepath.Join(frag, "10-tls.hcl"), []byte("nomad {\n  discovery = \"consul\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"config", "validate", base, frag}, &out, &errb); code != 0 || !strings.Contains(out.String(), "allocator nomad") {
		t.Fatalf("good fragments: code %d, out %q, err %q", code, out.String(), errb.String())
	}
	cfg, err := loadConfig(base, frag)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Nomad.Namespace != "bay" || cfg.Nomad.Discovery != "consul" {
		t.Errorf("merged nomad = %+v", cfg.Nomad)
	}
}

func TestServeConfigFlagRepeats(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var p pathList
	fs.Var(&p, "config", "")
	if err := fs.Parse([]string{"--config", "a.hcl", "-config=conf.d", "--config", "b.json"}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.hcl", "conf.d", "b.json"}; !reflect.DeepEqual([]string(p), want) {
		t.Errorf("paths = %v, want %v", p, want)
	}
	if err := fs.Parse([]string{"--config", ""}); err == nil {
		t.Error("an empty -config is accepted")
	}
	t.Setenv("BAY_CONFIG", "/etc/bay.d")
	if got := configPaths(nil); !reflect.DeepEqual(got, []string{"/etc/bay.d"}) {
		t.Errorf("BAY_CONFIG: %v", got)
	}
	if got := configPaths(pathList{"x.hcl"}); !reflect.DeepEqual(got, []string{"x.hcl"}) {
		t.Errorf("flags must win over BAY_CONFIG: %v", got)
	}
}
