package sandbox

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestSessionsBackToBack starts sessions with egress one after another: it
// caught slirp4netns racing bwrap configuring the holder's loopback.
func TestSessionsBackToBack(t *testing.T) {
	l := newLauncher(t, Config{})
	ws := workspace(t, l)
	for i := 0; i < 20; i++ {
		dir, _ := os.MkdirTemp("", "bay-sbx-t-")
		var log syncBuffer
		s, err := l.StartSession(context.Background(), SessionSpec{ID: filepath.Base(dir), Dir: dir, Network: NetworkEgress, Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := s.Container(ContainerSpec{Name: "x", Workspace: ws, Path: "/bin/true"})
		var out bytes.Buffer
		c.Cmd.Stdout, c.Cmd.Stderr = &out, &out
		if err := c.Cmd.Run(); err != nil {
			t.Errorf("%d: %v %s holder alive=%v log=%s", i, err, out.String(), s.Alive(), log.String())
		}
		c.Release()
		s.Close()
	}
}
