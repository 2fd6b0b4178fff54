package sandbox

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"syscall"
)

// cgroups manages per-container cgroups under cgroup v1 controllers.
type cgroups struct {
	root, prefix string
	ok           bool
}

func newCgroups(root, prefix string) *cgroups {
	if root == "" {
		root = "/sys/fs/cgroup"
	}
	if prefix == "" {
		prefix = "bay"
	}
	c := &cgroups{root: root, prefix: prefix}
	c.ok = true
	for _, ctrl := range []string{"memory", "pids", "cpu"} {
		d := filepath.Join(root, ctrl)
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err != nil || syscall.Access(d, 2) != nil {
			c.ok = false
			break
		}
		if err := os.MkdirAll(filepath.Join(d, prefix), 0o755); err != nil {
			c.ok = false
			break
		}
	}
	return c
}

func (c *cgroups) usable() bool { return c != nil && c.ok }

type containerCgroup struct {
	dirs []string // one per controller
	mem  string   // the memory controller's dir
	oom0 int      // oom_kill count when created
}

func (c *cgroups) create(name string, lim Limits) (*containerCgroup, error) {
	cg := &containerCgroup{}
	for _, ctrl := range []string{"memory", "pids", "cpu"} {
		d := filepath.Join(c.root, ctrl, c.prefix, name)
		// A leftover of a crashed run (same session and container) is
		// reused: it is empty once its processes are gone.
		if err := os.MkdirAll(d, 0o755); err != nil {
			cg.remove()
			return nil, fmt.Errorf("create cgroup: %w", err)
		}
		cg.dirs = append(cg.dirs, d)
		var err error
		switch ctrl {
		case "memory":
			cg.mem = d
			if lim.MemoryBytes > 0 {
				err = write(d, "memory.limit_in_bytes", strconv.FormatInt(lim.MemoryBytes, 10))
				if err == nil {
					// With swap, the limit must cover it too or the
					// sandbox swaps instead of hitting its limit.
					if _, serr := os.Stat(filepath.Join(d, "memory.memsw.limit_in_bytes")); serr == nil {
						err = write(d, "memory.memsw.limit_in_bytes", strconv.FormatInt(lim.MemoryBytes, 10))
					}
				}
			}
		case "pids":
			pids := lim.Pids
			if pids <= 0 {
				pids = DefaultPids
			}
			err = write(d, "pids.max", strconv.Itoa(pids))
		case "cpu":
			if lim.CPUShares > 0 {
				err = write(d, "cpu.shares", strconv.Itoa(max(2, lim.CPUShares)))
			}
		}
		if err != nil {
			cg.remove()
			return nil, fmt.Errorf("set %s limit: %w", ctrl, err)
		}
	}
	cg.oom0 = cg.readOOMKills()
	return cg, nil
}

func write(dir, file, val string) error {
	return os.WriteFile(filepath.Join(dir, file), []byte(val), 0o644)
}

func (cg *containerCgroup) procsFiles() []string {
	out := make([]string, 0, len(cg.dirs))
	for _, d := range cg.dirs {
		out = append(out, filepath.Join(d, "cgroup.procs"))
	}
	return out
}

// readOOMKills is memory.oom_control's oom_kill counter (kernel ≥ 4.13).
func (cg *containerCgroup) readOOMKills() int {
	f, err := os.Open(filepath.Join(cg.mem, "memory.oom_control"))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

func (cg *containerCgroup) oomKills() int { return cg.readOOMKills() - cg.oom0 }

// remove deletes the cgroups, waiting briefly for exiting processes to
// leave them (rmdir fails with EBUSY until they have).
func (cg *containerCgroup) remove() {
	for _, d := range cg.dirs {
		for i := 0; i < 50; i++ {
			err := os.Remove(d)
			if err == nil || os.IsNotExist(err) {
				break
			}
			// Anything still inside is killed: nothing outlives its container.
			if b, rerr := os.ReadFile(filepath.Join(d, "cgroup.procs")); rerr == nil {
				for _, f := range strings.Fields(string(b)) {
					if pid, _ := strconv.Atoi(f); pid > 0 {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
