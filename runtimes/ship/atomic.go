package ship

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// writeAtomic replaces t's file with what fill writes, through a hidden
// temporary file in the same directory renamed over it: a failed write
// (a full disk) leaves the old file, or none, never a partial one.
func (s *Server) writeAtomic(t target, perm fs.FileMode, fill func(w io.Writer) error) (int64, error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(filepath.Dir(t.real), ".ship-write-"+hex.EncodeToString(rnd[:]))
	f, err := s.ws.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return 0, fsError("path", t, "create", err)
	}
	cw := &countingWriter{w: f}
	werr := fill(cw)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = s.ws.root.Rename(tmp, t.real)
	}
	if werr != nil {
		_ = s.ws.root.Remove(tmp)
		return 0, fsError("path", t, "write", werr)
	}
	return cw.n, nil
}

type countingWriter struct {
	w   io.Writer
	n   int64
	err error // the first write error: the disk's, not the source's
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

// diskFull reports a write refused for lack of space or quota.
func diskFull(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno) && (errno == syscall.ENOSPC || errno == syscall.EDQUOT)
}
