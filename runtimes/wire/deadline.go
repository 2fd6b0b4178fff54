package wire

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// DeadlineHeader carries the caller's remaining budget for a call, in
// milliseconds (relative, so clocks need not agree). A runtime stops the
// call's work when the budget is spent: a queued call whose caller has
// given up never runs, a running one is interrupted and answered.
const DeadlineHeader = "X-Bay-Deadline-Ms"

// AnswerMargin is what a runtime keeps of the caller's budget to send its
// answer, so the caller hears why the call ended before it gives up.
const AnswerMargin = 1500 * time.Millisecond

// SetDeadline puts ctx's remaining time on req as DeadlineHeader.
func SetDeadline(req *http.Request, ctx context.Context) {
	if d, ok := ctx.Deadline(); ok {
		ms := time.Until(d).Milliseconds()
		if ms < 0 {
			ms = 0
		}
		req.Header.Set(DeadlineHeader, strconv.FormatInt(ms, 10))
	}
}

// CallContext is the context a runtime runs a call under: parent (the
// runtime's own lifetime) bounded by the caller's budget from header
// (empty or malformed: no bound) less AnswerMargin.
func CallContext(parent context.Context, header string) (context.Context, context.CancelFunc) {
	ms, err := strconv.ParseInt(header, 10, 64)
	if header == "" || err != nil || ms < 0 {
		return context.WithCancel(parent)
	}
	budget := time.Duration(ms)*time.Millisecond - AnswerMargin
	if budget < 0 {
		budget = 0
	}
	return context.WithTimeout(parent, budget)
}
