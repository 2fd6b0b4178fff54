package ship

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/bay-sandbox/bay/runtimes/wire"
)

// streamKeepalive is how often a quiet stream sends a comment: it keeps
// proxies from timing the stream out, and a failed write is how a peer that
// went away is noticed (and the program interrupted) while it prints nothing.
const streamKeepalive = 500 * time.Millisecond

// outputQueue collects a running program's output for a stream. Writers
// never block (a slow reader must not stall the program's pipes); chunks of
// one stream written back to back are merged. At most limit bytes wait to
// be sent: beyond that output is dropped (and the reader told how much), so
// a fast writer and a slow reader cannot grow Ship's memory.
type outputQueue struct {
	mu      sync.Mutex
	limit   int
	pending int
	dropped int64
	chunks  []wire.OutputChunk
	partial map[string][]byte // an incomplete UTF-8 tail per stream
	notify  chan struct{}
}

func newOutputQueue(limit int) *outputQueue {
	return &outputQueue{limit: limit, partial: map[string][]byte{}, notify: make(chan struct{}, 1)}
}

func (q *outputQueue) add(stream string, b []byte) {
	q.mu.Lock()
	if q.pending+len(b) > q.limit {
		q.dropped += int64(len(b))
		q.mu.Unlock()
		return
	}
	q.pending += len(b)
	data := append(q.partial[stream], b...)
	whole, rest := wire.SplitUTF8(data)
	q.partial[stream] = append([]byte(nil), rest...)
	if len(whole) > 0 {
		if n := len(q.chunks); n > 0 && q.chunks[n-1].Stream == stream {
			q.chunks[n-1].Text += string(whole)
		} else {
			q.chunks = append(q.chunks, wire.OutputChunk{Stream: stream, Text: string(whole)})
		}
	}
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// take returns the queued chunks; with final, incomplete tails too.
func (q *outputQueue) take(final bool) []wire.OutputChunk {
	q.mu.Lock()
	defer q.mu.Unlock()
	if final {
		for s, b := range q.partial {
			if len(b) > 0 {
				q.chunks = append(q.chunks, wire.OutputChunk{Stream: s, Text: string(b)})
			}
			delete(q.partial, s)
		}
	}
	if q.dropped > 0 {
		q.chunks = append(q.chunks, wire.OutputChunk{Stream: wire.StreamStderr,
			Text: fmt.Sprintf("\n[stream: %d bytes of output not sent, the reader was too slow; the result has the output]\n", q.dropped)})
		q.dropped = 0
	}
	out := q.chunks
	q.chunks = nil
	q.pending = 0
	for _, b := range q.partial {
		q.pending += len(b)
	}
	return out
}

// streamWriter is one stream of a queue as an io.Writer.
type streamWriter struct {
	q      *outputQueue
	stream string
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.q.add(w.stream, p)
	return len(p), nil
}

// streamExec answers with server-sent events: output chunks while run runs,
// then its result (or an error event). A peer that goes away cancels run's
// context, which interrupts the program.
func (s *Server) streamExec(c *fiber.Ctx, run func(ctx context.Context, q *outputQueue) (any, error)) error {
	c.Set(fiber.HeaderContentType, wire.MIMEEventStream)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		ctx, cancel := context.WithCancel(s.work)
		defer cancel()
		q := newOutputQueue(s.cfg.OutputLimit)
		type outcome struct {
			v   any
			err error
		}
		done := make(chan outcome, 1)
		go func() {
			v, err := run(ctx, q)
			done <- outcome{v, err}
		}()
		ew := wire.NewEventWriter(w)
		send := func(final bool) error {
			for _, ch := range q.take(final) {
				if err := ew.Event(wire.EventOutput, ch); err != nil {
					return err
				}
			}
			return nil
		}
		tick := time.NewTicker(streamKeepalive)
		defer tick.Stop()
		// An initial comment commits the response headers right away.
		err := ew.Comment("stream")
		for err == nil {
			select {
			case <-q.notify:
				err = send(false)
			case <-tick.C:
				err = ew.Comment("keepalive")
			case o := <-done:
				if err := send(true); err != nil {
					return
				}
				if o.err != nil {
					_ = ew.Event(wire.EventError, errorBodyOf(o.err))
					return
				}
				_ = ew.Event(wire.EventResult, o.v)
				return
			}
		}
		s.log.Debug("stream reader went away, interrupting", "error", err)
		cancel()
		<-done
	})
	return nil
}

// errorBodyOf renders err as the runtimes' error envelope.
func errorBodyOf(err error) wire.ErrorBody {
	var ae *wire.APIError
	if errors.As(err, &ae) {
		return wire.ErrorBody{Error: wire.ErrorDetail{Code: ae.Code, Message: ae.Message, Details: ae.Details}}
	}
	return wire.ErrorBody{Error: wire.ErrorDetail{Code: wire.CodeInternal, Message: err.Error()}}
}
