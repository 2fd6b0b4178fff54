package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeDir writes files (name -> source) into a new directory.
func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestFragmentsMergeInOrder(t *testing.T) {
	base := writeFile(t, "base.hcl", `
log_level = "info"
port      = 9000

nomad {
  address     = "http://10.0.0.1:4646"
  namespace   = "bay"
  datacenters = ["dc1", "dc2"]

  constraint {
    attribute = "$${attr.kernel.name}"
    value     = "linux"
  }
}

runtimes {
  python = "/usr/bin/python3"
}
`)
	dir := writeDir(t, map[string]string{
		// Lexical order: 10 before 20, and the .json one last.
		"20-tls.hcl": `
nomad {
  datacenters = ["dc3"]

  tls {
    ca_file   = "/secrets/ca.pem"
    cert_file = "/secrets/cert.pem"
    key_file  = "/secrets/key.pem"
  }

  constraint {
    attribute = "$${node.class}"
    value     = "sandbox"
  }
}
`,
		"10-log.hcl":  `log_level = "debug"`,
		"30-gc.json":  `{"gc": {"interval": "30s"}, "log_level": "warn"}`,
		".hidden.hcl": `this is not HCL {`,
		"notes.txt":   `nor this {`,
		"backup.hcl~": `nor this {`,
	})
	c, err := LoadFiles([]string{base, dir}, envOf())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if c.LogLevel != "warn" {
		t.Errorf("log_level = %q, want the last fragment's warn", c.LogLevel)
	}
	if c.Port != 9000 {
		t.Errorf("port = %d, want 9000 from the first file", c.Port)
	}
	n := c.Nomad
	if n.Address != "http://10.0.0.1:4646" || n.Namespace != "bay" {
		t.Errorf("the second nomad block dropped the first one's settings: %+v", n)
	}
	if !reflect.DeepEqual(n.Datacenters, []string{"dc3"}) {
		t.Errorf("datacenters = %v, want the later list to replace the earlier", n.Datacenters)
	}
	if n.TLS.CAFile != "/secrets/ca.pem" || n.TLS.CertFile != "/secrets/cert.pem" || n.TLS.KeyFile != "/secrets/key.pem" {
		t.Errorf("tls from the fragment not merged: %+v", n.TLS)
	}
	if len(n.Constraints) != 2 || n.Constraints[0].Value != "linux" || n.Constraints[1].Value != "sandbox" {
		t.Errorf("constraints = %+v, want both files' in order", n.Constraints)
	}
	if c.Allocator != AllocatorNomad {
		t.Errorf("allocator = %q: a nomad block in any file selects nomad", c.Allocator)
	}
	if c.Runtimes.Python != "/usr/bin/python3" || c.GC.Interval.String() != "30s" {
		t.Errorf("runtimes/gc = %+v / %v", c.Runtimes, c.GC.Interval)
	}

	// Same files, same result: the order is the command line's, then lexical.
	again, err := Load(base, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(settings(again), settings(c)) {
		t.Errorf("Load and LoadFiles disagree:\n%+v\n%+v", settings(again), settings(c))
	}
}

func TestFragmentsEnvAndExplicitAllocator(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"a.hcl": `allocator = "local"`,
		"b.hcl": `nomad { address = "http://10.0.0.9:4646" }`,
	})
	c, err := LoadFiles([]string{dir}, envOf("NOMAD_ADDR", "http://ignored:4646", "BAY_LOG_LEVEL", "error"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Allocator != AllocatorLocal {
		t.Errorf("allocator = %q: an explicit allocator in an earlier file stays", c.Allocator)
	}
	if c.Nomad.Address != "http://10.0.0.9:4646" {
		t.Errorf("nomad address = %q: NOMAD_ADDR fills only what no file set", c.Nomad.Address)
	}
	if c.LogLevel != "error" {
		t.Errorf("log_level = %q: BAY_* overrides every file", c.LogLevel)
	}
}

func TestFragmentsRedefineProfile(t *testing.T) {
	first := writeFile(t, "a.hcl", `
profile "py" {
  container "ship" {
    runtime_type = "ship"
  }
}
profile "keep" {
  container "ship" {
    runtime_type = "ship"
  }
}
`)
	second := writeFile(t, "b.hcl", `
profile "py" {
  description = "from the second file"
  container "ship" {
    runtime_type = "ship"
  }
  container "gull" {
    runtime_type = "gull"
  }
}
`)
	c, err := LoadFiles([]string{first, second}, envOf())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Profiles.IDs(); !reflect.DeepEqual(got, []string{"py", "keep"}) {
		t.Errorf("profiles = %v, want py (redefined in place) and keep", got)
	}
	p, _ := c.Profiles.Get("py")
	if p.Description != "from the second file" || len(p.Containers) != 2 {
		t.Errorf("py = %+v, want the second file's definition whole", p)
	}
}

func TestFragmentsStillRefuseRepeatsWithinOneFile(t *testing.T) {
	lines := loadErr(t, "bay.hcl", `
nomad { namespace = "a" }
nomad { namespace = "b" }
profile "p" {
  container "ship" { runtime_type = "ship" }
}
profile "p" {
  container "ship" { runtime_type = "ship" }
}
`)
	text := strings.Join(lines, "\n")
	if !strings.Contains(text, "bay.hcl:3,1-6: Duplicate nomad block") {
		t.Errorf("a repeated nomad block in one file is not reported at its position:\n%s", text)
	}
	if !strings.Contains(text, `bay.hcl:7,9-12: Duplicate profile; profile "p" is already defined at bay.hcl:4,9-12`) {
		t.Errorf("a repeated profile id in one file is not reported:\n%s", text)
	}
}

func TestFragmentErrorsNameTheirFile(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"10-ok.hcl":  `port = 9000`,
		"20-bad.hcl": "nomad {\n  discovery = \"dns\"\n}\n",
		"30-bad.hcl": `gc { interval = "soon" }`,
	})
	_, err := LoadFiles([]string{dir}, envOf())
	if err == nil {
		t.Fatal("no error for bad fragments")
	}
	text := err.Error()
	for _, want := range []string{"20-bad.hcl:2,15-20", "30-bad.hcl:1,17-23"} {
		if !strings.Contains(text, want) {
			t.Errorf("error does not point at %s:\n%s", want, text)
		}
	}
}

