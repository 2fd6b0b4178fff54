package ship

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/bay-sandbox/bay/runtimes/wire"
)

// Client is the typed client of one Ship. A non-2xx answer is returned as
// *wire.Error; transport failures are returned as they are.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client for the Ship at baseURL (e.g.
// "http://127.0.0.1:8123"). With hc nil it uses keep-alive connections and
// no global timeout: each call's ctx governs.
func NewClient(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			// Runtimes are reached on loopback or a cluster network, never
			// through a proxy.
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        64,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	base, hc := wire.Endpoint(strings.TrimRight(baseURL, "/"), hc) // unix:// endpoints
	return &Client{base: base, hc: hc}
}

func (c *Client) do(ctx context.Context, method, p string, in, out any) error {
	return wire.DoJSON(ctx, c.hc, method, c.base+p, in, out)
}

// Health calls GET /health.
func (c *Client) Health(ctx context.Context) (wire.Health, error) {
	var h wire.Health
	return h, c.do(ctx, http.MethodGet, "/health", nil, &h)
}

// Meta calls GET /meta.
func (c *Client) Meta(ctx context.Context) (wire.Meta, error) {
	var m wire.Meta
	return m, c.do(ctx, http.MethodGet, "/meta", nil, &m)
}

// ReadFile reads a UTF-8 file (optionally a range of lines).
func (c *Client) ReadFile(ctx context.Context, req ReadFileRequest) (ReadFileResponse, error) {
	var r ReadFileResponse
	return r, c.do(ctx, http.MethodPost, "/fs/read_file", req, &r)
}

// WriteFile writes or appends text, creating parent directories.
func (c *Client) WriteFile(ctx context.Context, req WriteFileRequest) (WriteFileResponse, error) {
	var r WriteFileResponse
	return r, c.do(ctx, http.MethodPost, "/fs/write_file", req, &r)
}

// EditFile replaces an exact string in a file.
func (c *Client) EditFile(ctx context.Context, req EditFileRequest) (EditFileResponse, error) {
	var r EditFileResponse
	return r, c.do(ctx, http.MethodPost, "/fs/edit_file", req, &r)
}

// DeleteFile deletes a file, a symlink or a directory tree.
func (c *Client) DeleteFile(ctx context.Context, p string) error {
	return c.do(ctx, http.MethodPost, "/fs/delete_file", DeleteFileRequest{Path: p}, nil)
}

// ListDir lists a directory.
func (c *Client) ListDir(ctx context.Context, req ListDirRequest) (ListDirResponse, error) {
	var r ListDirResponse
	return r, c.do(ctx, http.MethodPost, "/fs/list_dir", req, &r)
}

// Upload streams r into the workspace file p as a multipart body, without
// holding it in memory. It returns once the Ship answered and r is no longer
// being read.
func (c *Client) Upload(ctx context.Context, p string, r io.Reader) (UploadResponse, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := mw.WriteField("file_path", p)
		if err == nil {
			var fw io.Writer
			if fw, err = mw.CreateFormFile("file", path.Base(p)); err == nil {
				if _, err = io.Copy(fw, r); err == nil {
					err = mw.Close()
				}
			}
		}
		pw.CloseWithError(err)
	}()
	var out UploadResponse
	err := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/fs/upload", pr)
		if err != nil {
			return fmt.Errorf("build request: %w", err)
		}
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := c.hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := wire.CheckResponse(resp); err != nil {
			return err
		}
		return decodeInto(resp.Body, &out)
	}()
	// Unblock the writer if the Ship answered before reading everything.
	pr.CloseWithError(io.ErrClosedPipe)
	<-done
	return out, err
}

// Download streams the workspace file p. The caller closes the body; size
// is its Content-Length, or -1 when unknown.
func (c *Client) Download(ctx context.Context, p string) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/fs/download?file_path="+url.QueryEscape(p), nil)
	if err != nil {
		return nil, 0, fmt.Errorf("build request: %w", err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	if err := wire.CheckResponse(resp); err != nil {
		resp.Body.Close()
		return nil, 0, err
	}
	return resp.Body, resp.ContentLength, nil
}

// PythonExec runs a cell in the Ship's persistent interpreter.
func (c *Client) PythonExec(ctx context.Context, req PythonExecRequest) (PythonExecResponse, error) {
	var r PythonExecResponse
	return r, c.do(ctx, http.MethodPost, "/ipython/exec", req, &r)
}

// KernelStatus reports the interpreter's state.
func (c *Client) KernelStatus(ctx context.Context) (KernelStatus, error) {
	var r KernelStatus
	return r, c.do(ctx, http.MethodGet, "/ipython/kernel/status", nil, &r)
}

// KernelRestart replaces the interpreter (all variables are lost).
func (c *Client) KernelRestart(ctx context.Context) (KernelStatus, error) {
	var r KernelStatus
	return r, c.do(ctx, http.MethodPost, "/ipython/kernel/restart", nil, &r)
}

// ShellExec runs a shell command (or starts it in the background).
func (c *Client) ShellExec(ctx context.Context, req ShellExecRequest) (ShellExecResponse, error) {
	var r ShellExecResponse
	return r, c.do(ctx, http.MethodPost, "/shell/exec", req, &r)
}

// Processes lists the background processes.
func (c *Client) Processes(ctx context.Context) ([]ProcessInfo, error) {
	var r ProcessList
	return r.Processes, c.do(ctx, http.MethodGet, "/shell/processes", nil, &r)
}

// Process returns a background process with its output so far.
func (c *Client) Process(ctx context.Context, id string) (ProcessOutput, error) {
	var r ProcessOutput
	return r, c.do(ctx, http.MethodGet, "/shell/processes/"+url.PathEscape(id), nil, &r)
}

// KillProcess kills a background process (its whole process group).
func (c *Client) KillProcess(ctx context.Context, id string) (ProcessOutput, error) {
	var r ProcessOutput
	return r, c.do(ctx, http.MethodPost, "/shell/processes/"+url.PathEscape(id)+"/kill", nil, &r)
}

func decodeInto(r io.Reader, v any) error {
	if err := json.NewDecoder(r).Decode(v); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}
