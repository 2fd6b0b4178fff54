package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// Python runs a cell in the sandbox's stateful interpreter.
func (c *Client) Python(ctx context.Context, id string, req *PythonRequest) (*PythonResult, error) {
	var r PythonResult
	return &r, c.do(ctx, request{method: http.MethodPost, path: sbPath(id, "/python/exec"), json: req}, &r)
}

// PythonStream runs a cell like Python, handing its output to onOutput as
// the interpreter writes it. Cancelling ctx interrupts the cell.
func (c *Client) PythonStream(ctx context.Context, id string, req *PythonRequest, onOutput func(OutputChunk)) (*PythonResult, error) {
	var r PythonResult
	return &r, c.stream(ctx, request{method: http.MethodPost, path: sbPath(id, "/python/exec"), json: req}, onOutput, &r)
}

// Shell runs a shell command in the sandbox's workspace.
func (c *Client) Shell(ctx context.Context, id string, req *ShellRequest) (*ShellResult, error) {
	var r ShellResult
	return &r, c.do(ctx, request{method: http.MethodPost, path: sbPath(id, "/shell/exec"), json: req}, &r)
}

// ShellStream runs a command like Shell, handing its stdout and stderr to
// onOutput as they are written. Cancelling ctx kills the command.
func (c *Client) ShellStream(ctx context.Context, id string, req *ShellRequest, onOutput func(OutputChunk)) (*ShellResult, error) {
	var r ShellResult
	return &r, c.stream(ctx, request{method: http.MethodPost, path: sbPath(id, "/shell/exec"), json: req}, onOutput, &r)
}

// Browser runs one browser command.
func (c *Client) Browser(ctx context.Context, id string, req *BrowserRequest) (*BrowserResult, error) {
	var r BrowserResult
	return &r, c.do(ctx, request{method: http.MethodPost, path: sbPath(id, "/browser/exec"), json: req}, &r)
}

// BrowserBatch runs browser commands in one time budget.
func (c *Client) BrowserBatch(ctx context.Context, id string, req *BrowserBatchRequest) (*BrowserBatchResult, error) {
	var r BrowserBatchResult
	return &r, c.do(ctx, request{method: http.MethodPost, path: sbPath(id, "/browser/exec_batch"), json: req}, &r)
}

// stream makes a call with Accept: text/event-stream: output events go to
// onOutput, the result event is decoded into out, an error event becomes
// *APIError.
func (c *Client) stream(ctx context.Context, r request, onOutput func(OutputChunk), out any) error {
	r.accept = "text/event-stream"
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		// A gateway without streaming answered the plain result.
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("decode response: %w", err)
		}
		return nil
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		name, data, err := nextEvent(br)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read event stream: %w", err)
		}
		switch name {
		case "output":
			var ch OutputChunk
			if err := json.Unmarshal(data, &ch); err != nil {
				return fmt.Errorf("decode output event: %w", err)
			}
			if onOutput != nil {
				onOutput(ch)
			}
		case "result":
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("decode result event: %w", err)
			}
			// The stream ends right after its result: read to the end so
			// the connection is reused.
			_, _ = io.Copy(io.Discard, io.LimitReader(br, 4096))
			return nil
		case "error":
			var env struct {
				Error struct {
					Code      string         `json:"code"`
					Message   string         `json:"message"`
					RequestID string         `json:"request_id"`
					Details   map[string]any `json:"details"`
				} `json:"error"`
			}
			if err := json.Unmarshal(data, &env); err != nil {
				return fmt.Errorf("decode error event: %w", err)
			}
			return &APIError{StatusCode: statusOf(env.Error.Code), Code: env.Error.Code, Message: env.Error.Message,
				RequestID: env.Error.RequestID, Details: env.Error.Details}
		}
	}
}

// statusOf is the HTTP status the contract gives an error code, for errors
// that arrive inside a stream (whose status was already 200).
func statusOf(code string) int {
	switch code {
	case "timeout":
		return http.StatusGatewayTimeout
	case "session_not_ready":
		return http.StatusServiceUnavailable
	case "ship_error":
		return http.StatusBadGateway
	case "validation_error", "invalid_path":
		return http.StatusBadRequest
	case "not_found", "file_not_found":
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// nextEvent reads one server-sent event, skipping comments.
func nextEvent(br *bufio.Reader) (name string, data []byte, err error) {
	var lines [][]byte
	seen := false
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return "", nil, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if seen {
				return name, bytes.Join(lines, []byte("\n")), nil
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			name, seen = string(value), true
		case "data":
			lines, seen = append(lines, append([]byte(nil), value...)), true
		}
	}
}
