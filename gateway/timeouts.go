package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/bay-sandbox/bay/runtimes/wire"
)

// isTimeout reports a call that ended on its deadline: the runtime said
// so (a cell that never ran, an interrupted command) or the gateway gave up.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	we, ok := wire.AsError(err)
	return ok && (we.Status == http.StatusGatewayTimeout || we.Code == wire.CodeTimeout)
}

// failedCall records a call that got no result because it timed out, as
// a failed history entry naming the timeout, and returns err unchanged
// for the error handler (504). History must show every call that was
// accepted, including the ones the caller saw time out.
func (s *Server) failedCall(c *fiber.Ctx, t target, execType, code string, timeoutSec int, start time.Time, err error, meta execMeta) error {
	if !isTimeout(err) {
		return err
	}
	msg := "timed out after " + (time.Duration(timeoutSec) * time.Second).String() + " (interrupted)"
	if we, ok := wire.AsError(err); ok && we.Message != "" {
		msg += ": " + we.Message
	}
	// The request's context may be the one that ended: record regardless.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), 5*time.Second)
	defer cancel()
	s.record(ctx, t, execType, code, false, time.Since(start), nil, &msg, nil, meta)
	return err
}
