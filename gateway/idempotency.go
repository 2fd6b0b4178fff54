package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"regexp"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/bay-sandbox/bay/gateway/apierr"
	"github.com/bay-sandbox/bay/store"
)

// idemStore keeps idempotency keys; a pending row guards concurrent first
// uses across gateway processes.
type idemStore interface {
	BeginIdem(ctx context.Context, owner, key, fingerprint string, now time.Time, ttl time.Duration) (store.IdemRecord, bool, error)
	CompleteIdem(ctx context.Context, owner, key string, status int, body []byte) error
	AbandonIdem(ctx context.Context, owner, key string) error
}

var idemKeyRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// idemLocks serialises concurrent uses of one (owner, key) inside this
// process; the store's pending row does the same across processes.
type idemLocks struct {
	mu    sync.Mutex
	locks map[string]*lockCount
}

type lockCount struct {
	mu sync.Mutex
	n  int
}

func newIdemLocks() *idemLocks { return &idemLocks{locks: map[string]*lockCount{}} }

func (l *idemLocks) lock(k string) func() {
	l.mu.Lock()
	lc := l.locks[k]
	if lc == nil {
		lc = &lockCount{}
		l.locks[k] = lc
	}
	lc.n++
	l.mu.Unlock()
	lc.mu.Lock()
	return func() {
		lc.mu.Unlock()
		l.mu.Lock()
		if lc.n--; lc.n == 0 {
			delete(l.locks, k)
		}
		l.mu.Unlock()
	}
}

// fingerprint identifies a request: method, path and the body with the
// route's defaults filled, keys sorted.
func (s *Server) fingerprint(c *fiber.Ctx) (string, error) {
	body := map[string]any{}
	raw, err := readBody(c)
	if err != nil {
		return "", err
	}
	if b := bytes.TrimSpace(raw); len(b) > 0 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			return "", apierr.Schema("body", "malformed JSON body: %v", err)
		}
	}
	// null means absent, for every field: no field of these routes has a
	// meaning for an explicit null other than its default.
	for k, v := range body {
		if v == nil {
			delete(body, k)
		}
	}
	for k, v := range s.requestDefaults(c) {
		if _, ok := body[k]; !ok {
			body[k] = v
		}
	}
	canon, err := json.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("canonical body: %w", err)
	}
	sum := sha256.Sum256([]byte(c.Method() + " " + c.Path() + "\n" + string(canon)))
	return hex.EncodeToString(sum[:]), nil
}

// requestDefaults are the values an omitted field means, so that `{}` and
// the same body with the defaults spelled out are one request.
func (s *Server) requestDefaults(c *fiber.Ctx) map[string]any {
	switch c.Route().Path {
	case "/v1/sandboxes":
		return map[string]any{"profile": s.cfg.DefaultProfile, "ttl": json.Number("0")}
	case "/v1/cargos":
		return map[string]any{"size_limit_mb": json.Number("1024")}
	}
	return nil
}

// idempotent wraps a handler with Idempotency-Key semantics (API.md §0).
func (s *Server) idempotent(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		key := c.Get("Idempotency-Key")
		if key == "" {
			return h(c)
		}
		if !idemKeyRe.MatchString(key) {
			return apierr.Conflict("Idempotency-Key must match %s", idemKeyRe.String())
		}
		fp, err := s.fingerprint(c)
		if err != nil {
			return err
		}
		own := owner(c)
		unlock := s.idem.lock(own + "\x00" + key)
		defer unlock()
		ctx := c.UserContext()

		deadline := time.Now().Add(30 * time.Second)
		for {
			rec, acquired, err := s.store.BeginIdem(ctx, own, key, fp, s.svc.Now(), s.cfg.IdempotencyTTL)
			if err != nil {
				return fmt.Errorf("idempotency lookup: %w", err)
			}
			if acquired {
				break
			}
			if rec.Fingerprint != fp {
				return apierr.Conflict("Idempotency-Key %q was used for a different request", key)
			}
			if !rec.Pending {
				c.Set("Idempotent-Replayed", "true")
				c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
				return c.Status(rec.Status).Send(rec.Body)
			}
			// Another gateway instance is executing it: wait for its result.
			if time.Now().After(deadline) {
				return apierr.Conflict("a request with Idempotency-Key %q is still in progress", key)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}

		herr := h(c)
		status := c.Response().StatusCode()
		if herr != nil || status < 200 || status >= 300 {
			if err := s.store.AbandonIdem(ctx, own, key); err != nil {
				s.log.Warn("abandon idempotency key", "error", err)
			}
			return herr
		}
		body := append([]byte(nil), c.Response().Body()...)
		if err := s.store.CompleteIdem(ctx, own, key, status, body); err != nil {
			s.log.Warn("store idempotent response", "error", err)
		}
		return nil
	}
}
