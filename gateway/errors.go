package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/gateway/apierr"
	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/bay-sandbox/bay/store"
)

// envelope is the wire shape of every error (API.md §0).
type envelope struct {
	Error envelopeBody `json:"error"`
}

type envelopeBody struct {
	Code      string         `json:"code"`
	Message   string         `json:"message"`
	RequestID string         `json:"request_id"`
	Details   map[string]any `json:"details,omitempty"`
}

// errorHandler is the one place errors become HTTP responses.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	e := s.toAPIError(c, err)
	if e.RetryAfterMS > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.FormatInt((e.RetryAfterMS+999)/1000, 10))
	}
	rid := requestID(c)
	if rid == "" {
		// A fasthttp-level error (431, a malformed request, a header
		// timeout): no middleware ran, and the connection will close.
		rid = newRequestID()
		c.Set("X-Request-Id", rid)
		c.Context().SetConnectionClose()
	}
	body, _ := json.Marshal(envelope{Error: envelopeBody{Code: e.Code, Message: scrubAddrs(e.Message), RequestID: rid, Details: e.Details}})
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(e.Status).Send(body)
}

// toAPIError maps any error to the contract's vocabulary.
func (s *Server) toAPIError(c *fiber.Ctx, err error) *apierr.Error {
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case http.StatusNotFound:
			return apierr.New(fe.Code, apierr.CodeNotFound, "%s", fe.Message)
		case http.StatusMethodNotAllowed:
			return apierr.New(fe.Code, apierr.CodeMethodNotAllowed, "%s", fe.Message)
		case http.StatusRequestEntityTooLarge:
			return apierr.New(fe.Code, apierr.CodePayloadTooLarge, "%s", fe.Message)
		case http.StatusRequestHeaderFieldsTooLarge:
			return apierr.New(fe.Code, apierr.CodeBadRequest, "request headers are too large")
		case http.StatusRequestTimeout:
			return apierr.New(fe.Code, apierr.CodeTimeout, "the request was not received in time")
		case http.StatusBadGateway:
			// fiber's name for a connection-level read error.
			return apierr.New(http.StatusBadRequest, apierr.CodeBadRequest, "the request could not be read")
		case http.StatusUnprocessableEntity, http.StatusBadRequest:
			return apierr.New(http.StatusUnprocessableEntity, apierr.CodeValidation, "%s", fe.Message)
		}
		if fe.Code < 500 {
			return apierr.New(fe.Code, apierr.CodeValidation, "%s", fe.Message)
		}
	}
	if we, ok := wire.AsError(err); ok {
		return runtimeError(we)
	}
	if be, ok := backendError(c, err); ok {
		return be
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return apierr.New(http.StatusNotFound, apierr.CodeNotFound, "not found")
	case errors.Is(err, allocator.ErrCargoInUse):
		return apierr.Conflict("%s", err.Error())
	case errors.Is(err, allocator.ErrUnavailable):
		return apierr.NotReady(c.Params("id"), 5000, err.Error())
	case errors.Is(err, allocator.ErrStartFailed):
		return apierr.NotReady(c.Params("id"), 1000, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return apierr.New(http.StatusGatewayTimeout, apierr.CodeTimeout, "the runtime did not answer in time")
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) {
		// The runtime's address is internal: name the failure, not the URL.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return apierr.New(http.StatusBadGateway, apierr.CodeShipError, "runtime unreachable: %v", err)
	}
	s.log.Error("internal error", "method", c.Method(), "path", c.Path(), "request_id", requestID(c), "error", err)
	return apierr.New(http.StatusInternalServerError, apierr.CodeInternal, "internal error")
}

