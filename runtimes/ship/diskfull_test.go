package ship

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/bay-sandbox/bay/runtimes/wire"
)

// TestDiskFullIsAnAnswerAndLosesNothing: on a full workspace, write_file,
// edit_file and upload answer 507 insufficient_storage, and the file that
// was there keeps its old content (writes go through temp file + rename).
func TestDiskFullIsAnAnswerAndLosesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as the workspace")
	}
	ws := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", ws).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { _ = syscall.Unmount(ws, syscall.MNT_DETACH) })
	sp := startShip(t, shipOpts{workspace: ws})
	ctx := ctxT(t, 60e9)
	old := strings.Repeat("o", 100<<10)
	if _, err := sp.client.WriteFile(ctx, WriteFileRequest{Path: "keep.txt", Content: old}); err != nil {
		t.Fatal(err)
	}
	want507 := func(what string, err error) {
		t.Helper()
		we, ok := wire.AsError(err)
		if !ok || we.Status != 507 || we.Code != "insufficient_storage" {
			t.Fatalf("%s on a full disk: %v", what, err)
		}
	}
	big := strings.Repeat("n", 1<<20)
	_, err := sp.client.WriteFile(ctx, WriteFileRequest{Path: "keep.txt", Content: big})
	want507("write_file", err)
	_, err = sp.client.EditFile(ctx, EditFileRequest{Path: "keep.txt", OldString: old, NewString: big})
	want507("edit_file", err)
	_, err = sp.client.Upload(ctx, "up.bin", bytes.NewReader([]byte(big)))
	want507("upload", err)
	got, err := os.ReadFile(ws + "/keep.txt")
	if err != nil || string(got) != old {
		t.Fatalf("keep.txt changed by failed writes (%d bytes, %v)", len(got), err)
	}
	ents, _ := os.ReadDir(ws)
	for _, e := range ents {
		// EnvFile is Ship's own, written at start before the disk filled.
		if e.Name() != "keep.txt" && e.Name() != EnvFile {
			t.Fatalf("left behind: %s", e.Name())
		}
	}
}
