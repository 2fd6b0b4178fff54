package testutil

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Docker returns the docker CLI when a Docker engine answers it, or skips
// the test with the reason (fails it under CI, which installs and starts
// one).
func Docker(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("docker")
	if err != nil {
		need(t, "no docker CLI on PATH (apt-get install docker.io)")
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, p, "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		need(t, "no Docker engine reachable (is dockerd running?): "+strings.TrimSpace(string(out)))
		return ""
	}
	return p
}

// DockerImage skips the test (fails it under CI) unless the engine has the
// image ref, e.g. "bay-ship:dev" (`make images` builds them).
func DockerImage(t testing.TB, ref string) {
	t.Helper()
	docker := Docker(t)
	if err := exec.Command(docker, "image", "inspect", ref).Run(); err != nil {
		need(t, "no image "+ref+" (make images)")
	}
}