// runtimeError relays a runtime's refusal: client mistakes keep their status
// and code, anything else is a 502 ship_error.
func runtimeError(we *wire.Error) *apierr.Error {
	switch {
	case we.Status == http.StatusNotFound:
		return apierr.New(http.StatusNotFound, apierr.CodeFileNotFound, "%s", we.Message).With(we.Details)
	case we.Status == http.StatusConflict:
		return apierr.New(http.StatusConflict, apierr.CodeConflict, "%s", we.Message).With(we.Details)
	case we.Status == http.StatusInsufficientStorage && we.Code == wire.CodeCargoFull:
		return apierr.New(http.StatusInsufficientStorage, wire.CodeCargoFull, "%s", we.Message).With(we.Details)
	case we.Status == http.StatusGatewayTimeout || we.Code == wire.CodeTimeout:
		return apierr.New(http.StatusGatewayTimeout, apierr.CodeTimeout, "%s", we.Message)
	case we.Status == http.StatusRequestEntityTooLarge:
		return apierr.New(http.StatusRequestEntityTooLarge, apierr.CodePayloadTooLarge, "%s", we.Message).With(we.Details)
	case we.Status == http.StatusInsufficientStorage || we.Code == apierr.CodeInsufficientDisk:
		return apierr.New(http.StatusInsufficientStorage, apierr.CodeInsufficientDisk, "%s", we.Message).With(we.Details)
	case we.Status >= 400 && we.Status < 500:
		code := we.Code
		if code != apierr.CodeInvalidPath {
			code = apierr.CodeValidation
		}
		return apierr.New(http.StatusBadRequest, code, "%s", we.Message).With(we.Details)
	}
	return apierr.New(http.StatusBadGateway, apierr.CodeShipError, "runtime error: %s", we.Message)
}

// internalAddr matches URLs and host:port pairs of runtimes, which must not
// reach a client (they name the cluster's internal network).
var internalAddr = regexp.MustCompile(`(?i)\b(?:https?|unix)://[^\s"']+|\b\d{1,3}(?:\.\d{1,3}){3}:\d{1,5}\b|\[[0-9a-f:]+\]:\d{1,5}`)

// scrubAddrs replaces internal addresses in an error message.
func scrubAddrs(msg string) string {
	return internalAddr.ReplaceAllString(msg, "<runtime>")
}

// backendError maps a classified refusal or outage of the compute backend
// (allocator.BackendError, made where Nomad answered): a denial is a 502
// that names the missing ACL capability and is not worth retrying; a
// refused request a 502 with Nomad's reason; an outage or exhausted
// capacity a 503 with Retry-After (session_not_ready on a sandbox's routes,
// which clients already retry, backend_unavailable elsewhere).
func backendError(c *fiber.Ctx, err error) (*apierr.Error, bool) {
	var be *allocator.BackendError
	if !errors.As(err, &be) {
		return nil, false
	}
	details := map[string]any{"operation": be.Op, "retryable": false}
	switch {
	case errors.Is(be.Kind, allocator.ErrDenied):
		if be.Capability != "" {
			details["capability"] = be.Capability
		}
		return apierr.New(http.StatusBadGateway, apierr.CodeBackendDenied,
			"the gateway's Nomad token may not %s; grant it %s (see examples/acl/bay-policy.hcl)", be.Op, be.Capability).With(details), true
	case errors.Is(be.Kind, allocator.ErrRefused):
		return apierr.New(http.StatusBadGateway, apierr.CodeBackendRefused, "%s", scrubAddrs(be.Error())).With(details), true
	}
	retry := int64(5000)
	msg := scrubAddrs(be.Error())
	if errors.Is(be.Kind, allocator.ErrNoCapacity) {
		details["resources"] = be.Resources
		retry = 10000
	}
	var e *apierr.Error
	if id := c.Params("id"); id != "" && strings.HasPrefix(c.Path(), "/v1/sandboxes/") {
		e = apierr.NotReady(id, retry, msg)
	} else {
		e = apierr.New(http.StatusServiceUnavailable, apierr.CodeBackendUnavailable, "%s", msg)
		e.Details = map[string]any{"retry_after_ms": retry}
		e.RetryAfterMS = retry
	}
	for k, v := range details {
		e.Details[k] = v
	}
	e.Details["retryable"] = true
	return e, true
}
