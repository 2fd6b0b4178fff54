// Package gateway is Bay's HTTP API (API.md §1): a Fiber app whose handlers
// load sandboxes from the store, ask the sandbox service for a session and an
// endpoint, and forward capability calls to the runtimes through their
// typed clients.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/docs"
	"github.com/bay-sandbox/bay/gateway/gc"
	"github.com/bay-sandbox/bay/gateway/service"
	"github.com/bay-sandbox/bay/internal/version"
	"github.com/bay-sandbox/bay/profiles"
)

// Store is what the handlers need of the state store: the sandbox
// service's part plus one small interface per area, each listed beside the
// handlers that use it.
type Store interface {
	service.Store
	sandboxStore
	cargoStore
	historyStore
	skillStore
	idemStore
}

// ProfileSet is the configured profiles, in order.
type ProfileSet interface {
	Get(id string) (*profiles.Profile, bool)
	All() []profiles.Profile
}

// Config is the gateway's own configuration.
type Config struct {
	// APIKeyHashes are hex SHA-256 hashes of the legacy keys (api_keys,
	// BAY_API_KEY, the generated key): admin keys of DefaultOwner.
	APIKeyHashes []string
	// Keys are the named keys bound to owners (SetKeys replaces them).
	Keys           []Key
	AllowAnonymous bool
	// MaxSandboxesPerOwner limits live sandboxes per owner (0 = unlimited).
	MaxSandboxesPerOwner int
	// IdempotencyTTL is how long an idempotency key is remembered.
	IdempotencyTTL time.Duration
	// ContainerInfoTimeout bounds gathering per-container version/health.
	ContainerInfoTimeout time.Duration
	// RuntimeGrace is added to a call's own timeout for the HTTP round trip.
	RuntimeGrace time.Duration
	// DefaultProfile is used when a create request names none.
	DefaultProfile string
	// BodyLimit caps JSON request bodies; it is enforced while reading
	// (uploads are streamed and not bound by it).
	BodyLimit int
	// MaxTTL caps ttl and extend_by; 0 means no operator cap (a ceiling of
	// MaxTTLCeiling still holds so time arithmetic cannot overflow). With a
	// cap, a sandbox created without a ttl gets MaxTTL.
	MaxTTL time.Duration
	// HeaderTimeout bounds reading a request's headers (from its first byte,
	// or from the accept for a new connection).
	HeaderTimeout time.Duration
	// BodyTimeout is the longest a request body may stall between reads.
	BodyTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no next request.
	IdleTimeout time.Duration
	// WriteTimeout bounds writing one response (0 = none: downloads of any
	// size to slow clients must finish).
	WriteTimeout time.Duration
	// Conns are the connection caps.
	Conns ConnLimits
	// NoWarmup leaves a new sandbox without compute until its first call.
	NoWarmup bool
}

// Server is the gateway.
type Server struct {
	cfg      Config
	store    Store
	svc      *service.Manager
	alloc    allocator.Allocator
	profiles ProfileSet
	log      hclog.Logger
	hc       *http.Client
	app      *fiber.App
	idem     *idemLocks
	warm     WarmPool
	gc       *gc.Collector
	leader   Leader
	metrics  *metrics
	ll       atomic.Pointer[limitListener]
	keys     atomic.Pointer[keyring]
}

// WarmPool hands out pre-started sandboxes; nil means no warm pool.
type WarmPool interface {
	// Claimed is told a warm sandbox was handed to a user, to replenish.
	Claimed(profileID string)
}

