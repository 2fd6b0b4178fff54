package ship

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/hashicorp/go-hclog"
)

func TestCargoSizeLimit(t *testing.T) {
	ws := t.TempDir()
	s, err := NewServer(Config{Workspace: ws, Python: "/usr/bin/python3", SizeLimitMB: 1}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)

	half := strings.Repeat("x", 512<<10)
	if st, e := call(t, s, "POST", "/fs/write_file", map[string]any{"path": "a.txt", "content": half}, nil); st != 200 {
		t.Fatalf("512 KiB under 1 MB: %d %v", st, e)
	}
	// Rewriting the same file replaces its bytes: still fits.
	if st, e := call(t, s, "POST", "/fs/write_file", map[string]any{"path": "a.txt", "content": half}, nil); st != 200 {
		t.Fatalf("rewrite: %d %v", st, e)
	}
	st, e := call(t, s, "POST", "/fs/write_file", map[string]any{"path": "b.txt", "content": half + half}, nil)
	if st != http.StatusInsufficientStorage || e.Code != wire.CodeCargoFull {
		t.Fatalf("1.5 MB in a 1 MB cargo: %d %v", st, e)
	}
	if _, err := os.Stat(filepath.Join(ws, "b.txt")); err == nil {
		t.Fatal("the refused write left a file")
	}
	// Appending past the limit.
	if st, e := call(t, s, "POST", "/fs/write_file", map[string]any{"path": "a.txt", "content": half + half, "mode": "a"}, nil); st != http.StatusInsufficientStorage {
		t.Fatalf("append past the limit: %d %v", st, e)
	}

	// An 8 MB upload is refused and leaves nothing behind.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("file_path", "big.bin")
	fw, _ := mw.CreateFormFile("file", "big.bin")
	_, _ = fw.Write(bytes.Repeat([]byte{1}, 8<<20))
	mw.Close()
	req := httptest.NewRequest("POST", "/fs/upload", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if st, e := do(t, s, req, nil); st != http.StatusInsufficientStorage || e.Code != wire.CodeCargoFull {
		t.Fatalf("8 MB upload into 1 MB: %d %v", st, e)
	}
	ents, _ := os.ReadDir(ws)
	for _, en := range ents {
		if en.Name() != "a.txt" && !strings.HasPrefix(en.Name(), ".") {
			t.Errorf("left behind: %s", en.Name())
		}
		if strings.HasPrefix(en.Name(), ".ship-upload-") {
			t.Errorf("left a temporary upload: %s", en.Name())
		}
	}
}
