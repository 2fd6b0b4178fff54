package local

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
)

func mountConfig(t *testing.T) Config {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: containers get a mount namespace of their own only when the gateway runs as root")
	}
	cfg := testConfig(t)
	cfg.NoWorkspaceMount = false
	// Not /workspace: the test must not touch the host's root.
	cfg.WorkspaceMount = filepath.Join(t.TempDir(), "workspace")
	return cfg
}

// TestWorkspaceMountPerSession starts two sessions at once with the cargo
// mounted at the same path: every container runs in a namespace of its own,
// is told where its workspace is, writes through the mount into its own
// cargo and reads its own file back, and the host's mount point stays empty.
func TestWorkspaceMountPerSession(t *testing.T) {
	cfg := mountConfig(t)
	mount := cfg.WorkspaceMount
	a := newAlloc(t, cfg)
	if a.mountAt != mount {
		t.Fatalf("mountAt = %q, want %q", a.mountAt, mount)
	}
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	p := twoContainers(map[string]string{"WHERE": "${CARGO_PATH}/x"}, nil)
	reqs := []allocator.StartRequest{startReq(t, a, p), startReq(t, a, p)}
	sessions := make([]*allocator.Session, len(reqs))
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Go(func() { sessions[i] = mustStart(t, a, reqs[i]) })
	}
	wg.Wait()
	var pids []int
	for i, req := range reqs {
		for _, name := range []string{"ship", "gull"} {
			info := getInfo(t, sessions[i].Endpoints[name].URL)
			pids = append(pids, info.PID)
			if info.MountErr != "" {
				t.Fatalf("%s/%s: mount failed: %s", req.SessionID, name, info.MountErr)
			}
			if info.MountNS == "" || info.MountNS == self {
				t.Errorf("%s/%s: mount namespace %q is the gateway's %q", req.SessionID, name, info.MountNS, self)
			}
			if i := slices.Index(info.Args, "--mount-workspace"); i < 0 || i+1 >= len(info.Args) || info.Args[i+1] != mount {
				t.Errorf("%s/%s: args %q lack --mount-workspace %s", req.SessionID, name, info.Args, mount)
			}
			if info.Env["BAY_WORKSPACE_PATH"] != mount || (name == "ship" && info.Env["WHERE"] != mount+"/x") {
				t.Errorf("%s/%s: BAY_WORKSPACE_PATH=%q WHERE=%q, want the mount %s", req.SessionID, name, info.Env["BAY_WORKSPACE_PATH"], info.Env["WHERE"], mount)
			}
			// Both sessions wrote who-<name> at the same path; each sees its own.
			if info.Who != req.SandboxID {
				t.Errorf("%s/%s: sees %q at %s, want its own %q", req.SessionID, name, info.Who, mount, req.SandboxID)
			}
			b, err := os.ReadFile(filepath.Join(req.Cargo.Locator, "who-"+name))
			if err != nil || string(b) != req.SandboxID {
				t.Errorf("%s/%s: cargo file = %q, %v", req.SessionID, name, b, err)
			}
		}
	}
	if ents, err := os.ReadDir(mount); err != nil || len(ents) != 0 {
		t.Errorf("host mount point %s: %d entries, %v", mount, len(ents), err)
	}
	for _, req := range reqs {
		if err := a.Stop(context.Background(), req.SessionID); err != nil {
			t.Fatal(err)
		}
	}
	assertGone(t, pids...)
	if got := recordFiles(t, a); len(got) != 0 {
		t.Errorf("records left: %v", got)
	}
}

