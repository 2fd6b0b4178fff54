package ship

import (
	"bytes"
	"encoding/json"
	"io"
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

// newTestServer is a Ship on a fresh workspace driven in-process.
func newTestServer(t *testing.T) (*Server, string) {
	t.Helper()
	ws := t.TempDir()
	s, err := NewServer(Config{Workspace: ws, Python: "/usr/bin/python3"}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, ws
}

// call sends body as JSON and decodes the answer into out (when 2xx) or
// returns the error envelope.
func call(t *testing.T, s *Server, method, path string, body, out any) (int, wire.ErrorDetail) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, r)
	req.Header.Set("Content-Type", "application/json")
	return do(t, s, req, out)
}

func do(t *testing.T, s *Server, req *http.Request, out any) (int, wire.ErrorDetail) {
	t.Helper()
	resp, err := s.App().Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var eb wire.ErrorBody
		if err := json.Unmarshal(raw, &eb); err != nil || eb.Error.Code == "" {
			t.Fatalf("%s %s: %d with a body outside the envelope: %s", req.Method, req.URL, resp.StatusCode, raw)
		}
		return resp.StatusCode, eb.Error
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
	}
	return resp.StatusCode, wire.ErrorDetail{}
}

func wantErr(t *testing.T, what string, status int, e wire.ErrorDetail, wantStatus int, wantCode, wantReason string) {
	t.Helper()
	if status != wantStatus || e.Code != wantCode {
		t.Errorf("%s: got %d %s (%s), want %d %s", what, status, e.Code, e.Message, wantStatus, wantCode)
		return
	}
	if wantReason != "" && e.Details["reason"] != wantReason {
		t.Errorf("%s: reason %v, want %s", what, e.Details["reason"], wantReason)
	}
}

