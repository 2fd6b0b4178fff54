package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// benchLimits measures the gateway's memory under large bodies (a 300 MB
// upload, with Content-Length and chunked; a 300 MB JSON body it refuses)
// and its answer to a real client under an idle-connection flood.
func benchLimits(ctx context.Context, r *Reporter) error {
	bay, err := Binary("bay")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bay-bench-limits-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	g, err := startBay(ctx, bay, dir, "limits", true)
	if err != nil {
		return err
	}
	defer g.stop()
	pid := g.cmd.Process.Pid
	r.Value("limits_gateway_rss_idle", rssMB(pid), "MB")

	var sb map[string]any
	if err := g.call("POST", "/v1/sandboxes", map[string]any{}, &sb); err != nil {
		return err
	}
	id := sb["id"].(string)
	if err := g.call("POST", "/v1/sandboxes/"+id+"/python/exec", map[string]any{"code": "1"}, nil); err != nil {
		return err
	}
	const size = 300 << 20
	hc := &http.Client{Timeout: 10 * time.Minute}

	// peak samples the gateway's RSS while fn runs.
	peak := func(fn func() (int, error)) (float64, int, error) {
		var max atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				if v := int64(rssMB(pid) * 1024); v > max.Load() {
					max.Store(v)
				}
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		status, err := fn()
		close(stop)
		wg.Wait()
		return float64(max.Load()) / 1024, status, err
	}
	upload := func(chunked bool) (int, error) {
		var head bytes.Buffer
		mw := multipart.NewWriter(&head)
		_ = mw.WriteField("path", "big.bin")
		if _, err := mw.CreateFormFile("file", "big.bin"); err != nil {
			return 0, err
		}
		tail := "\r\n--" + mw.Boundary() + "--\r\n"
		body := io.MultiReader(bytes.NewReader(head.Bytes()), io.LimitReader(zeros{}, size), bytes.NewReader([]byte(tail)))
		var rd io.Reader = body
		if chunked {
			rd = io.MultiReader(body)
		}
		req, _ := http.NewRequestWithContext(ctx, "POST", g.url+"/v1/sandboxes/"+id+"/filesystem/upload", rd)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		if !chunked {
			req.ContentLength = int64(head.Len()) + size + int64(len(tail))
		}
		res, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		defer res.Body.Close()
		_, _ = io.Copy(io.Discard, res.Body)
		return res.StatusCode, nil
	}
	for _, chunked := range []bool{false, true} {
		name := "content_length"
		if chunked {
			name = "chunked"
		}
		start := time.Now()
		mb, status, err := peak(func() (int, error) { return upload(chunked) })
		if err != nil || status != 200 {
			return fmt.Errorf("upload (%s): status %d: %v", name, status, err)
		}
		r.Value("limits_gateway_rss_peak_upload_300mb_"+name, mb, "MB")
		r.Value("limits_upload_300mb_"+name+"_throughput", float64(size>>20)/time.Since(start).Seconds(), "MB/s")
	}
	refuse := func(chunked bool) (int, error) {
		body := io.MultiReader(bytes.NewReader([]byte(`{"profile": "`)), io.LimitReader(letters{}, size), bytes.NewReader([]byte(`"}`)))
		var rd io.Reader = body
		if chunked {
			rd = io.MultiReader(body)
		}
		req, _ := http.NewRequestWithContext(ctx, "POST", g.url+"/v1/sandboxes", rd)
		req.Header.Set("Content-Type", "application/json")
		if !chunked {
			req.ContentLength = size + 15
		}
		res, err := hc.Do(req)
		if err != nil {
			// The gateway may close before the client finished sending.
			return 413, nil
		}
		defer res.Body.Close()
		_, _ = io.Copy(io.Discard, res.Body)
		return res.StatusCode, nil
	}
	for _, chunked := range []bool{false, true} {
		name := "content_length"
		if chunked {
			name = "chunked"
		}
		mb, status, err := peak(func() (int, error) { return refuse(chunked) })
		if err != nil || status != 413 {
			return fmt.Errorf("refused json (%s): status %d: %v", name, status, err)
		}
		r.Value("limits_gateway_rss_peak_refused_json_300mb_"+name, mb, "MB")
	}

	// Idle flood: connections that never send a byte, then a real call.
	const flood = 10000
	var conns []net.Conn
	addr := g.url[len("http://"):]
	for i := 0; i < flood; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	r.Value("limits_idle_flood_connections", float64(len(conns)), "conns")
	time.Sleep(1500 * time.Millisecond)
	start := time.Now()
	var sb2 map[string]any
	if err := g.call("POST", "/v1/sandboxes", map[string]any{}, &sb2); err != nil {
		return fmt.Errorf("create under the flood: %w", err)
	}
	if err := g.call("POST", "/v1/sandboxes/"+sb2["id"].(string)+"/python/exec", map[string]any{"code": "6*7"}, nil); err != nil {
		return fmt.Errorf("python under the flood: %w", err)
	}
	r.Value("limits_idle_flood_create_and_python", ms(time.Since(start)), "ms")
	r.Value("limits_idle_flood_gateway_rss", rssMB(pid), "MB")
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type letters struct{}

func (letters) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}
