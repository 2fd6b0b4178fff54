package ship

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/gofiber/fiber/v2"
)

// bodyReader is the request body as a stream: with StreamRequestBody the
// body is never buffered whole by fasthttp.
func bodyReader(c *fiber.Ctx) io.Reader {
	if r := c.Context().RequestBodyStream(); r != nil {
		return r
	}
	return bytes.NewReader(c.Body())
}

// decodeJSON reads a bounded JSON object body into v.
func decodeJSON(c *fiber.Ctx, v any) error { return decodeBody(c, v, false) }

// decodeBody is decodeJSON that may accept an empty body (all defaults).
func decodeBody(c *fiber.Ctx, v any, allowEmpty bool) error {
	raw, err := io.ReadAll(io.LimitReader(bodyReader(c), defaultJSONLimit+1))
	if err != nil {
		return validationErr("read request body: %v", err)
	}
	if len(raw) > defaultJSONLimit {
		return wire.NewAPIError(http.StatusRequestEntityTooLarge, "payload_too_large", "request body exceeds %d bytes", defaultJSONLimit)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		if allowEmpty {
			return nil
		}
		return validationErr("request body must be a JSON object")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return validationErr("invalid JSON body: %v", err)
	}
	return nil
}

func (s *Server) readFile(c *fiber.Ctx) error {
	var req ReadFileRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Offset < 0 || req.Limit < 0 {
		return validationErr("offset and limit must not be negative")
	}
	t, err := s.ws.resolve("path", req.Path, true)
	if err != nil {
		return err
	}
	f, fi, err := s.openRegular(t)
	if err != nil {
		return err
	}
	defer f.Close()
	var content []byte
	if req.Offset == 0 && req.Limit == 0 {
		if fi.Size() > s.cfg.ReadLimit {
			return validationErr("%s is %d bytes, more than read_file returns whole (%d); use offset/limit or download", t.rel, fi.Size(), s.cfg.ReadLimit)
		}
		if content, err = io.ReadAll(io.LimitReader(f, s.cfg.ReadLimit+1)); err != nil {
			return fsError("path", t, "read", err)
		}
		if int64(len(content)) > s.cfg.ReadLimit {
			return validationErr("%s grew past %d bytes while being read", t.rel, s.cfg.ReadLimit)
		}
	} else if content, err = readLines(f, req.Offset, req.Limit, s.cfg.ReadLimit); err != nil {
		if _, ok := err.(*wire.APIError); ok {
			return err
		}
		return fsError("path", t, "read", err)
	}
	if !utf8.Valid(content) {
		return &wire.APIError{Status: http.StatusBadRequest, Code: wire.CodeValidation,
			Message: t.rel + " is not UTF-8 text; use download for binary files",
			Details: map[string]any{"path": t.rel, "reason": "not_utf8"}}
	}
	return c.JSON(ReadFileResponse{Content: string(content), Path: t.rel, Size: fi.Size()})
}

