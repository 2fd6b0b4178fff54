package local

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A record is what one session has running, kept on disk so that a gateway
// started after a crash can kill what the crashed one left behind. The
// parent-death signal already kills the direct children; the record catches
// their process groups (Python kernels, browsers) and any child the signal
// missed.
type record struct {
	SessionID string       `json:"session_id"`
	SandboxID string       `json:"sandbox_id"`
	Owner     owner        `json:"owner"`
	Procs     []recordProc `json:"procs"`
}

// owner identifies a gateway process; pid alone could be reused.
type owner struct {
	PID        int    `json:"pid"`
	StartTicks uint64 `json:"start_ticks"`
}

type recordProc struct {
	Container  string `json:"container"`
	PID        int    `json:"pid"` // also its session and process group id (Setsid)
	Binary     string `json:"binary"`
	StartTicks uint64 `json:"start_ticks"`
	Tag        string `json:"tag"`
}

// tagEnv marks every process of one runtime run, descendants included, with
// a value unique to that run.
const tagEnv = "BAY_LOCAL_TAG"

func currentOwner() (owner, error) {
	st, err := readProcStat(os.Getpid())
	if err != nil {
		return owner{}, fmt.Errorf("read own process status: %w", err)
	}
	return owner{PID: os.Getpid(), StartTicks: st.startTicks}, nil
}

func (a *Allocator) track(s *session, p *proc, name string) {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	s.live[p] = name
	a.writeRecord(s)
}

func (a *Allocator) untrack(s *session, p *proc) {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	delete(s.live, p)
	a.writeRecord(s)
}

// writeRecord rewrites the session's record from its live processes, or
// removes it when none is left. Callers hold s.recMu.
func (a *Allocator) writeRecord(s *session) {
	path := filepath.Join(recordsDir(a.cfg.DataDir), s.req.SessionID+".json")
	if len(s.live) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			a.log.Warn("remove session record", "session", s.req.SessionID, "error", err)
		}
		return
	}
	rec := record{SessionID: s.req.SessionID, SandboxID: s.req.SandboxID, Owner: a.self}
	for p, name := range s.live {
		rec.Procs = append(rec.Procs, recordProc{Container: name, PID: p.pid, Binary: p.binary, StartTicks: p.startTicks, Tag: p.tag})
	}
	b, err := json.Marshal(rec)
	if err == nil {
		err = writeFileAtomic(path, b)
	}
	if err != nil {
		a.log.Warn("write session record", "session", s.req.SessionID, "error", err)
	}
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// cleanupLeftovers kills the processes recorded by gateways that are no
// longer running and removes their records. A record whose gateway still
// runs (another allocator on the same data dir) is left alone.
func (a *Allocator) cleanupLeftovers() {
	dir := recordsDir(a.cfg.DataDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		a.log.Warn("read session records", "error", err)
		return
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if strings.HasSuffix(e.Name(), ".tmp") {
			_ = os.Remove(path)
			continue
		}
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			a.log.Warn("read session record", "path", path, "error", err)
			continue
		}
		var rec record
		if err := json.Unmarshal(b, &rec); err != nil {
			a.log.Warn("corrupt session record removed", "path", path, "error", err)
			_ = os.Remove(path)
			continue
		}
		if rec.Owner.PID > 0 && sameProcess(rec.Owner.PID, rec.Owner.StartTicks) {
			continue
		}
		for _, rp := range rec.Procs {
			if n := killLeftover(rp); n > 0 {
				a.log.Info("killed leftover processes of an earlier gateway", "session", rec.SessionID, "container", rp.Container, "session_leader", rp.PID, "count", n)
			}
		}
		_ = os.Remove(path)
	}
}

// killLeftover kills what is left of a recorded runtime run and returns how
// many processes it signalled. The leader is trusted only when its start
// time and binary match the record. Its session id is trusted only when the
// leader is gone or matches: Linux does not reuse a pid while a session or
// group of that id still has members, so members of a leaderless session
// are stragglers. The tag is unique to the run and always trusted.
func killLeftover(rp recordProc) int {
	if rp.PID <= 1 {
		return 0
	}
	sid := rp.PID
	n := 0
	if st, err := readProcStat(rp.PID); err == nil && st.state != "Z" {
		if st.startTicks != rp.StartTicks || !cmdlineMatches(rp.PID, rp.Binary) {
			sid = 0 // the pid now belongs to someone else
		} else {
			_ = syscall.Kill(-rp.PID, syscall.SIGKILL)
			_ = syscall.Kill(rp.PID, syscall.SIGKILL)
			waitGone([]int{rp.PID}, 2*time.Second)
			n++
		}
	}
	return n + sweep(sid, rp.Tag)
}

// sweep SIGKILLs every live process in session sid (0: none) or carrying
// tagEnv=tag in its environment ("": none), and waits for them to go.
func sweep(sid int, tag string) int {
	if sid <= 1 && tag == "" {
		return 0
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := os.Getpid()
	var marker []byte
	if tag != "" {
		marker = []byte(tagEnv + "=" + tag)
	}
	var killed []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil || st.state == "Z" {
			continue
		}
		if !(sid > 1 && st.session == sid) && !(marker != nil && environHas(pid, marker)) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
	}
	waitGone(killed, 2*time.Second)
	return len(killed)
}

func environHas(pid int, kv []byte) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	for entry := range bytes.SplitSeq(b, []byte{0}) {
		if bytes.Equal(entry, kv) {
			return true
		}
	}
	return false
}

func cmdlineMatches(pid int, binary string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	arg0, _, _ := bytes.Cut(b, []byte{0})
	return binary != "" && string(arg0) == binary
}

func sameProcess(pid int, startTicks uint64) bool {
	st, err := readProcStat(pid)
	return err == nil && st.state != "Z" && st.startTicks == startTicks
}

// processGone reports whether pid no longer runs (absent or a zombie).
func processGone(pid int) bool {
	st, err := readProcStat(pid)
	return err != nil || st.state == "Z" || st.state == "X"
}

func waitGone(pids []int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for _, pid := range pids {
		for !processGone(pid) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

type procStat struct {
	state      string
	pgrp       int
	session    int
	startTicks uint64
}

// readProcStat parses /proc/<pid>/stat (see proc(5)): fields after the
// parenthesised command name start at field 3 (state).
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	pgrp, err1 := strconv.Atoi(f[2])
	sid, err2 := strconv.Atoi(f[3])
	ticks, err3 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return procStat{state: f[0], pgrp: pgrp, session: sid, startTicks: ticks}, nil
}
