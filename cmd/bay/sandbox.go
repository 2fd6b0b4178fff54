package main

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bay-sandbox/bay/config"
	"github.com/bay-sandbox/bay/sandbox"
)

// newSandbox makes the local allocator's sandbox launcher, or nil with
// isolation = "none". A host that cannot run sandboxes refuses to start
// the local allocator unless the operator opted out explicitly.
func newSandbox(cfg *config.Config, dataDir string, configFiles []string, extra map[string][]string) (*sandbox.Launcher, error) {
	if cfg.Local.Isolation == config.IsolationNone {
		return nil, nil
	}
	// The runtime binaries are bound alone (sandbox.ContainerSpec.Path),
	// never their directory, which may hold anything (logs, the data dir);
	// what the runtimes' env names (the agent-browser CLI) is shown.
	var ro []string
	for _, rt := range slices.Sorted(maps.Keys(extra)) {
		for _, kv := range extra[rt] {
			if _, v, ok := strings.Cut(kv, "="); ok && filepath.IsAbs(v) {
				ro = append(ro, v)
			}
		}
	}
	hide := []string{dataDir}
	for _, p := range configFiles {
		if abs, err := filepath.Abs(p); err == nil {
			hide = append(hide, abs)
		}
	}
	box, err := sandbox.New(sandbox.Config{HostUID: cfg.Local.SandboxUID, HostGID: cfg.Local.SandboxUID, ReadOnly: ro, Hide: hide})
	if err != nil {
		return nil, fmt.Errorf("local allocator refuses to run sessions unisolated: %w; install bubblewrap (scripts/install-deps.sh) or set local { isolation = \"none\" }", err)
	}
	return box, nil
}
