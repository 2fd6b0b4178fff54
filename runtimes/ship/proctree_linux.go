package ship

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// killTree kills a command and everything it started: its process group,
// every descendant (found through parent links, so children that called
// setsid or setpgid are included while their parent lives) and every
// process carrying the command's environment marker (so orphans that were
// re-parented away are found too). It repeats until nothing is left, since
// a dying tree can still fork.
func killTree(pid int, marker string) int {
	killed := map[int]bool{}
	for round := 0; round < 20; round++ {
		found := treeMembers(pid, marker)
		live := 0
		for _, p := range found {
			if err := syscall.Kill(p, syscall.SIGKILL); err == nil {
				live++
				killed[p] = true
			}
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		if live == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return len(killed)
}

type procStat struct {
	pid, ppid, pgrp int
	zombie          bool
}

// treeMembers lists the live processes that belong to the command rooted
// at root.
func treeMembers(root int, marker string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{root}
	}
	var all []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if st, ok := readStat(pid); ok && !st.zombie {
			all = append(all, st)
		}
	}
	in := map[int]bool{root: true}
	for _, st := range all {
		if st.pgrp == root || (marker != "" && hasMarker(st.pid, marker)) {
			in[st.pid] = true
		}
	}
	// Close over parent links.
	for changed := true; changed; {
		changed = false
		for _, st := range all {
			if !in[st.pid] && in[st.ppid] {
				in[st.pid] = true
				changed = true
			}
		}
	}
	out := make([]int, 0, len(in))
	for _, st := range all {
		if in[st.pid] {
			out = append(out, st.pid)
		}
	}
	return out
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	pgrp, _ := strconv.Atoi(f[2])
	return procStat{pid: pid, ppid: ppid, pgrp: pgrp, zombie: f[0] == "Z" || f[0] == "X"}, true
}

func hasMarker(pid int, marker string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if string(kv) == marker {
			return true
		}
	}
	return false
}
