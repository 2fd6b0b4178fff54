package ship

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEnvFileContent(t *testing.T) {
	got := envFileContent([]string{"A=1", "Q=it's \"x\" $HOME", "NOPE=secret", profileEnvVar + "=A,Q,MISSING,BAD-NAME", "BAD-NAME=x"})
	want := "# Written by ship at start: the profile's environment.\nexport A='1'\nexport Q='it'\\''s \"x\" $HOME'\n"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

// TestShipWritesProfileEnvFile: the real binary writes the profile env to
// /workspace/.bay_env.sh at start; read back over HTTP and sourced by a
// shell, the values come back exactly, quotes and all.
func TestShipWritesProfileEnvFile(t *testing.T) {
	ws := t.TempDir()
	val := `it's "quoted" $NOT_EXPANDED` + "\nsecond line"
	sp := startShip(t, shipOpts{workspace: ws, env: []string{"BAY_PROFILE_ENV=GREETING,TRICKY", "GREETING=hello", "TRICKY=" + val}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := sp.client.ReadFile(ctx, ReadFileRequest{Path: EnvFile})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Content, "export GREETING='hello'\n") || strings.Contains(r.Content, "BAY_SANDBOX_ID") {
		t.Fatalf(".bay_env.sh:\n%s", r.Content)
	}
	out, err := exec.Command("/bin/sh", "-c", `. "$1" && printf %s "$TRICKY"`, "sh", filepath.Join(ws, EnvFile)).Output()
	if err != nil || string(out) != val {
		t.Fatalf("sourced TRICKY = %q, %v; want %q", out, err, val)
	}
}