func TestWriteReadEditDelete(t *testing.T) {
	s, ws := newTestServer(t)
	var w WriteFileResponse
	if st, e := call(t, s, "POST", "/fs/write_file", WriteFileRequest{Path: "a/b/c.txt", Content: "one\ntwo\n"}, &w); st != 200 {
		t.Fatalf("write: %d %+v", st, e)
	}
	if !w.Success || w.Path != "a/b/c.txt" || w.Size != 8 {
		t.Fatalf("write = %+v", w)
	}
	call(t, s, "POST", "/fs/write_file", WriteFileRequest{Path: "a/b/c.txt", Content: "three\nfour\n", Mode: "a"}, &w)
	if w.Size != 19 {
		t.Fatalf("append size = %d", w.Size)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "a/b/c.txt")); string(b) != "one\ntwo\nthree\nfour\n" {
		t.Fatalf("on disk: %q", b)
	}

	var r ReadFileResponse
	call(t, s, "POST", "/fs/read_file", ReadFileRequest{Path: "a/b/c.txt"}, &r)
	if r.Content != "one\ntwo\nthree\nfour\n" || r.Size != 19 {
		t.Fatalf("read = %+v", r)
	}
	call(t, s, "POST", "/fs/read_file", ReadFileRequest{Path: "./a/b/../b/c.txt", Offset: 2, Limit: 2}, &r)
	if r.Content != "two\nthree\n" || r.Path != "a/b/c.txt" {
		t.Fatalf("read lines 2-3 = %+v", r)
	}
	call(t, s, "POST", "/fs/read_file", ReadFileRequest{Path: "a/b/c.txt", Limit: 1}, &r)
	if r.Content != "one\n" {
		t.Fatalf("read limit 1 = %q", r.Content)
	}
	call(t, s, "POST", "/fs/read_file", ReadFileRequest{Path: "a/b/c.txt", Offset: 10}, &r)
	if r.Content != "" {
		t.Fatalf("read past end = %q", r.Content)
	}
	// Absolute paths inside the workspace are accepted.
	call(t, s, "POST", "/fs/read_file", ReadFileRequest{Path: filepath.Join(ws, "a/b/c.txt"), Offset: 4}, &r)
	if r.Content != "four\n" {
		t.Fatalf("absolute read = %q", r.Content)
	}

	var ed EditFileResponse
	st, e := call(t, s, "POST", "/fs/edit_file", EditFileRequest{Path: "a/b/c.txt", OldString: "o", NewString: "0"}, &ed)
	wantErr(t, "ambiguous edit", st, e, 409, wire.CodeConflict, "")
	st, e = call(t, s, "POST", "/fs/edit_file", EditFileRequest{Path: "a/b/c.txt", OldString: "zzz", NewString: "0"}, &ed)
	wantErr(t, "edit not found", st, e, 400, wire.CodeValidation, "not_found")
	call(t, s, "POST", "/fs/edit_file", EditFileRequest{Path: "a/b/c.txt", OldString: "two", NewString: "TWO"}, &ed)
	if ed.Replacements != 1 {
		t.Fatalf("edit = %+v", ed)
	}
	call(t, s, "POST", "/fs/edit_file", EditFileRequest{Path: "a/b/c.txt", OldString: "o", NewString: "0", ReplaceAll: true}, &ed)
	if b, _ := os.ReadFile(filepath.Join(ws, "a/b/c.txt")); string(b) != "0ne\nTWO\nthree\nf0ur\n" || ed.Replacements != 2 || ed.Size != 19 {
		t.Fatalf("after edits: %q %+v", b, ed)
	}

	// Errors: missing file, directory, bad mode, not UTF-8.
	st, e = call(t, s, "POST", "/fs/read_file", ReadFileRequest{Path: "nope.txt"}, nil)
	wantErr(t, "read missing", st, e, 404, wire.CodeFileNotFound, "")
	st, e = call(t, s, "POST", "/fs/read_file", ReadFileRequest{Path: "a/b/c.txt/x"}, nil)
	wantErr(t, "read under a file", st, e, 404, wire.CodeFileNotFound, "")
	st, e = call(t, s, "POST", "/fs/read_file", ReadFileRequest{Path: "a"}, nil)
	wantErr(t, "read dir", st, e, 400, wire.CodeNotAFile, "")
	st, e = call(t, s, "POST", "/fs/write_file", WriteFileRequest{Path: "a", Content: "x"}, nil)
	wantErr(t, "write over dir", st, e, 400, wire.CodeNotAFile, "")
	st, e = call(t, s, "POST", "/fs/write_file", WriteFileRequest{Path: "x", Content: "x", Mode: "rw"}, nil)
	wantErr(t, "bad mode", st, e, 400, wire.CodeValidation, "")
	os.WriteFile(filepath.Join(ws, "bin.dat"), []byte{0xff, 0xfe, 0x00}, 0o644)
	st, e = call(t, s, "POST", "/fs/read_file", ReadFileRequest{Path: "bin.dat"}, nil)
	wantErr(t, "binary read", st, e, 400, wire.CodeValidation, "not_utf8")
	st, e = call(t, s, "POST", "/fs/read_file", nil, nil)
	wantErr(t, "no body", st, e, 400, wire.CodeValidation, "")
	st, e = call(t, s, "POST", "/fs/read_file", map[string]any{"path": 12}, nil)
	wantErr(t, "wrong type", st, e, 400, wire.CodeValidation, "")

	// Delete: file, then a tree, then missing, then the root.
	var d DeleteFileResponse
	call(t, s, "POST", "/fs/delete_file", DeleteFileRequest{Path: "a/b/c.txt"}, &d)
	if _, err := os.Stat(filepath.Join(ws, "a/b/c.txt")); !os.IsNotExist(err) || !d.Success {
		t.Fatalf("file still there: %v", err)
	}
	call(t, s, "POST", "/fs/delete_file", DeleteFileRequest{Path: "a"}, &d)
	if _, err := os.Stat(filepath.Join(ws, "a")); !os.IsNotExist(err) {
		t.Fatalf("dir still there: %v", err)
	}
	st, e = call(t, s, "POST", "/fs/delete_file", DeleteFileRequest{Path: "a"}, nil)
	wantErr(t, "delete missing", st, e, 404, wire.CodeFileNotFound, "")
	st, e = call(t, s, "POST", "/fs/delete_file", DeleteFileRequest{Path: "."}, nil)
	wantErr(t, "delete root", st, e, 400, wire.CodeValidation, "")
	if _, err := os.Stat(ws); err != nil {
		t.Fatalf("workspace gone: %v", err)
	}
}

