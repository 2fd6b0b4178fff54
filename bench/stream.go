package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/bay-sandbox/bay/client"
)

// benchStream measures streamed exec on the embedded default through the Go
// SDK: time to the first output byte against the total run time of a
// command that prints a line every 200 ms for 2 s (the baseline: without
// streaming the first byte is the result, at the total), and the cost of
// streaming a quick command against the plain call.
func benchStream(ctx context.Context, r *Reporter) error {
	bay, err := Binary("bay")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bay-bench-stream-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	g, err := startBay(ctx, bay, dir, "stream", true)
	if err != nil {
		return err
	}
	defer g.stop()
	c, err := client.New(&client.Config{Address: g.url})
	if err != nil {
		return err
	}
	sb, err := c.CreateSandbox(ctx, &client.CreateSandboxRequest{Profile: "python-default"})
	if err != nil {
		return err
	}
	if _, err := c.WaitReady(ctx, sb.ID, 20*time.Millisecond, nil); err != nil {
		return err
	}

	const runs = 5
	for _, lang := range []string{"shell", "python"} {
		var ttfb, total, plain []time.Duration
		for i := 0; i < runs; i++ {
			start := time.Now()
			var first time.Duration
			onOut := func(client.OutputChunk) {
				if first == 0 {
					first = time.Since(start)
				}
			}
			switch lang {
			case "shell":
				_, err = c.ShellStream(ctx, sb.ID, &client.ShellRequest{Command: "for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; sleep 0.2; done"}, onOut)
			default:
				_, err = c.PythonStream(ctx, sb.ID, &client.PythonRequest{Code: "import time\nfor i in range(10):\n    print('line', i, flush=True)\n    time.sleep(0.2)"}, onOut)
			}
			if err != nil {
				return fmt.Errorf("streamed %s: %w", lang, err)
			}
			if first == 0 {
				return fmt.Errorf("streamed %s: no output", lang)
			}
			ttfb = append(ttfb, first)
			total = append(total, time.Since(start))

			start = time.Now()
			switch lang {
			case "shell":
				_, err = c.Shell(ctx, sb.ID, &client.ShellRequest{Command: "for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; sleep 0.2; done"})
			default:
				_, err = c.Python(ctx, sb.ID, &client.PythonRequest{Code: "import time\nfor i in range(10):\n    print('line', i, flush=True)\n    time.sleep(0.2)"})
			}
			if err != nil {
				return fmt.Errorf("plain %s: %w", lang, err)
			}
			plain = append(plain, time.Since(start))
		}
		sortDurations(ttfb)
		sortDurations(total)
		sortDurations(plain)
		p50 := func(d []time.Duration) float64 { return Pct(d, 50) }
		r.Value("stream_"+lang+"_ttfb_p50", p50(ttfb), "ms")
		r.Value("stream_"+lang+"_total_p50", p50(total), "ms")
		// Without streaming the client's first byte is the whole result.
		r.Value("plain_"+lang+"_first_byte_p50", p50(plain), "ms")
		r.Ratio("stream_"+lang+"_ttfb_vs_total", p50(ttfb), p50(total))
	}

	// Overhead of streaming a quick command against the plain call.
	if _, err := c.Shell(ctx, sb.ID, &client.ShellRequest{Command: "true"}); err != nil {
		return err
	}
	plain, err := Latencies(r.N/4+1, func() error {
		_, err := c.Shell(ctx, sb.ID, &client.ShellRequest{Command: "echo hi"})
		return err
	})
	if err != nil {
		return err
	}
	streamed, err := Latencies(r.N/4+1, func() error {
		_, err := c.ShellStream(ctx, sb.ID, &client.ShellRequest{Command: "echo hi"}, nil)
		return err
	})
	if err != nil {
		return err
	}
	r.ReportLatency("shell_echo_plain", plain)
	r.ReportLatency("shell_echo_streamed", streamed)
	r.Ratio("shell_echo_streamed_vs_plain_p50", Pct(streamed, 50), Pct(plain, 50))
	return nil
}