// readLines returns lines offset.. (1-based, 0 = from the first) of r, at
// most limit of them (0 = to the end), keeping their line endings.
func readLines(r io.Reader, offset, limit int, max int64) ([]byte, error) {
	if offset == 0 {
		offset = 1
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var out []byte
	for line, taken := 1, 0; limit == 0 || taken < limit; line++ {
		b, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A very long line: gather it piecewise.
			full := append([]byte(nil), b...)
			for err == bufio.ErrBufferFull {
				b, err = br.ReadSlice('\n')
				if line >= offset {
					full = append(full, b...)
				}
				if int64(len(full)) > max {
					return nil, validationErr("selected lines exceed %d bytes", max)
				}
			}
			b = full
		}
		if line >= offset && len(b) > 0 {
			out = append(out, b...)
			taken++
			if int64(len(out)) > max {
				return nil, validationErr("selected lines exceed %d bytes", max)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// openRegular opens t for reading, refusing anything but a regular file
// before opening it (opening a FIFO would block the handler).
func (s *Server) openRegular(t target) (*os.File, fs.FileInfo, error) {
	fi, err := s.ws.root.Stat(t.real)
	if err != nil {
		return nil, nil, fsError("path", t, "stat", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, notAFile(t.rel)
	}
	f, err := s.ws.root.Open(t.real)
	if err != nil {
		return nil, nil, fsError("path", t, "open", err)
	}
	return f, fi, nil
}

func (s *Server) writeFile(c *fiber.Ctx) error {
	var req WriteFileRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	flag := os.O_WRONLY | os.O_CREATE
	switch req.Mode {
	case "", "w":
		flag |= os.O_TRUNC
	case "a":
		flag |= os.O_APPEND
	default:
		return validationErr("mode must be \"w\" or \"a\", not %q", req.Mode)
	}
	t, err := s.ws.resolve("path", req.Path, true)
	if err != nil {
		return err
	}
	if t.real == "." {
		return notAFile(t.rel)
	}
	if s.quota.enabled() {
		var old int64
		if fi, err := s.ws.root.Stat(t.real); err == nil && fi.Mode().IsRegular() && flag&os.O_TRUNC != 0 {
			old = fi.Size()
		}
		if err := s.quota.check(t.rel, old, int64(len(req.Content))); err != nil {
			return err
		}
	}
	if err := s.mkdirParents(t); err != nil {
		return err
	}
	if flag&os.O_TRUNC != 0 {
		// Replace: never leave a partial file behind.
		if fi, err := s.ws.root.Stat(t.real); err == nil && fi.IsDir() {
			return notAFile(t.rel)
		}
		perm := fs.FileMode(0o644)
		if fi, err := s.ws.root.Stat(t.real); err == nil {
			perm = fi.Mode().Perm()
		}
		size, err := s.writeAtomic(t, perm, func(w io.Writer) error {
			_, err := io.WriteString(w, req.Content)
			return err
		})
		if err != nil {
			return err
		}
		s.chown(t.real)
		return c.JSON(WriteFileResponse{Success: true, Path: t.rel, Size: size})
	}
	f, err := s.ws.root.OpenFile(t.real, flag, 0o644)
	if err != nil {
		return fsError("path", t, "open", err)
	}
	_, werr := io.WriteString(f, req.Content)
	fi, serr := f.Stat()
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fsError("path", t, "write", werr)
	}
	if serr != nil {
		return fsError("path", t, "stat", serr)
	}
	s.chown(t.real)
	return c.JSON(WriteFileResponse{Success: true, Path: t.rel, Size: fi.Size()})
}

// mkdirParents creates t's missing parent directories, owned by the run-as
// user when there is one.
func (s *Server) mkdirParents(t target) error {
	dir := filepath.Dir(t.real)
	if dir == "." {
		return nil
	}
	prefix := ""
	for _, part := range strings.Split(dir, "/") {
		prefix = filepath.Join(prefix, part)
		err := s.ws.root.Mkdir(prefix, 0o755)
		switch {
		case err == nil:
			s.chown(prefix)
		case errors.Is(err, fs.ErrExist):
			fi, serr := s.ws.root.Stat(prefix)
			if serr == nil && !fi.IsDir() {
				return validationErr("%s: parent %s is not a directory", t.rel, prefix)
			}
		default:
			return fsError("path", t, "create parent directory", err)
		}
	}
	return nil
}

func (s *Server) editFile(c *fiber.Ctx) error {
	var req EditFileRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.OldString == "" {
		return validationErr("old_string must not be empty")
	}
	t, err := s.ws.resolve("path", req.Path, true)
	if err != nil {
		return err
	}
	f, fi, err := s.openRegular(t)
	if err != nil {
		return err
	}
	if fi.Size() > s.cfg.ReadLimit {
		f.Close()
		return validationErr("%s is %d bytes, more than edit_file handles (%d)", t.rel, fi.Size(), s.cfg.ReadLimit)
	}
	raw, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return fsError("path", t, "read", err)
	}
	content := string(raw)
	n := strings.Count(content, req.OldString)
	switch {
	case n == 0:
		return &wire.APIError{Status: http.StatusBadRequest, Code: wire.CodeValidation,
			Message: "old_string not found in " + t.rel,
			Details: map[string]any{"path": t.rel, "reason": "not_found"}}
	case n > 1 && !req.ReplaceAll:
		return &wire.APIError{Status: http.StatusConflict, Code: wire.CodeConflict,
			Message: "old_string occurs more than once in " + t.rel + "; make it unique or set replace_all",
			Details: map[string]any{"path": t.rel, "occurrences": n}}
	}
	if !req.ReplaceAll {
		n = 1
	}
	updated := strings.Replace(content, req.OldString, req.NewString, n)
	if err := s.quota.check(t.rel, fi.Size(), int64(len(updated))); err != nil {
		return err
	}
	if _, err := s.writeAtomic(t, fi.Mode().Perm(), func(w io.Writer) error {
		_, err := io.WriteString(w, updated)
		return err
	}); err != nil {
		return err
	}
	return c.JSON(EditFileResponse{Success: true, Path: t.rel, Replacements: n, Size: int64(len(updated))})
}

func (s *Server) deleteFile(c *fiber.Ctx) error {
	var req DeleteFileRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	// The last component is not followed: deleting a symlink removes the
	// link, never what it points to.
	t, err := s.ws.resolve("path", req.Path, false)
	if err != nil {
		return err
	}
	if t.real == "." {
		return validationErr("refusing to delete the workspace root")
	}
	fi, err := s.ws.root.Lstat(t.real)
	if err != nil {
		return fsError("path", t, "stat", err)
	}
	if fi.IsDir() {
		err = s.ws.root.RemoveAll(t.real)
	} else {
		err = s.ws.root.Remove(t.real)
	}
	if err != nil {
		return fsError("path", t, "delete", err)
	}
	return c.JSON(DeleteFileResponse{Success: true, Path: t.rel})
}

func (s *Server) listDir(c *fiber.Ctx) error {
	var req ListDirRequest
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	if req.Path == "" {
		req.Path = "."
	}
	t, err := s.ws.resolve("path", req.Path, true)
	if err != nil {
		return err
	}
	fi, err := s.ws.root.Stat(t.real)
	if err != nil {
		return fsError("path", t, "stat", err)
	}
	if !fi.IsDir() {
		return &wire.APIError{Status: http.StatusBadRequest, Code: wire.CodeValidation,
			Message: t.rel + " is not a directory", Details: map[string]any{"path": t.rel, "reason": "not_a_directory"}}
	}
	d, err := s.ws.root.Open(t.real)
	if err != nil {
		return fsError("path", t, "open", err)
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return fsError("path", t, "list", err)
	}
	files := make([]FileInfo, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if !req.ShowHidden && strings.HasPrefix(name, ".") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // vanished meanwhile
		}
		if info.Mode()&os.ModeSymlink != 0 {
			// Describe what a link points to when it stays inside.
			if st, err := s.ws.root.Stat(filepath.Join(t.real, name)); err == nil {
				info = st
			}
		}
		rel := name
		if t.rel != "." {
			rel = t.rel + "/" + name
		}
		fi := FileInfo{
			Name:         name,
			Path:         rel,
			IsFile:       info.Mode().IsRegular(),
			IsDir:        info.IsDir(),
			ModifiedTime: info.ModTime().UTC().Format(time.RFC3339Nano),
		}
		if !fi.IsDir {
			size := info.Size()
			fi.Size = &size
		}
		files = append(files, fi)
	}
	sort.Slice(files, func(i, j int) bool {
		if files[i].IsDir != files[j].IsDir {
			return files[i].IsDir
		}
		return files[i].Name < files[j].Name
	})
	return c.JSON(ListDirResponse{Files: files, CurrentPath: t.rel})
}

// upload streams a multipart body into a temporary file next to its
// destination and renames it into place, so a failed upload never leaves a
// truncated file behind and the body is never held in memory.
func (s *Server) upload(c *fiber.Ctx) error {
	mediaType, params, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || !strings.HasPrefix(mediaType, "multipart/") || params["boundary"] == "" {
		return validationErr("upload needs a multipart/form-data body with fields file and file_path")
	}
	body := bodyReader(c)
	defer finishBody(c, body)
	mr := multipart.NewReader(body, params["boundary"])
	var (
		dest    *target
		tmp     string // real path relative to the root
		size    int64
		gotFile bool
	)
	cleanup := func() {
		if tmp != "" {
			_ = s.ws.root.Remove(tmp)
		}
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			cleanup()
			return validationErr("malformed multipart body: %v", err)
		}
		switch part.FormName() {
		case "file_path", "path":
			raw, err := io.ReadAll(io.LimitReader(part, 4097))
			if err != nil || len(raw) > 4096 {
				cleanup()
				return validationErr("file_path must be a path of at most 4096 bytes")
			}
			t, err := s.ws.resolve("file_path", string(raw), true)
			if err != nil {
				cleanup()
				return err
			}
			dest = &t
		case "file":
			if gotFile {
				cleanup()
				return validationErr("upload takes exactly one file part")
			}
			gotFile = true
			dir := "."
			if dest != nil {
				if err := s.mkdirParents(*dest); err != nil {
					return err
				}
				dir = filepath.Dir(dest.real)
			}
			var src io.Reader = part
			var lr *limitedReader
			if s.quota.enabled() {
				var old int64
				if dest != nil {
					if fi, err := s.ws.root.Stat(dest.real); err == nil && fi.Mode().IsRegular() {
						old = fi.Size()
					}
				}
				lr = &limitedReader{r: part, n: s.quota.room(old)}
				src = lr
			}
			tmp, size, err = s.receive(dir, src)
			if lr != nil && lr.exceeded {
				cleanup()
				name := "upload"
				if dest != nil {
					name = dest.rel
				}
				return s.quota.full(name, size+1, lr.n+size)
			}
			if err != nil {
				cleanup()
				return err
			}
		}
		part.Close()
	}
	if !gotFile {
		return validationErr("multipart field file is missing")
	}
	if dest == nil {
		cleanup()
		return invalidPath("file_path", reasonEmpty, "multipart field file_path is missing")
	}
	if dest.real == "." {
		cleanup()
		return notAFile(dest.rel)
	}
	if fi, err := s.ws.root.Stat(dest.real); err == nil && fi.IsDir() {
		cleanup()
		return notAFile(dest.rel)
	}
	if err := s.mkdirParents(*dest); err != nil {
		cleanup()
		return err
	}
	if err := s.ws.root.Rename(tmp, dest.real); err != nil {
		cleanup()
		return fsError("file_path", *dest, "move upload into place", err)
	}
	s.chown(dest.real)
	return c.JSON(UploadResponse{Success: true, FilePath: dest.rel, Size: size})
}

// finishBody consumes what is left of a streamed request body (the closing
// chunk of a chunked upload, an epilogue) so the connection can serve the
// next request; when much is left (an upload refused early), it closes the
// connection instead of reading a large body for nothing.
func finishBody(c *fiber.Ctx, body io.Reader) {
	n, err := io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	if err != nil || n == 64<<10 {
		c.Context().SetConnectionClose()
	}
}

// receive copies r into a new hidden temporary file in dir.
func (s *Server) receive(dir string, r io.Reader) (string, int64, error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	name := filepath.Join(dir, ".ship-upload-"+hex.EncodeToString(rnd[:]))
	f, err := s.ws.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", 0, fsError("file_path", target{rel: dir, real: dir}, "create upload file", err)
	}
	buf := make([]byte, 256<<10)
	cw := &countingWriter{w: f}
	n, err := io.CopyBuffer(cw, r, buf)
	if cerr := f.Close(); err == nil {
		err = cerr
		cw.err = cerr
	}
	if err != nil {
		_ = s.ws.root.Remove(name)
		if cw.err != nil {
			// The disk refused it, not the client.
			return "", 0, fsError("file_path", target{rel: dir, real: dir}, "write upload", cw.err)
		}
		return "", 0, validationErr("upload interrupted after %d bytes: %v", n, err)
	}
	return name, n, nil
}

func (s *Server) download(c *fiber.Ctx) error {
	p := c.Query("file_path")
	if p == "" {
		p = c.Query("path")
	}
	t, err := s.ws.resolve("file_path", p, true)
	if err != nil {
		return err
	}
	f, fi, err := s.openRegular(t)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/octet-stream")
	c.Set(fiber.HeaderContentDisposition, mime.FormatMediaType("attachment", map[string]string{"filename": filepath.Base(t.rel)}))
	// fasthttp streams from f and closes it when done.
	c.Response().SetBodyStream(f, int(fi.Size()))
	return nil
}
