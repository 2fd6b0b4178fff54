package gull

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/bay-sandbox/bay/runtimes/wire"
)

// Client calls one Gull over HTTP. It is what the gateway uses.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client for the Gull at baseURL ("http://host:port").
// A nil hc gets a client without a global timeout: each call's ctx governs,
// since browser commands may legitimately run for minutes.
func NewClient(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	base, hc := wire.Endpoint(strings.TrimRight(baseURL, "/"), hc) // unix:// endpoints
	return &Client{base: base, hc: hc}
}

// Health asks GET /health. An unhealthy Gull answers 503: the decoded body is
// returned together with a *wire.Error, so callers get both the verdict and
// the reasons.
func (c *Client) Health(ctx context.Context) (wire.Health, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/health", nil)
	if err != nil {
		return wire.Health{}, fmt.Errorf("build request: %w", err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return wire.Health{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return wire.Health{}, fmt.Errorf("read health: %w", err)
	}
	var h HealthResponse
	decoded := json.Unmarshal(raw, &h) == nil && h.Status != ""
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if !decoded {
			return wire.Health{}, fmt.Errorf("decode health: unexpected body %q", truncate(string(raw), 200))
		}
		return h.Health, nil
	}
	if decoded {
		msg := "gull is " + h.Status
		if len(h.Problems) > 0 {
			msg += ": " + strings.Join(h.Problems, "; ")
		}
		return h.Health, &wire.Error{Status: resp.StatusCode, Code: wire.CodeUnavailable, Message: msg}
	}
	resp.Body = io.NopCloser(strings.NewReader(string(raw)))
	return wire.Health{}, wire.CheckResponse(resp)
}

// Meta asks GET /meta.
func (c *Client) Meta(ctx context.Context) (wire.Meta, error) {
	var m wire.Meta
	err := wire.DoJSON(ctx, c.hc, http.MethodGet, c.base+"/meta", nil, &m)
	return m, err
}

// Exec runs one agent-browser command (POST /exec). A failing command is not
// an error: look at ExitCode. ctx should outlive req.Timeout by a margin.
func (c *Client) Exec(ctx context.Context, req ExecRequest) (ExecResponse, error) {
	var out ExecResponse
	err := wire.DoJSON(ctx, c.hc, http.MethodPost, c.base+"/exec", req, &out)
	return out, err
}

// ExecBatch runs commands in order under one time budget (POST /exec_batch).
func (c *Client) ExecBatch(ctx context.Context, req BatchRequest) (BatchResponse, error) {
	var out BatchResponse
	err := wire.DoJSON(ctx, c.hc, http.MethodPost, c.base+"/exec_batch", req, &out)
	return out, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
