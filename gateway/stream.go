package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/bay-sandbox/bay/gateway/apierr"
	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/runtimes/ship"
	"github.com/bay-sandbox/bay/runtimes/wire"
)

// streamKeepalive is how often a quiet stream sends a comment; a failed
// write is how a client that went away is noticed while the program is
// silent, so that it gets interrupted.
const streamKeepalive = time.Second

// runStream runs one streamed call: onOutput forwards a chunk to the client.
// It returns the final result body, or an error for an error event.
type runStream func(ctx context.Context, t target, onOutput func(wire.OutputChunk)) (fiber.Map, error)

func (s *Server) streamPython(c *fiber.Ctx, meta execMeta, req ship.PythonExecRequest) error {
	return s.streamExec(c, profiles.CapPython, req.Timeout, func(ctx context.Context, t target, out func(wire.OutputChunk)) (fiber.Map, error) {
		start := time.Now()
		res, err := s.shipClient(t).PythonExecStream(ctx, req, out)
		if err != nil {
			return nil, err
		}
		return s.pythonResult(context.Background(), t, meta, req.Code, res, time.Since(start)), nil
	})
}

func (s *Server) streamShell(c *fiber.Ctx, meta execMeta, req ship.ShellExecRequest) error {
	return s.streamExec(c, profiles.CapShell, req.Timeout, func(ctx context.Context, t target, out func(wire.OutputChunk)) (fiber.Map, error) {
		start := time.Now()
		res, err := s.shipClient(t).ShellExecStream(ctx, req, out)
		if err != nil {
			return nil, err
		}
		return s.shellResult(context.Background(), t, meta, req.Command, res, time.Since(start)), nil
	})
}

// streamExec routes the call (errors so far are plain JSON responses), then
// answers with server-sent events: output chunks as the runtime sends them,
// unbuffered, then one result or error event. A client that goes away
// cancels the runtime call, which interrupts the program; nothing is
// recorded for it.
func (s *Server) streamExec(c *fiber.Ctx, capability string, timeoutSec int, run runStream) error {
	t, err := s.route(c, capability)
	if err != nil {
		return err
	}
	// Nothing of c may be used once the handler returns: keep what the
	// stream needs.
	rid := requestID(c)
	grace := s.cfg.RuntimeGrace
	c.Set(fiber.HeaderContentType, wire.MIMEEventStream)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer t.done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeoutSec)*time.Second+grace)
		defer cancel()
		var mu sync.Mutex
		ew := wire.NewEventWriter(w)
		gone := false
		write := func(f func() error) {
			mu.Lock()
			defer mu.Unlock()
			if gone {
				return
			}
			if err := f(); err != nil {
				gone = true
				cancel()
			}
		}
		write(func() error { return ew.Comment("stream") })
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(streamKeepalive)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					write(func() error { return ew.Comment("keepalive") })
				}
			}
		}()
		body, err := run(ctx, t, func(ch wire.OutputChunk) {
			write(func() error { return ew.Event(wire.EventOutput, ch) })
		})
		close(stop)
		wg.Wait()
		mu.Lock()
		left := gone
		mu.Unlock()
		if left {
			s.log.Debug("stream client went away; call interrupted", "sandbox_id", t.sb.ID, "request_id", rid)
			return
		}
		if err != nil {
			e := streamError(err)
			if e.Code == apierr.CodeInternal {
				s.log.Error("internal error in stream", "sandbox_id", t.sb.ID, "request_id", rid, "error", err)
			}
			write(func() error {
				return ew.Event(wire.EventError, envelope{Error: envelopeBody{Code: e.Code, Message: e.Message, RequestID: rid, Details: e.Details}})
			})
			return
		}
		write(func() error { return ew.Event(wire.EventResult, body) })
	})
	return nil
}

// streamError maps an error that ended a stream to the contract's codes.
func streamError(err error) *apierr.Error {
	var ae *apierr.Error
	var ne net.Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, context.DeadlineExceeded):
		return apierr.New(http.StatusGatewayTimeout, apierr.CodeTimeout, "the runtime did not answer in time")
	case errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &ne):
		return apierr.New(http.StatusBadGateway, apierr.CodeShipError, "runtime stream failed: %v", err)
	}
	if we, ok := wire.AsError(err); ok {
		if we.Code == wire.CodeUnavailable {
			return apierr.New(http.StatusBadGateway, apierr.CodeShipError, "%s", we.Message)
		}
		return runtimeError(we)
	}
	return apierr.New(http.StatusInternalServerError, apierr.CodeInternal, "internal error")
}