func TestFragmentPathsErrors(t *testing.T) {
	if _, err := LoadFiles([]string{t.TempDir()}, envOf()); err == nil || !strings.Contains(err.Error(), "has no .hcl or .json files") {
		t.Errorf("empty directory: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "nope.d")
	if _, err := LoadFiles([]string{missing}, envOf()); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing path: %v", err)
	}
	// Empty paths are skipped: no file at all means defaults.
	c, err := LoadFiles([]string{"", ""}, envOf())
	if err != nil || c.Allocator != AllocatorLocal {
		t.Errorf("no paths: %v %+v", err, c)
	}
}

func TestShutdownBlock(t *testing.T) {
	c := load(t, "bay.hcl", "shutdown {\n  drain_sessions = true\n  delete_cargos = true\n  timeout = \"90s\"\n}\n")
	if !c.Shutdown.DrainSessions || !c.Shutdown.DeleteCargos || c.Shutdown.Timeout.String() != "1m30s" {
		t.Errorf("shutdown = %+v", c.Shutdown)
	}
	if d := Default().Shutdown; d.DrainSessions || d.DeleteCargos || d.Timeout.String() != "1m0s" {
		t.Errorf("default shutdown = %+v: sessions and cargos must be kept by default", d)
	}
	if c := load(t, "bay.hcl", "", "BAY_DRAIN_ON_SHUTDOWN", "true"); !c.Shutdown.DrainSessions {
		t.Errorf("BAY_DRAIN_ON_SHUTDOWN ignored")
	}
	lines := loadErr(t, "bay.hcl", "shutdown {\n  delete_cargos = true\n  timeout = \"0s\"\n}\n")
	text := strings.Join(lines, "\n")
	for _, want := range []string{
		"bay.hcl:2,19-23: Invalid shutdown.delete_cargos; shutdown.delete_cargos: needs shutdown.drain_sessions = true.",
		"bay.hcl:3,13-17: Invalid shutdown.timeout",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
}
