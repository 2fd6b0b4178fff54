// Package client is the Go SDK of the Bay gateway API (docs/api.md,
// docs/openapi.json). It imports nothing of the server.
//
// A Client is safe for concurrent use. Every call takes a context; a call
// answered 503 session_not_ready (a cold start longer than the gateway
// waits) is retried after the gateway's Retry-After, a bounded number of
// times; every other error is returned as it is, an answer of the gateway as
// *APIError carrying its error envelope.
//
// Creating sandboxes and cargos and extending a TTL send an Idempotency-Key
// (generated unless WithIdempotencyKey gives one), so a retried create never
// makes two.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultAddress is where bay serve listens by default.
const DefaultAddress = "http://127.0.0.1:8114"

// Config configures a Client.
type Config struct {
	// Address is the gateway's base URL; BAY_ADDR, else DefaultAddress.
	Address string
	// APIKey is the bearer key; BAY_API_KEY. Empty sends no Authorization
	// (a gateway in anonymous mode).
	APIKey string
	// Owner is sent as X-Owner (anonymous mode only); BAY_OWNER.
	Owner string
	// HTTPClient is used for every request; nil: a client without a global
	// timeout (each call's context governs, streams may last long).
	HTTPClient *http.Client
	// MaxRetries bounds the retries of a 503 answer (default 5; negative:
	// none).
	MaxRetries int
	// MaxRetryWait caps one wait between retries (default 10s).
	MaxRetryWait time.Duration
	// UserAgent is sent with every request.
	UserAgent string
}

// DefaultConfig reads BAY_ADDR, BAY_API_KEY and BAY_OWNER.
func DefaultConfig() *Config {
	cfg := &Config{Address: os.Getenv("BAY_ADDR"), APIKey: os.Getenv("BAY_API_KEY"), Owner: os.Getenv("BAY_OWNER")}
	if cfg.Address == "" {
		cfg.Address = DefaultAddress
	}
	return cfg
}

// Client talks to one Bay gateway.
type Client struct {
	base       *url.URL
	key, owner string
	hc         *http.Client
	retries    int
	maxWait    time.Duration
	ua         string
	sleep      func(ctx context.Context, d time.Duration) error
}

// New returns a client for cfg (nil: DefaultConfig()).
func New(cfg *Config) (*Client, error) {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	addr := cfg.Address
	if addr == "" {
		addr = DefaultAddress
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(strings.TrimRight(addr, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("invalid gateway address %q: want http(s)://host:port", cfg.Address)
	}
	c := &Client{base: u, key: cfg.APIKey, owner: cfg.Owner, hc: cfg.HTTPClient, retries: cfg.MaxRetries,
		maxWait: cfg.MaxRetryWait, ua: cfg.UserAgent, sleep: sleepCtx}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.retries == 0 {
		c.retries = 5
	} else if c.retries < 0 {
		c.retries = 0
	}
	if c.maxWait <= 0 {
		c.maxWait = 10 * time.Second
	}
	if c.ua == "" {
		c.ua = "bay-go-client"
	}
	return c, nil
}

// Address is the gateway's base URL.
func (c *Client) Address() string { return c.base.String() }

// APIError is an error answer of the gateway: its status and error envelope.
type APIError struct {
	StatusCode int
	Code       string
	Message    string
	RequestID  string
	Details    map[string]any
	// RetryAfter is the gateway's Retry-After, when it sent one.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("bay: %d %s: %s", e.StatusCode, e.Code, e.Message)
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	return s
}

// ErrorCode returns the envelope code of an *APIError in err's chain, or "".
func ErrorCode(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// IsNotFound reports whether err is a 404 of the gateway (not_found or
// file_not_found).
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound
}

// RequestOption adjusts one request.
type RequestOption func(*http.Request)

// WithIdempotencyKey sets the Idempotency-Key of a create or extend call.
func WithIdempotencyKey(key string) RequestOption {
	return func(r *http.Request) { r.Header.Set("Idempotency-Key", key) }
}

// WithHeader sets a header on the request.
func WithHeader(k, v string) RequestOption {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

// NewIdempotencyKey returns a random key.
func NewIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "bayc-" + hex.EncodeToString(b[:])
}

func withGeneratedKey(opts []RequestOption) []RequestOption {
	return append([]RequestOption{WithIdempotencyKey(NewIdempotencyKey())}, opts...)
}

// request is one call to make.
type request struct {
	method, path string
	query        url.Values
	json         any       // encoded as the body when non-nil
	body         io.Reader // a streamed body (never retried)
	contentType  string
	accept       string
	opts         []RequestOption
}

func (c *Client) url(path string, q url.Values) string {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// send makes r, retrying 503 answers while its body can be replayed, and
// returns a 2xx response (the caller closes it) or an error.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	var payload []byte
	if r.json != nil {
		var err error
		if payload, err = json.Marshal(r.json); err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
	}
	for attempt := 0; ; attempt++ {
		var body io.Reader
		switch {
		case payload != nil:
			body = bytes.NewReader(payload)
		case r.body != nil:
			body = r.body
		}
		req, err := http.NewRequestWithContext(ctx, r.method, c.url(r.path, r.query), body)
		if err != nil {
			return nil, fmt.Errorf("build request: %w", err)
		}
		if payload != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if r.contentType != "" {
			req.Header.Set("Content-Type", r.contentType)
		}
		req.Header.Set("Accept", "application/json")
		if r.accept != "" {
			req.Header.Set("Accept", r.accept)
		}
		req.Header.Set("User-Agent", c.ua)
		if c.key != "" {
			req.Header.Set("Authorization", "Bearer "+c.key)
		}
		if c.owner != "" {
			req.Header.Set("X-Owner", c.owner)
		}
		for _, o := range r.opts {
			o(req)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp, nil
		}
		apiErr := decodeError(resp)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || attempt >= c.retries || r.body != nil {
			return nil, apiErr
		}
		wait := apiErr.RetryAfter
		if wait <= 0 {
			wait = time.Second
		}
		wait = min(wait, c.maxWait)
		if err := c.sleep(ctx, wait); err != nil {
			return nil, apiErr
		}
	}
}

func decodeError(resp *http.Response) *APIError {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	e := &APIError{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	var env struct {
		Error struct {
			Code      string         `json:"code"`
			Message   string         `json:"message"`
			RequestID string         `json:"request_id"`
			Details   map[string]any `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &env) == nil && env.Error.Code != "" {
		e.Code, e.Message, e.Details = env.Error.Code, env.Error.Message, env.Error.Details
		if env.Error.RequestID != "" {
			e.RequestID = env.Error.RequestID
		}
	} else {
		e.Code = "http_" + strconv.Itoa(resp.StatusCode)
		e.Message = strings.TrimSpace(string(raw))
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	if e.RetryAfter == 0 {
		if ms, ok := e.Details["retry_after_ms"].(float64); ok && ms > 0 {
			e.RetryAfter = time.Duration(ms) * time.Millisecond
		}
	}
	return e
}

// do makes r and decodes a JSON answer into out (nil: discarded).
func (c *Client) do(ctx context.Context, r request, out any) error {
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s response: %w", r.method, r.path, err)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func sbPath(id string, rest string) string {
	return "/v1/sandboxes/" + url.PathEscape(id) + rest
}
