package client

import (
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
)

// ReadFile returns a UTF-8 file of the workspace (path relative to it).
func (c *Client) ReadFile(ctx context.Context, id, p string) (string, error) {
	var r struct {
		Content string `json:"content"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: sbPath(id, "/filesystem/files"), query: url.Values{"path": {p}}}, &r)
	return r.Content, err
}

// WriteFile writes a UTF-8 file, creating its parent directories.
func (c *Client) WriteFile(ctx context.Context, id, p, content string) error {
	return c.do(ctx, request{method: http.MethodPut, path: sbPath(id, "/filesystem/files"),
		json: map[string]string{"path": p, "content": content}}, nil)
}

// DeleteFile deletes a file or (recursively) a directory.
func (c *Client) DeleteFile(ctx context.Context, id, p string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: sbPath(id, "/filesystem/files"), query: url.Values{"path": {p}}}, nil)
}

// ListFiles lists a directory: directories first, then by name.
func (c *Client) ListFiles(ctx context.Context, id, p string) ([]DirEntry, error) {
	if p == "" {
		p = "."
	}
	var r struct {
		Entries []DirEntry `json:"entries"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: sbPath(id, "/filesystem/directories"), query: url.Values{"path": {p}}}, &r)
	return r.Entries, err
}

// Upload streams r to the workspace file p (never held whole in memory).
// An upload is not retried: its body cannot be replayed.
func (c *Client) Upload(ctx context.Context, id, p string, r io.Reader) (*UploadResult, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		// The path goes first so the gateway can stream the file through.
		err := mw.WriteField("path", p)
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
	var res UploadResult
	err := c.do(ctx, request{method: http.MethodPost, path: sbPath(id, "/filesystem/upload"), body: pr,
		contentType: mw.FormDataContentType()}, &res)
	pr.CloseWithError(fmt.Errorf("upload finished"))
	return &res, err
}

// Download streams a workspace file; the caller closes the reader.
func (c *Client) Download(ctx context.Context, id, p string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, path: sbPath(id, "/filesystem/download"),
		query: url.Values{"path": {p}}, accept: "application/octet-stream"})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
