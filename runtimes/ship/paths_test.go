package ship

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bay-sandbox/bay/runtimes/wire"
)

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	ws, err := openWorkspace(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "sub", "deep"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "sub", "f.txt"), []byte("x"), 0o644))
	must(os.Symlink("/etc", filepath.Join(dir, "etc")))
	must(os.Symlink(outside, filepath.Join(dir, "out")))
	must(os.Symlink("../../", filepath.Join(dir, "sub", "up")))
	must(os.Symlink("sub/deep", filepath.Join(dir, "in")))
	must(os.Symlink(filepath.Join(dir, "sub"), filepath.Join(dir, "absin")))
	must(os.Symlink(filepath.Join(outside, "new.txt"), filepath.Join(dir, "dangling")))
	must(os.Symlink("loop2", filepath.Join(dir, "loop1")))
	must(os.Symlink("loop1", filepath.Join(dir, "loop2")))

	cases := []struct {
		in       string
		follow   bool
		wantReal string
		reason   string
	}{
		{in: "", reason: reasonEmpty},
		{in: "a\x00b", reason: reasonNullByte},
		{in: "/etc/passwd", reason: reasonAbsolute},
		{in: "../x", reason: reasonTraversal},
		{in: "..", reason: reasonTraversal},
		{in: "sub/../../x", reason: reasonTraversal},
		{in: "etc/passwd", follow: true, reason: reasonSymlinkEscpe},
		{in: "etc", follow: true, reason: reasonSymlinkEscpe},
		{in: "out/new.txt", follow: true, reason: reasonSymlinkEscpe},
		{in: "sub/up/x", follow: true, reason: reasonSymlinkEscpe},
		{in: "dangling", follow: true, reason: reasonSymlinkEscpe},
		{in: "loop1", follow: true, reason: reasonSymlinkEscpe},
		// Not following the last component: the link itself is the target.
		{in: "etc", follow: false, wantReal: "etc"},
		{in: "dangling", follow: false, wantReal: "dangling"},
		{in: ".", follow: true, wantReal: "."},
		{in: "a/../b", follow: true, wantReal: "b"},
		{in: "./sub//f.txt", follow: true, wantReal: "sub/f.txt"},
		{in: "in/new.txt", follow: true, wantReal: "sub/deep/new.txt"},
		{in: "absin/f.txt", follow: true, wantReal: "sub/f.txt"},
		{in: "missing/dir/x", follow: true, wantReal: "missing/dir/x"},
		{in: filepath.Join(dir, "sub", "f.txt"), follow: true, wantReal: "sub/f.txt"},
		{in: dir, follow: true, wantReal: "."},
	}
	for _, tc := range cases {
		got, err := ws.resolve("path", tc.in, tc.follow)
		if tc.reason != "" {
			ae, ok := err.(*wire.APIError)
			if !ok {
				t.Errorf("resolve(%q) = %+v, %v; want invalid_path/%s", tc.in, got, err, tc.reason)
				continue
			}
			if ae.Code != wire.CodeInvalidPath || ae.Details["reason"] != tc.reason || ae.Details["field"] != "path" {
				t.Errorf("resolve(%q): %s %v; want reason %s", tc.in, ae.Code, ae.Details, tc.reason)
			}
			continue
		}
		if err != nil {
			t.Errorf("resolve(%q): %v", tc.in, err)
			continue
		}
		if got.real != tc.wantReal {
			t.Errorf("resolve(%q).real = %q, want %q", tc.in, got.real, tc.wantReal)
		}
	}
}
