package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bay-sandbox/bay/client"
)

func TestRetries503HonouringRetryAfter(t *testing.T) {
	gw := newFakeGateway()
	defer gw.Close()
	gw.notReady = 2
	c, err := client.New(&client.Config{Address: gw.URL, MaxRetries: 3})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := c.Python(context.Background(), "sandbox-0123456789ab", &client.PythonRequest{Code: "1+2"})
	if err != nil || !res.Success {
		t.Fatalf("after two 503s: %v %+v", err, res)
	}
	if n := gw.calls["POST /v1/sandboxes/sandbox-0123456789ab/python/exec"]; n != 3 {
		t.Fatalf("%d calls, want 3", n)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("Retry-After 0 / retry_after_ms 10 took %s", time.Since(start))
	}
}

func TestRetriesAreBounded(t *testing.T) {
	gw := newFakeGateway()
	defer gw.Close()
	gw.notReady = 10
	c, _ := client.New(&client.Config{Address: gw.URL, MaxRetries: 2})
	_, err := c.Python(context.Background(), "sandbox-0123456789ab", &client.PythonRequest{Code: "1"})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusServiceUnavailable || ae.Code != "session_not_ready" || ae.RequestID != "req-503" {
		t.Fatalf("want the last 503 as *APIError, got %#v", err)
	}
	if n := gw.calls["POST /v1/sandboxes/sandbox-0123456789ab/python/exec"]; n != 3 {
		t.Fatalf("%d calls, want 1 + 2 retries", n)
	}
	// No retries at all when disabled.
	gw.notReady = 10
	c, _ = client.New(&client.Config{Address: gw.URL, MaxRetries: -1})
	before := gw.calls["POST /v1/sandboxes/sandbox-0123456789ab/python/exec"]
	_, _ = c.Python(context.Background(), "sandbox-0123456789ab", &client.PythonRequest{Code: "1"})
	if n := gw.calls["POST /v1/sandboxes/sandbox-0123456789ab/python/exec"] - before; n != 1 {
		t.Fatalf("MaxRetries -1 made %d calls", n)
	}
}

func TestCreateSendsIdempotencyKeys(t *testing.T) {
	gw := newFakeGateway()
	defer gw.Close()
	c, _ := client.New(&client.Config{Address: gw.URL})
	ctx := context.Background()
	if _, err := c.CreateSandbox(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSandbox(ctx, nil, client.WithIdempotencyKey("mine")); err != nil {
		t.Fatal(err)
	}
	if len(gw.keys) != 2 || !strings.HasPrefix(gw.keys[0], "bayc-") || gw.keys[1] != "mine" {
		t.Fatalf("keys %q", gw.keys)
	}
}

func TestStreamErrorEvent(t *testing.T) {
	gw := newFakeGateway()
	defer gw.Close()
	c, _ := client.New(&client.Config{Address: gw.URL})
	var got []string
	_, err := c.ShellStream(context.Background(), "sandbox-0123456789ab", &client.ShellRequest{Command: "x"},
		func(ch client.OutputChunk) { got = append(got, ch.Stream+":"+ch.Text) })
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Code != "timeout" || ae.StatusCode != http.StatusGatewayTimeout || ae.RequestID != "req-1" {
		t.Fatalf("error event: %#v", err)
	}
	if len(got) != 1 || got[0] != "stdout:hello\n" {
		t.Fatalf("chunks %q", got)
	}
}

func TestConfig(t *testing.T) {
	t.Setenv("BAY_ADDR", "10.0.0.1:9999")
	t.Setenv("BAY_API_KEY", "k")
	c, err := client.New(nil)
	if err != nil || c.Address() != "http://10.0.0.1:9999" {
		t.Fatalf("%v %v", err, c)
	}
	for _, bad := range []string{"ftp://x", "http://", "::"} {
		if _, err := client.New(&client.Config{Address: bad}); err == nil {
			t.Errorf("address %q accepted", bad)
		}
	}
}