func TestListDir(t *testing.T) {
	s, ws := newTestServer(t)
	os.MkdirAll(filepath.Join(ws, "zdir"), 0o755)
	os.MkdirAll(filepath.Join(ws, "adir", "inner"), 0o755)
	os.WriteFile(filepath.Join(ws, "b.txt"), []byte("12345"), 0o644)
	os.WriteFile(filepath.Join(ws, "a.txt"), []byte("1"), 0o644)
	os.WriteFile(filepath.Join(ws, ".hidden"), []byte("h"), 0o644)
	os.WriteFile(filepath.Join(ws, "adir", "x.py"), []byte("print()"), 0o644)

	var l ListDirResponse
	call(t, s, "POST", "/fs/list_dir", ListDirRequest{}, &l)
	var names []string
	for _, f := range l.Files {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "adir,zdir,a.txt,b.txt" || l.CurrentPath != "." {
		t.Fatalf("list = %s (%s)", got, l.CurrentPath)
	}
	dir, file := l.Files[0], l.Files[3]
	if !dir.IsDir || dir.IsFile || dir.Size != nil || dir.Path != "adir" {
		t.Fatalf("dir entry = %+v", dir)
	}
	if file.IsDir || !file.IsFile || file.Size == nil || *file.Size != 5 || !strings.HasSuffix(file.ModifiedTime, "Z") {
		t.Fatalf("file entry = %+v", file)
	}
	call(t, s, "POST", "/fs/list_dir", ListDirRequest{ShowHidden: true}, &l)
	// Hidden entries include the env file Ship wrote at start.
	if len(l.Files) != 6 || l.Files[2].Name != EnvFile || l.Files[3].Name != ".hidden" {
		t.Fatalf("with hidden = %+v", l.Files)
	}
	// An empty body lists the root.
	req := httptest.NewRequest("POST", "/fs/list_dir", nil)
	if st, _ := do(t, s, req, &l); st != 200 || len(l.Files) != 4 {
		t.Fatalf("empty body: %d %+v", st, l)
	}
	call(t, s, "POST", "/fs/list_dir", ListDirRequest{Path: "adir"}, &l)
	if len(l.Files) != 2 || l.Files[0].Path != "adir/inner" || l.Files[1].Path != "adir/x.py" || l.CurrentPath != "adir" {
		t.Fatalf("subdir = %+v", l)
	}
	st, e := call(t, s, "POST", "/fs/list_dir", ListDirRequest{Path: "nope"}, nil)
	wantErr(t, "list missing", st, e, 404, wire.CodeFileNotFound, "")
	st, e = call(t, s, "POST", "/fs/list_dir", ListDirRequest{Path: "a.txt"}, nil)
	wantErr(t, "list file", st, e, 400, wire.CodeValidation, "not_a_directory")
}

// TestPathEscapes sends every escape through every file endpoint and checks
// nothing outside the workspace was read, written or deleted.
func TestPathEscapes(t *testing.T) {
	s, ws := newTestServer(t)
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.txt")
	os.WriteFile(secret, []byte("secret"), 0o644)
	os.Symlink("/etc", filepath.Join(ws, "etc"))
	os.Symlink(outside, filepath.Join(ws, "out"))
	os.Symlink(secret, filepath.Join(ws, "secret-link"))
	os.Symlink(filepath.Join(outside, "planted.txt"), filepath.Join(ws, "dangling"))

	cases := []struct{ path, reason string }{
		{"../secret.txt", reasonTraversal},
		{"a/../../x", reasonTraversal},
		{secret, reasonAbsolute},
		{"/etc/passwd", reasonAbsolute},
		{"etc/passwd", reasonSymlinkEscpe},
		{"out/secret.txt", reasonSymlinkEscpe},
		{"secret-link", reasonSymlinkEscpe},
		{"dangling", reasonSymlinkEscpe},
		{"", reasonEmpty},
		{"x\x00y", reasonNullByte},
	}
	for _, tc := range cases {
		for _, ep := range []struct {
			path string
			body any
		}{
			{"/fs/read_file", ReadFileRequest{Path: tc.path}},
			{"/fs/write_file", WriteFileRequest{Path: tc.path, Content: "pwned"}},
			{"/fs/edit_file", EditFileRequest{Path: tc.path, OldString: "secret", NewString: "pwned"}},
			{"/fs/list_dir", map[string]any{"path": tc.path}},
		} {
			if ep.path == "/fs/list_dir" && tc.path == "" {
				continue // empty means "." there
			}
			st, e := call(t, s, "POST", ep.path, ep.body, nil)
			wantErr(t, ep.path+" "+tc.path, st, e, 400, wire.CodeInvalidPath, tc.reason)
		}
		req := httptest.NewRequest("GET", "/fs/download?file_path="+urlQuery(tc.path), nil)
		st, e := do(t, s, req, nil)
		wantErr(t, "download "+tc.path, st, e, 400, wire.CodeInvalidPath, tc.reason)

		st, e = uploadTo(t, s, tc.path, "pwned")
		wantErr(t, "upload "+tc.path, st, e, 400, wire.CodeInvalidPath, tc.reason)
	}
	// Shell cwd is confined too.
	st, e := call(t, s, "POST", "/shell/exec", ShellExecRequest{Command: "pwd", Cwd: "etc"}, nil)
	wantErr(t, "shell cwd", st, e, 400, wire.CodeInvalidPath, reasonSymlinkEscpe)
	if e.Details["field"] != "cwd" {
		t.Errorf("cwd error names field %v", e.Details["field"])
	}

	// Deleting a link that points out removes the link, never the target.
	var d DeleteFileResponse
	if st, e := call(t, s, "POST", "/fs/delete_file", DeleteFileRequest{Path: "secret-link"}, &d); st != 200 {
		t.Fatalf("delete link: %d %+v", st, e)
	}
	st, e = call(t, s, "POST", "/fs/delete_file", DeleteFileRequest{Path: "out/secret.txt"}, nil)
	wantErr(t, "delete through link", st, e, 400, wire.CodeInvalidPath, reasonSymlinkEscpe)
	if b, err := os.ReadFile(secret); err != nil || string(b) != "secret" {
		t.Fatalf("secret changed: %q %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(outside, "planted.txt")); !os.IsNotExist(err) {
		t.Fatalf("file planted outside through a dangling link")
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Fatalf("/etc/passwd: %v", err)
	}
}

func urlQuery(s string) string {
	r := strings.NewReplacer("%", "%25", "&", "%26", "+", "%2B", " ", "%20", "\x00", "%00", "#", "%23", "?", "%3F")
	return r.Replace(s)
}

func uploadTo(t *testing.T, s *Server, path, content string) (int, wire.ErrorDetail) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("file_path", path)
	fw, _ := mw.CreateFormFile("file", "f")
	fw.Write([]byte(content))
	mw.Close()
	req := httptest.NewRequest("POST", "/fs/upload", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	var out UploadResponse
	st, e := do(t, s, req, &out)
	if st == 200 && (!out.Success || out.Size != int64(len(content))) {
		t.Fatalf("upload = %+v", out)
	}
	return st, e
}

func TestUploadDownloadInProcess(t *testing.T) {
	s, ws := newTestServer(t)
	if st, e := uploadTo(t, s, "up/dir/data.bin", "payload\x00\x01"); st != 200 {
		t.Fatalf("upload: %d %+v", st, e)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "up/dir/data.bin")); string(b) != "payload\x00\x01" {
		t.Fatalf("uploaded %q", b)
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(filepath.Join(ws, "up/dir"))
	if len(ents) != 1 {
		t.Fatalf("leftovers: %v", ents)
	}
	// file part before file_path still lands in place.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "f")
	fw.Write([]byte("late path"))
	mw.WriteField("file_path", "late.txt")
	mw.Close()
	req := httptest.NewRequest("POST", "/fs/upload", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if st, e := do(t, s, req, nil); st != 200 {
		t.Fatalf("late path upload: %d %+v", st, e)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "late.txt")); string(b) != "late path" {
		t.Fatalf("late.txt = %q", b)
	}
	// Missing file part / not multipart.
	buf.Reset()
	mw = multipart.NewWriter(&buf)
	mw.WriteField("file_path", "x.txt")
	mw.Close()
	req = httptest.NewRequest("POST", "/fs/upload", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	st, e := do(t, s, req, nil)
	wantErr(t, "no file part", st, e, 400, wire.CodeValidation, "")
	st, e = call(t, s, "POST", "/fs/upload", map[string]string{"a": "b"}, nil)
	wantErr(t, "json upload", st, e, 400, wire.CodeValidation, "")

	resp, err := s.App().Test(httptest.NewRequest("GET", "/fs/download?file_path=up/dir/data.bin", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "payload\x00\x01" ||
		resp.Header.Get("Content-Type") != "application/octet-stream" ||
		resp.Header.Get("Content-Disposition") != `attachment; filename=data.bin` {
		t.Fatalf("download: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	st, e = do(t, s, httptest.NewRequest("GET", "/fs/download?file_path=missing", nil), nil)
	wantErr(t, "download missing", st, e, 404, wire.CodeFileNotFound, "")
	st, e = do(t, s, httptest.NewRequest("GET", "/fs/download?file_path=up", nil), nil)
	wantErr(t, "download dir", st, e, 400, wire.CodeNotAFile, "")
	st, e = do(t, s, httptest.NewRequest("GET", "/no/such/route", nil), nil)
	wantErr(t, "unknown route", st, e, 404, "not_found", "")
}
