package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.hcl")
	bad := filepath.Join(dir, "bad.hcl")
	if err := os.WriteFile(good, []byte("port = 9000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("port = 0\nprofile \"x\" {\n  container \"c\" { runtime_type = \"nope\" }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"config", "validate", good}, &out, &errb); code != 0 || !strings.Contains(out.String(), "python-default") {
		t.Fatalf("good config: code %d, out %q, err %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	code := run([]string{"config", "validate", bad}, &out, &errb)
	if code != 1 {
		t.Fatalf("bad config: code %d", code)
	}
	// Both problems, each with its position.
	for _, want := range []string{"bad.hcl:1,", "bad.hcl:3,", "port", "runtime_type"} {
		if !strings.Contains(errb.String(), want) {
			t.Fatalf("bad config output lacks %q:\n%s", want, errb.String())
		}
	}
	if code := run([]string{"config", "validate"}, &out, &errb); code != 2 {
		t.Fatalf("no file: code %d", code)
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"nope"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("code %d, %q", code, errb.String())
	}
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "bay ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
}
