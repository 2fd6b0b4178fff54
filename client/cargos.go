package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// CreateCargo creates an external cargo (sizeMB 0: the gateway's default).
func (c *Client) CreateCargo(ctx context.Context, sizeMB int, opts ...RequestOption) (*Cargo, error) {
	body := map[string]int{}
	if sizeMB > 0 {
		body["size_limit_mb"] = sizeMB
	}
	var cg Cargo
	return &cg, c.do(ctx, request{method: http.MethodPost, path: "/v1/cargos", json: body, opts: withGeneratedKey(opts)}, &cg)
}

// ListCargos lists external cargos, or managed ones with managed true.
func (c *Client) ListCargos(ctx context.Context, managed bool, o *ListOptions) (*CargoList, error) {
	q := pageQuery(o)
	if managed {
		q.Set("managed", strconv.FormatBool(managed))
	}
	var l CargoList
	return &l, c.do(ctx, request{method: http.MethodGet, path: "/v1/cargos", query: q}, &l)
}

// GetCargo returns a cargo.
func (c *Client) GetCargo(ctx context.Context, id string) (*Cargo, error) {
	var cg Cargo
	return &cg, c.do(ctx, request{method: http.MethodGet, path: "/v1/cargos/" + url.PathEscape(id)}, &cg)
}

// DeleteCargo deletes an unused cargo (409 conflict while a sandbox uses it).
func (c *Client) DeleteCargo(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/v1/cargos/" + url.PathEscape(id)}, nil)
}

// Profiles lists the gateway's profiles (with detail: their containers).
func (c *Client) Profiles(ctx context.Context, detail bool) ([]Profile, error) {
	q := url.Values{}
	if detail {
		q.Set("detail", "true")
	}
	var r struct {
		Items []Profile `json:"items"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/profiles", query: q}, &r)
	return r.Items, err
}

// BrowserTrace returns a stored browser trace.
func (c *Client) BrowserTrace(ctx context.Context, id, ref string) (*BrowserTrace, error) {
	var t BrowserTrace
	return &t, c.do(ctx, request{method: http.MethodGet, path: sbPath(id, "/browser/traces/"+url.PathEscape(ref))}, &t)
}