// New builds the gateway.
func New(cfg Config, st Store, svc *service.Manager, alloc allocator.Allocator, ps ProfileSet, log hclog.Logger) *Server {
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = time.Hour
	}
	if cfg.ContainerInfoTimeout <= 0 {
		cfg.ContainerInfoTimeout = 2 * time.Second
	}
	if cfg.RuntimeGrace <= 0 {
		cfg.RuntimeGrace = 10 * time.Second
	}
	if cfg.DefaultProfile == "" {
		cfg.DefaultProfile = "python-default"
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.MaxTTL < 0 || cfg.MaxTTL > MaxTTLCeiling {
		cfg.MaxTTL = MaxTTLCeiling
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = DefaultHeaderTimeout
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	s := &Server{
		cfg: cfg, store: st, svc: svc, alloc: alloc, profiles: ps, log: log.Named("http"),
		hc:   newRuntimeHTTPClient(),
		idem: newIdemLocks(), metrics: newMetrics(),
	}
	s.app = fiber.New(fiber.Config{
		AppName:               "bay",
		DisableStartupMessage: true,
		ErrorHandler:          s.errorHandler,
		// Strings taken from a request outlive it (background warm-up,
		// metrics labels, logs); fasthttp would reuse their bytes.
		Immutable: true,
		// Every body is streamed: fasthttp keeps at most streamPrefetch
		// bytes before the handler runs, so authentication and the sandbox
		// lookup come before any body is read, and decodeBody enforces
		// BodyLimit while reading. No multipart pre-parse (it spooled
		// unauthenticated uploads to temp files).
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		BodyLimit:                    streamPrefetch,
		ReadBufferSize:               16 << 10,
		// Idle connections hold no read buffer.
		ReduceMemoryUsage: true,
		ReadTimeout:       cfg.HeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		WriteTimeout:      cfg.WriteTimeout,
	})
	s.SetKeys(cfg.Keys)
	s.routes()
	return s
}

// SetGC wires the garbage collector for the admin API (optional).
func (s *Server) SetGC(g *gc.Collector) { s.gc = g }

// Leader says whether this gateway leads the ones sharing its store.
type Leader interface {
	Leading() bool
	Terms() int64
}

// SetLeader wires the leader elector, for /metrics (optional).
func (s *Server) SetLeader(l Leader) { s.leader = l }

// SetWarmPool wires the warm pool (optional).
func (s *Server) SetWarmPool(w WarmPool) { s.warm = w }

// OpenConns is the number of client connections held now (0 before Serve).
func (s *Server) OpenConns() int {
	if ll := s.ll.Load(); ll != nil {
		return ll.Open()
	}
	return 0
}

// App is the Fiber app (for tests and for serving).
func (s *Server) App() *fiber.App { return s.app }

// Serve serves on ln until ctx ends, then shuts down gracefully. The
// listener is wrapped with the connection caps and accept-error backoff.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ll := newLimitListener(ln, s.cfg.Conns, s.log.Named("conns"))
	s.ll.Store(ll)
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(ll) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.app.ShutdownWithContext(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func newRuntimeHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{Transport: t}
}

func (s *Server) routes() {
	app := s.app
	app.Use(s.requestIDMiddleware)
	app.Use(s.connMiddleware)
	app.Use(s.metricsMiddleware)
	app.Get("/metrics", s.serveMetrics)
	app.Get("/health", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok", "version": version.String()})
	})
	app.Get("/openapi.json", serveOpenAPI)
	app.Get("/v1/profiles", s.listProfiles)

	v1 := app.Group("/v1", s.authMiddleware)
	v1.Post("/sandboxes", s.idempotent(s.createSandbox))
	v1.Get("/sandboxes", s.listSandboxes)
	v1.Get("/sandboxes/:id", s.getSandbox)
	v1.Delete("/sandboxes/:id", s.deleteSandbox)
	v1.Post("/sandboxes/:id/extend_ttl", s.idempotent(s.extendTTL))
	v1.Post("/sandboxes/:id/keepalive", s.keepalive)
	v1.Post("/sandboxes/:id/stop", s.stopSandbox)

	v1.Post("/sandboxes/:id/python/exec", s.pythonExec)
	v1.Post("/sandboxes/:id/shell/exec", s.shellExec)
	v1.Post("/sandboxes/:id/browser/exec", s.browserExec)
	v1.Post("/sandboxes/:id/browser/exec_batch", s.browserBatch)
	v1.Get("/sandboxes/:id/browser/traces/:ref", s.browserTrace)
	v1.Get("/sandboxes/:id/filesystem/files", s.readFile)
	v1.Put("/sandboxes/:id/filesystem/files", s.writeFile)
	v1.Delete("/sandboxes/:id/filesystem/files", s.deleteFile)
	v1.Get("/sandboxes/:id/filesystem/directories", s.listDir)
	v1.Post("/sandboxes/:id/filesystem/upload", s.upload)
	v1.Get("/sandboxes/:id/filesystem/download", s.download)

	v1.Get("/sandboxes/:id/history", s.listHistory)
	v1.Get("/sandboxes/:id/history/last", s.lastHistory)
	v1.Get("/sandboxes/:id/history/:exec", s.getHistory)
	v1.Patch("/sandboxes/:id/history/:exec", s.patchHistory)

	v1.Post("/cargos", s.idempotent(s.createCargo))
	v1.Get("/cargos", s.listCargos)
	v1.Get("/cargos/:id", s.getCargo)
	v1.Delete("/cargos/:id", s.deleteCargo)

	v1.Post("/sandboxes/:id/browser/skills/:key/run", s.runBrowserSkill)
	v1.Post("/skills/payloads", s.createSkillPayload)
	v1.Get("/skills/payloads/:ref", s.getSkillPayload)
	v1.Post("/skills/candidates", s.createSkillCandidate)
	v1.Get("/skills/candidates", s.listSkillCandidates)
	v1.Get("/skills/candidates/:cid", s.getSkillCandidate)
	v1.Delete("/skills/candidates/:cid", s.deleteSkillCandidate)
	v1.Post("/skills/candidates/:cid/evaluate", s.evaluateSkillCandidate)
	v1.Post("/skills/candidates/:cid/promote", s.promoteSkillCandidate)
	v1.Get("/skills/releases", s.listSkillReleases)
	v1.Delete("/skills/releases/:rid", s.deleteSkillRelease)
	v1.Post("/skills/releases/:rid/rollback", s.rollbackSkillRelease)
	v1.Get("/skills/releases/:rid/health", s.skillReleaseHealth)

	admin := v1.Group("/admin", s.adminOnly)
	admin.Post("/gc/run", s.gcRun)
	admin.Get("/gc/status", s.gcStatus)

	app.Use(func(c *fiber.Ctx) error {
		return fiber.NewError(http.StatusNotFound, "no route for "+c.Method()+" "+c.Path())
	})
}

const (
	requestIDKey = "request_id"
	serverKey    = "bay_server"
)

func (s *Server) requestIDMiddleware(c *fiber.Ctx) error {
	rid := c.Get("X-Request-Id")
	if rid == "" || len(rid) > 128 || !printableASCII(rid) {
		rid = newRequestID()
	}
	c.Locals(requestIDKey, rid)
	c.Locals(serverKey, s)
	c.Set("X-Request-Id", rid)
	return c.Next()
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "req-" + hex.EncodeToString(b[:])
}

// printableASCII reports whether s can be echoed in a header and a body.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func requestID(c *fiber.Ctx) string {
	if v, ok := c.Locals(requestIDKey).(string); ok {
		return v
	}
	return ""
}

// timeFmt is RFC 3339 UTC with milliseconds and Z.
const timeFmt = "2006-01-02T15:04:05.000Z"

func ts(t time.Time) string { return t.UTC().Format(timeFmt) }

func tsPtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := ts(*t)
	return &s
}

// serveOpenAPI serves the contract (docs/openapi.json) without auth.
func serveOpenAPI(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.SendString(docs.OpenAPI())
}
