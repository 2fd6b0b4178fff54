package ship

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bay-sandbox/bay/runtimes/wire"
)

// quota enforces the cargo's size limit (Config.SizeLimitMB) on writes
// through the API: write_file, edit_file and upload are refused with 507
// cargo_full when the workspace would grow past it. Usage is the sum of
// the regular files' sizes, counted when a write needs it; what sandbox
// code writes through the shell or Python is not refused, but it counts,
// so the next API write past the limit is refused and says by how much.
type quota struct {
	limit int64 // bytes; 0 = none
	root  string
}

func (q quota) enabled() bool { return q.limit > 0 }

// usage walks the workspace.
func (q quota) usage() int64 {
	var n int64
	_ = filepath.WalkDir(q.root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished or unreadable: not ours to count
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// room is how many bytes may still be written when a file of size old is
// replaced; negative means over the limit already.
func (q quota) room(old int64) int64 {
	return q.limit - q.usage() + old
}

// check refuses growing by add bytes (after dropping old).
func (q quota) check(path string, old, add int64) error {
	if !q.enabled() {
		return nil
	}
	if room := q.room(old); add > room {
		return q.full(path, add, room)
	}
	return nil
}

func (q quota) full(path string, add, room int64) error {
	used := q.limit - room
	return &wire.APIError{
		Status: http.StatusInsufficientStorage, Code: wire.CodeCargoFull,
		Message: fmt.Sprintf("writing %s would exceed the cargo's size limit of %d MB (%d bytes used)", path, q.limit>>20, max(used, 0)),
		Details: map[string]any{"path": path, "size_limit_mb": q.limit >> 20, "used_bytes": max(used, 0), "write_bytes": add},
	}
}

// limitedReader fails once more than n bytes are read.
type limitedReader struct {
	r        io.Reader
	n        int64
	exceeded bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		l.exceeded = true
		return 0, errQuota
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		l.exceeded = true
		return n, errQuota
	}
	return n, err
}

var errQuota = fmt.Errorf("cargo size limit exceeded")

// oomCounter reads the oom_kill counter of a cgroup v1 memory.oom_control
// file; "" or an unreadable file counts 0.
type oomCounter string

func (o oomCounter) count() int {
	if o == "" {
		return 0
	}
	b, err := os.ReadFile(string(o))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
