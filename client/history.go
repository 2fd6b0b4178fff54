package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// History lists a sandbox's executions, newest first.
func (c *Client) History(ctx context.Context, id string, o *HistoryOptions) (*HistoryList, error) {
	q := url.Values{}
	if o != nil {
		if o.ExecType != "" {
			q.Set("exec_type", o.ExecType)
		}
		if o.SuccessOnly {
			q.Set("success_only", "true")
		}
		if o.Limit > 0 {
			q.Set("limit", strconv.Itoa(o.Limit))
		}
		if o.Offset > 0 {
			q.Set("offset", strconv.Itoa(o.Offset))
		}
		if o.Tags != "" {
			q.Set("tags", o.Tags)
		}
		if o.HasNotes {
			q.Set("has_notes", "true")
		}
		if o.HasDescription {
			q.Set("has_description", "true")
		}
	}
	var l HistoryList
	return &l, c.do(ctx, request{method: http.MethodGet, path: sbPath(id, "/history"), query: q}, &l)
}

// LastExecution returns the newest execution (of execType, "" = any).
func (c *Client) LastExecution(ctx context.Context, id, execType string) (*HistoryEntry, error) {
	q := url.Values{}
	if execType != "" {
		q.Set("exec_type", execType)
	}
	var e HistoryEntry
	return &e, c.do(ctx, request{method: http.MethodGet, path: sbPath(id, "/history/last"), query: q}, &e)
}

// Execution returns one execution.
func (c *Client) Execution(ctx context.Context, id, execID string) (*HistoryEntry, error) {
	var e HistoryEntry
	return &e, c.do(ctx, request{method: http.MethodGet, path: sbPath(id, "/history/"+url.PathEscape(execID))}, &e)
}

// AnnotateExecution sets an execution's description, tags or notes.
func (c *Client) AnnotateExecution(ctx context.Context, id, execID string, p *HistoryPatch) (*HistoryEntry, error) {
	var e HistoryEntry
	return &e, c.do(ctx, request{method: http.MethodPatch, path: sbPath(id, "/history/"+url.PathEscape(execID)), json: p}, &e)
}
