package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// CreateSandbox creates a sandbox (compute starts in the background).
func (c *Client) CreateSandbox(ctx context.Context, req *CreateSandboxRequest, opts ...RequestOption) (*Sandbox, error) {
	if req == nil {
		req = &CreateSandboxRequest{}
	}
	var sb Sandbox
	return &sb, c.do(ctx, request{method: http.MethodPost, path: "/v1/sandboxes", json: req, opts: withGeneratedKey(opts)}, &sb)
}

// ListSandboxes returns one page of sandboxes; status filters ("" = all).
func (c *Client) ListSandboxes(ctx context.Context, status string, o *ListOptions) (*SandboxList, error) {
	q := pageQuery(o)
	if status != "" {
		q.Set("status", status)
	}
	var l SandboxList
	return &l, c.do(ctx, request{method: http.MethodGet, path: "/v1/sandboxes", query: q}, &l)
}

// GetSandbox returns a sandbox, with its containers while a session runs.
func (c *Client) GetSandbox(ctx context.Context, id string) (*Sandbox, error) {
	var sb Sandbox
	return &sb, c.do(ctx, request{method: http.MethodGet, path: sbPath(id, "")}, &sb)
}

// DeleteSandbox destroys a sandbox's compute and its managed cargo.
func (c *Client) DeleteSandbox(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: sbPath(id, "")}, nil)
}

// StopSandbox releases a sandbox's compute and keeps its cargo.
func (c *Client) StopSandbox(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodPost, path: sbPath(id, "/stop")}, nil)
}

// Keepalive pushes a running sandbox's idle deadline.
func (c *Client) Keepalive(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodPost, path: sbPath(id, "/keepalive")}, nil)
}

// ExtendTTL adds seconds to a sandbox's expiry.
func (c *Client) ExtendTTL(ctx context.Context, id string, seconds int64, opts ...RequestOption) (*Sandbox, error) {
	var sb Sandbox
	return &sb, c.do(ctx, request{method: http.MethodPost, path: sbPath(id, "/extend_ttl"),
		json: map[string]int64{"extend_by": seconds}, opts: withGeneratedKey(opts)}, &sb)
}

// WaitReady polls a sandbox until it is ready (or degraded: running with a
// container down), calling progress (when non-nil) whenever its status or
// start phase changes. A failed or expired sandbox is an error.
func (c *Client) WaitReady(ctx context.Context, id string, every time.Duration, progress func(*Sandbox)) (*Sandbox, error) {
	if every <= 0 {
		every = 200 * time.Millisecond
	}
	last := ""
	for {
		sb, err := c.GetSandbox(ctx, id)
		if err != nil {
			return nil, err
		}
		state := sb.Status
		if sb.Phase != nil {
			state += "/" + *sb.Phase
		}
		if progress != nil && state != last {
			progress(sb)
		}
		last = state
		switch sb.Status {
		case StatusReady, StatusDegraded:
			return sb, nil
		case StatusFailed, StatusExpired:
			return sb, &APIError{StatusCode: http.StatusConflict, Code: "sandbox_" + sb.Status, Message: "sandbox " + id + " is " + sb.Status}
		case StatusIdle:
			// Nothing starts an idle sandbox but a capability call; a cheap
			// one (listing the workspace) does.
			go func() { _, _ = c.ListFiles(context.WithoutCancel(ctx), id, ".") }()
		}
		if err := c.sleep(ctx, every); err != nil {
			return nil, err
		}
	}
}

func pageQuery(o *ListOptions) url.Values {
	q := url.Values{}
	if o != nil {
		if o.Limit > 0 {
			q.Set("limit", strconv.Itoa(o.Limit))
		}
		if o.Cursor != "" {
			q.Set("cursor", o.Cursor)
		}
	}
	return q
}
