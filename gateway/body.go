package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/bay-sandbox/bay/gateway/apierr"
)

// Defaults of the request limits (Config).
const (
	DefaultBodyLimit     = 32 << 20
	DefaultHeaderTimeout = 20 * time.Second
	DefaultBodyTimeout   = 60 * time.Second
	DefaultIdleTimeout   = 75 * time.Second
	// MaxTTLCeiling bounds every ttl and extend_by whatever the operator
	// set: ten years keeps expiry arithmetic far from time.Duration's range.
	MaxTTLCeiling = 10 * 365 * 24 * time.Hour

	// streamPrefetch is what fasthttp may read of a body before the
	// handler runs (a byte or two beyond what the client already sent);
	// anything longer is streamed.
	streamPrefetch = 1
	// drainLimit is how much of an unread body is drained after the
	// handler to keep the connection; past it the connection is closed.
	// It must cover ordinary refused uploads: fasthttp writes the answer
	// after the handler and closes without lingering, so closing on a
	// client still sending makes the kernel reset the connection and the
	// client loses the answer (a 400 becomes "connection reset"). Draining
	// only discards (8 KiB at a time), so memory does not grow with it.
	drainLimit = 64 << 20
	drainWait  = time.Second
)

const bodyKey = "bay_body"

// connMiddleware marks the request in flight on its connection (so the
// connection caps never evict it) and, after the handler, makes sure the
// next request on the connection starts at a request boundary: a body the
// handler left unread is drained if short, else the connection closes.
func (s *Server) connMiddleware(c *fiber.Ctx) error {
	done := connBegin(c.Context().Conn())
	defer done()
	err := c.Next()
	if stream := c.Context().RequestBodyStream(); stream != nil {
		// Only what has already arrived is drained: a client still sending
		// a body nobody wants is not waited for, its connection closes.
		if cl := c.Request().Header.ContentLength(); cl > drainLimit {
			// Too long to drain: close at once rather than read it.
			c.Context().SetConnectionClose()
			return err
		}
		var r io.Reader = stream
		if conn := c.Context().Conn(); conn != nil {
			_ = conn.SetReadDeadline(time.Now().Add(drainWait))
		}
		if _, derr := io.CopyN(io.Discard, r, drainLimit); !errors.Is(derr, io.EOF) {
			c.Context().SetConnectionClose()
		}
	}
	return err
}

// progressReader refreshes the connection's read deadline before each
// read: a body may take as long as it needs, but may not stall longer than
// the body timeout.
type progressReader struct {
	r       io.Reader
	conn    interface{ SetReadDeadline(time.Time) error }
	timeout time.Duration
}

func (p *progressReader) Read(b []byte) (int, error) {
	if p.conn != nil {
		_ = p.conn.SetReadDeadline(time.Now().Add(p.timeout))
	}
	return p.r.Read(b)
}

// bodyReader is the request body as a stream bounded by the body timeout.
func (s *Server) bodyReader(c *fiber.Ctx, stream io.Reader) io.Reader {
	if stream == nil {
		stream = c.Context().RequestBodyStream()
	}
	if stream == nil {
		return bytes.NewReader(c.Request().Body())
	}
	pr := &progressReader{r: stream, timeout: s.cfg.BodyTimeout}
	if conn := c.Context().Conn(); conn != nil {
		pr.conn = conn
	}
	return pr
}

// requestBody reads the whole (JSON) body once, refusing it with 413 as
// soon as it passes the body limit: nothing past the limit is buffered.
// Later calls return the same bytes.
func (s *Server) requestBody(c *fiber.Ctx) ([]byte, error) {
	if b, ok := c.Locals(bodyKey).([]byte); ok {
		return b, nil
	}
	limit := int64(s.cfg.BodyLimit)
	if cl := c.Request().Header.ContentLength(); cl > 0 && int64(cl) > limit {
		return nil, tooLarge(limit)
	}
	// Read in fixed chunks: memory never passes the limit, and nothing is
	// copied while reading (a growing buffer would hold one and a half
	// times the limit at its last doubling).
	const chunk = 256 << 10
	r := io.LimitReader(s.bodyReader(c, nil), limit+1)
	var parts [][]byte
	var total int64
	for {
		p := make([]byte, chunk)
		n, err := io.ReadFull(r, p)
		if n > 0 {
			parts = append(parts, p[:n])
			total += int64(n)
		}
		if total > limit {
			return nil, tooLarge(limit)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			c.Context().SetConnectionClose()
			return nil, apierr.New(http.StatusBadRequest, apierr.CodeBadRequest, "read request body: %v", err)
		}
	}
	b := bytes.Join(parts, nil)
	c.Locals(bodyKey, b)
	return b, nil
}

func tooLarge(limit int64) error {
	return apierr.New(http.StatusRequestEntityTooLarge, apierr.CodePayloadTooLarge,
		"request body exceeds the limit of %d bytes", limit).With(map[string]any{"field": "body", "limit_bytes": limit})
}
