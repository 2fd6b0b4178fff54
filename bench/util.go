package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"syscall"
	"time"
)

// ms converts a duration to (fractional) milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// freePort asks the kernel for a loopback port nobody listens on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startProcess starts bin with args; env is the whole environment (nil
// inherits ours) and stderr nil discards it. stop sends SIGTERM, so a
// runtime can close what it started (a browser), and waits for the exit.
func startProcess(ctx context.Context, bin string, env []string, stderr io.Writer, args ...string) (stop func(), err error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }, nil
}

// waitFor calls try (bounded to a second each time) every `every` until it
// succeeds. When within has passed or ctx ends it returns the last error.
func waitFor(ctx context.Context, within, every time.Duration, try func(context.Context) error) error {
	deadline := time.Now().Add(within)
	for {
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		err := try(tctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// getOK is a probe for waitFor: GET url answers 200.
func getOK(hc *http.Client, url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d", url, resp.StatusCode)
		}
		return nil
	}
}

// doJSON sends in as JSON (nil: no body) and returns the status and body.
func doJSON(hc *http.Client, method, url string, in any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		j, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// directClient calls runtimes started by hand, the baselines.
var directClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

// postJSON POSTs in to url and wants a 2xx.
func postJSON(url string, in any) error {
	status, _, err := doJSON(directClient, http.MethodPost, url, in)
	if err != nil {
		return err
	}
	if status >= 300 {
		return fmt.Errorf("%s: %d", url, status)
	}
	return nil
}