// TestWorkspaceMountFallsBack: when the probe cannot mount, or a runtime's
// binary would be hidden, containers see the cargo at its own path, as
// without root, and the reason is logged once.
func TestWorkspaceMountFallsBack(t *testing.T) {
	base := mountConfig(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, mount, reason string
	}{
		{"mount point under a file", filepath.Join(file, "workspace"), "create mount point"},
		{"binary under the mount point", filepath.Dir(exe), "lies under " + filepath.Dir(exe)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.DataDir = t.TempDir()
			cfg.WorkspaceMount = tc.mount
			var logs bytes.Buffer
			a, err := New(cfg, hclog.New(&hclog.LoggerOptions{Output: &logs}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = a.Close() })
			if a.mountAt != "" {
				t.Fatalf("mountAt = %q, want none", a.mountAt)
			}
			if n := strings.Count(logs.String(), "its own path"); n != 1 || !strings.Contains(logs.String(), tc.reason) {
				t.Errorf("log (%d warnings) lacks %q:\n%s", n, tc.reason, logs.String())
			}
			req := startReq(t, a, twoContainers(nil, nil))
			sess := mustStart(t, a, req)
			info := getInfo(t, sess.Endpoints["ship"].URL)
			if slices.Contains(info.Args, "--mount-workspace") || info.Env["BAY_WORKSPACE_PATH"] != req.Cargo.Locator {
				t.Errorf("args %q, BAY_WORKSPACE_PATH=%q, want the cargo's own path", info.Args, info.Env["BAY_WORKSPACE_PATH"])
			}
			if self, _ := os.Readlink("/proc/self/ns/mnt"); info.MountNS != self {
				t.Errorf("container got a namespace of its own: %q", info.MountNS)
			}
		})
	}
}

func TestWorkspaceMountConfig(t *testing.T) {
	for _, m := range []string{"workspace", "/", "/.."} {
		cfg := testConfig(t)
		cfg.NoWorkspaceMount = false
		cfg.WorkspaceMount = m
		if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "absolute path other than /") {
			t.Errorf("WorkspaceMount %q: %v", m, err)
		}
	}
	cfg := testConfig(t)
	cfg.WorkspaceMount = "relative is ignored when disabled"
	a := newAlloc(t, cfg)
	if a.mountAt != "" {
		t.Fatalf("NoWorkspaceMount: mountAt = %q", a.mountAt)
	}
}

func TestHiddenBy(t *testing.T) {
	a := &Allocator{cfg: Config{
		Binaries: map[string]string{"ship": "/opt/bay/ship", "gull": "/workspace/bin/gull"},
		ExtraEnv: map[string][]string{"ship": {"BAY_PYTHON=/usr/bin/python3", "X=relative/workspace"}, "gull": {"BAY_AGENT_BROWSER=/workspaces/ab"}},
	}}
	if got := a.hiddenBy("/workspace"); got != "/workspace/bin/gull" {
		t.Errorf("hiddenBy(/workspace) = %q", got)
	}
	if got := a.hiddenBy("/usr"); got != "/usr/bin/python3" {
		t.Errorf("hiddenBy(/usr) = %q", got)
	}
	if got := a.hiddenBy("/work"); got != "" {
		t.Errorf("hiddenBy(/work) = %q: a prefix that is not a parent", got)
	}
}

// TestProbeLeavesNoThreadBehind: after many probes every thread of the
// process is still in the namespace it started in, with no probe mount.
func TestProbeLeavesNoThreadBehind(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create mount namespaces")
	}
	before := taskNamespaces(t)
	if len(before) != 1 {
		t.Fatalf("threads already in several namespaces: %v", before)
	}
	src, target := t.TempDir(), filepath.Join(t.TempDir(), "ws")
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := probeMount(src, target); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// A discarded thread ends shortly after its goroutine.
	after := taskNamespaces(t)
	for deadline := time.Now().Add(5 * time.Second); len(after) > 1 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		after = taskNamespaces(t)
	}
	if len(after) != 1 || !slices.Equal(after, before) {
		t.Fatalf("namespaces of the threads: before %v, after %v", before, after)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), target) {
		t.Fatalf("probe mount visible in the process:\n%s", mi)
	}
}

// taskNamespaces lists the distinct mount namespaces of this process's
// threads.
func taskNamespaces(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		ns, err := os.Readlink(filepath.Join("/proc/self/task", e.Name(), "ns", "mnt"))
		if err != nil {
			continue // the thread just ended
		}
		if !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	slices.Sort(out)
	return out
}
