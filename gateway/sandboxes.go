package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/bay-sandbox/bay/gateway/apierr"
	"github.com/bay-sandbox/bay/gateway/service"
	"github.com/bay-sandbox/bay/profiles"
	"github.com/bay-sandbox/bay/runtimes/gull"
	"github.com/bay-sandbox/bay/runtimes/ship"
	"github.com/bay-sandbox/bay/runtimes/wire"
	"github.com/bay-sandbox/bay/store"
)

// sandboxStore is what the sandbox handlers need beyond the service's store.
type sandboxStore interface {
	CreateSandbox(ctx context.Context, sb store.Sandbox) error
	ListSandboxes(ctx context.Context, f store.SandboxFilter) ([]store.Sandbox, string, error)
	CountSandboxes(ctx context.Context, owner string) (int, error)
	SandboxTombstoned(ctx context.Context, owner, id string) (bool, error)
	SetExpiry(ctx context.Context, id string, t *time.Time) error
	ClaimWarm(ctx context.Context, profileID, owner string, now time.Time, ttlSeconds int64, expiresAt *time.Time) (store.Sandbox, bool, error)
}

type sandboxResponse struct {
	ID            string              `json:"id"`
	Status        string              `json:"status"`
	Phase         *string             `json:"phase"`
	Profile       string              `json:"profile"`
	CargoID       string              `json:"cargo_id"`
	Capabilities  []string            `json:"capabilities"`
	CreatedAt     string              `json:"created_at"`
	ExpiresAt     *string             `json:"expires_at"`
	IdleExpiresAt *string             `json:"idle_expires_at"`
	Containers    []containerResponse `json:"containers"`
}

type containerResponse struct {
	Name         string   `json:"name"`
	RuntimeType  string   `json:"runtime_type"`
	Status       string   `json:"status"`
	Version      *string  `json:"version"`
	Capabilities []string `json:"capabilities"`
	Healthy      *bool    `json:"healthy"`
}

func (s *Server) sandboxView(sb store.Sandbox) sandboxResponse {
	r := sandboxResponse{
		ID: sb.ID, Status: s.svc.Status(sb), Profile: sb.ProfileID, CargoID: sb.CargoID,
		Capabilities: []string{}, CreatedAt: ts(sb.CreatedAt), ExpiresAt: tsPtr(sb.ExpiresAt),
	}
	if p, ok := s.profiles.Get(sb.ProfileID); ok {
		r.Capabilities = p.Capabilities()
	}
	if r.Status == service.StatusStarting {
		r.Phase = optional(s.svc.StartPhase(sb.ID))
	}
	if d, ok := s.svc.IdleDeadline(sb.ID); ok && s.svc.SessionID(sb.ID) != "" {
		r.IdleExpiresAt = tsPtr(&d)
	} else if sb.SessionID != "" {
		r.IdleExpiresAt = tsPtr(sb.IdleExpiresAt)
	}
	return r
}

// loadSandbox loads the caller's sandbox :id (foreign or unknown → 404).
func (s *Server) loadSandbox(c *fiber.Ctx) (store.Sandbox, error) {
	id := c.Params("id")
	sb, err := s.store.GetSandbox(c.UserContext(), owner(c), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sb.Warm) {
		return store.Sandbox{}, apierr.NotFound("sandbox", id)
	}
	if err != nil {
		return store.Sandbox{}, fmt.Errorf("load sandbox: %w", err)
	}
	return sb, nil
}

type createSandboxRequest struct {
	Profile *string `json:"profile"`
	CargoID *string `json:"cargo_id"`
	TTL     *int64  `json:"ttl"`
}

func (s *Server) createSandbox(c *fiber.Ctx) error {
	var req createSandboxRequest
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	ctx := c.UserContext()
	own := owner(c)
	profileID := s.cfg.DefaultProfile
	if req.Profile != nil {
		profileID = *req.Profile
	}
	p, ok := s.profiles.Get(profileID)
	if !ok {
		return apierr.Validation("unknown profile %q", profileID).With(map[string]any{"profile": profileID})
	}
	ttl, err := int64Range("ttl", req.TTL, 0, 0, s.maxTTLSeconds())
	if err != nil {
		return err
	}
	if ttl == 0 && s.cfg.MaxTTL > 0 {
		// The operator caps lifetimes: "no expiry" means the longest allowed.
		ttl = s.maxTTLSeconds()
	}
	if s.cfg.MaxSandboxesPerOwner > 0 {
		n, err := s.store.CountSandboxes(ctx, own)
		if err != nil {
			return fmt.Errorf("count sandboxes: %w", err)
		}
		if n >= s.cfg.MaxSandboxesPerOwner {
			return apierr.New(http.StatusTooManyRequests, apierr.CodeQuota,
				"owner %q already has %d sandboxes (limit %d)", own, n, s.cfg.MaxSandboxesPerOwner)
		}
	}
	now := s.svc.Now()
	var expires *time.Time
	if ttl > 0 {
		e := now.Add(time.Duration(ttl) * time.Second)
		expires = &e
	}

	if req.CargoID == nil && s.warm != nil {
		sb, ok, err := s.store.ClaimWarm(ctx, p.ID, own, now, ttl, expires)
		if err != nil {
			return fmt.Errorf("claim warm sandbox: %w", err)
		}
		if ok {
			s.warm.Claimed(p.ID)
			s.svc.Touch(ctx, sb, p)
			return c.Status(http.StatusCreated).JSON(s.sandboxView(sb))
		}
	}

	sb := store.Sandbox{
		ID: service.NewID("sandbox-"), Owner: own, ProfileID: p.ID, TTLSeconds: ttl,
		CreatedAt: now, ExpiresAt: expires,
	}
	if req.CargoID != nil {
		cg, err := s.store.GetCargo(ctx, own, *req.CargoID)
		if errors.Is(err, store.ErrNotFound) {
			return apierr.NotFound("cargo", *req.CargoID)
		} else if err != nil {
			return fmt.Errorf("load cargo: %w", err)
		}
		if cg.Managed {
			// A managed cargo lives and dies with its sandbox; sharing it
			// would lose the other sandbox's files at that delete.
			return apierr.Conflict("cargo %s is managed by sandbox %s; create an external cargo to share files", cg.ID, cg.ManagedBySandboxID).
				With(map[string]any{"managed_by_sandbox_id": cg.ManagedBySandboxID})
		}
		sb.CargoID = cg.ID
	} else {
		cg, err := s.svc.CreateCargo(ctx, own, sb.ID, 0)
		if err != nil {
			return err
		}
		sb.CargoID = cg.ID
	}
	if err := s.store.CreateSandbox(ctx, sb); err != nil {
		return fmt.Errorf("create sandbox: %w", err)
	}
	if !s.cfg.NoWarmup {
		s.svc.Warmup(sb)
	}
	return c.Status(http.StatusCreated).JSON(s.sandboxView(sb))
}

func (s *Server) listSandboxes(c *fiber.Ctx) error {
	limit, err := queryInt(c, "limit", 50, 1, 200)
	if err != nil {
		return err
	}
	status := c.Query("status")
	switch status {
	case "", service.StatusIdle, service.StatusStarting, service.StatusReady, service.StatusDegraded, service.StatusFailed, service.StatusExpired,
		service.StatusStopping, service.StatusDeleting:
	default:
		return apierr.Schema("status", "unknown status %q", status)
	}
	cursor := c.Query("cursor")
	items := make([]sandboxResponse, 0, limit)
	// Status is computed, so a status filter may need several store pages.
	for {
		page, next, err := s.store.ListSandboxes(c.UserContext(), store.SandboxFilter{Owner: owner(c), Limit: limit - len(items), Cursor: cursor})
		if errors.Is(err, store.ErrInvalidCursor) {
			return apierr.Schema("cursor", "invalid cursor")
		}
		if err != nil {
			return fmt.Errorf("list sandboxes: %w", err)
		}
		for _, sb := range page {
			v := s.sandboxView(sb)
			if status == "" || v.Status == status {
				items = append(items, v)
			}
		}
		cursor = next
		if next == "" || len(items) >= limit {
			break
		}
	}
	var nc *string
	if cursor != "" {
		nc = &cursor
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": nc})
}

func (s *Server) getSandbox(c *fiber.Ctx) error {
	sb, err := s.loadSandbox(c)
	if err != nil {
		return err
	}
	v := s.sandboxView(sb)
	if cs := s.svc.Containers(c.UserContext(), sb); cs != nil {
		v.Containers = s.containerInfo(c.UserContext(), sb, cs)
	}
	return c.JSON(v)
}

// containerInfo asks every running container for its version and health,
// concurrently and bounded, so one hung runtime cannot stall the call.
func (s *Server) containerInfo(ctx context.Context, sb store.Sandbox, cs []service.ContainerState) []containerResponse {
	p, _ := s.profiles.Get(sb.ProfileID)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ContainerInfoTimeout)
	defer cancel()
	out := make([]containerResponse, len(cs))
	var wg sync.WaitGroup
	for i, cst := range cs {
		caps := []string{}
		if p != nil {
			if pc, ok := p.Container(cst.Name); ok {
				caps = sortedCopy(pc.Capabilities)
			}
		}
		out[i] = containerResponse{Name: cst.Name, RuntimeType: cst.RuntimeType, Status: cst.Status, Capabilities: caps}
		if cst.Status == "failed" {
			f := false
			out[i].Healthy = &f
		}
		if cst.Endpoint == "" {
			continue
		}
		wg.Add(1)
		go func(i int, cst service.ContainerState) {
			defer wg.Done()
			var h wire.Health
			var err error
			switch cst.RuntimeType {
			case profiles.RuntimeGull:
				h, err = gull.NewClient(cst.Endpoint, s.hc).Health(ctx)
			default:
				h, err = ship.NewClient(cst.Endpoint, s.hc).Health(ctx)
			}
			healthy := err == nil && h.Status == "healthy"
			out[i].Healthy = &healthy
			if err == nil && h.Version != "" {
				v := h.Version
				out[i].Version = &v
			}
		}(i, cst)
	}
	wg.Wait()
	return out
}

type extendTTLRequest struct {
	ExtendBy *int64 `json:"extend_by"`
}

func (s *Server) extendTTL(c *fiber.Ctx) error {
	var req extendTTLRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	extendBy, err := required("extend_by", req.ExtendBy)
	if err != nil {
		return err
	}
	if extendBy <= 0 {
		return apierr.Validation("extend_by must be > 0").With(map[string]any{"field": "extend_by", "min": 1, "max": s.maxTTLSeconds()})
	}
	if _, err := int64Range("extend_by", &extendBy, 0, 1, s.maxTTLSeconds()); err != nil {
		return err
	}
	// One extension at a time per sandbox: two concurrent ones must add
	// up, not race to write the same base plus their own amount (which
	// could move the expiry backwards from what one caller was told).
	unlock := s.idem.lock("extend_ttl\x00" + c.Params("id"))
	defer unlock()
	sb, err := s.loadSandbox(c)
	if err != nil {
		return err
	}
	if sb.ExpiresAt == nil {
		return apierr.New(http.StatusConflict, apierr.CodeTTLInfinite, "sandbox %s has no TTL to extend", sb.ID)
	}
	now := s.svc.Now()
	if !now.Before(*sb.ExpiresAt) {
		return apierr.New(http.StatusConflict, apierr.CodeExpired, "sandbox %s has expired", sb.ID)
	}
	base := *sb.ExpiresAt
	if now.After(base) {
		base = now
	}
	e := base.Add(time.Duration(extendBy) * time.Second)
	if limit := now.Add(time.Duration(s.maxTTLSeconds()) * time.Second); e.After(limit) {
		room := int64(limit.Sub(base) / time.Second)
		if room < 0 {
			room = 0
		}
		return apierr.Schema("extend_by", "extend_by of %d s would put the expiry more than %d s from now; at most %d s is allowed",
			extendBy, s.maxTTLSeconds(), room).With(map[string]any{"field": "extend_by", "min": 1, "max": room})
	}
	if !e.After(*sb.ExpiresAt) {
		return apierr.Validation("extend_by must move the expiry later")
	}
	if err := s.store.SetExpiry(c.UserContext(), sb.ID, &e); err != nil {
		return fmt.Errorf("extend ttl: %w", err)
	}
	sb.ExpiresAt = &e
	return c.JSON(s.sandboxView(sb))
}

func (s *Server) keepalive(c *fiber.Ctx) error {
	sb, err := s.loadSandbox(c)
	if err != nil {
		return err
	}
	if s.svc.Status(sb) == service.StatusExpired {
		return apierr.New(http.StatusConflict, apierr.CodeExpired, "sandbox %s has expired", sb.ID)
	}
	p, err := s.svc.Profile(sb)
	if err != nil {
		return err
	}
	if s.svc.SessionID(sb.ID) != "" {
		s.svc.Touch(c.UserContext(), sb, p)
	}
	return c.JSON(fiber.Map{"status": "ok"})
}

func (s *Server) stopSandbox(c *fiber.Ctx) error {
	sb, err := s.loadSandbox(c)
	if err != nil {
		return err
	}
	// Recorded first, then carried out: a quick stop answers as it always
	// did; one that cannot finish now (Nomad unreachable, tasks slow to
	// exit) answers 202 with the pending state, and the reconcile loop
	// finishes it. A repeated stop is the same request again.
	done, err := s.svc.RequestStop(c.UserContext(), sb)
	if err != nil {
		return err
	}
	if !done {
		return c.Status(http.StatusAccepted).JSON(fiber.Map{"status": service.StatusStopping})
	}
	return c.JSON(fiber.Map{"status": "stopped"})
}

// deleteSandbox is idempotent for the owner: a sandbox already deleted (by
// the owner or by TTL expiry) leaves a tombstone, so a repeat is 204 for its
// owner and 404 for everyone else.
func (s *Server) deleteSandbox(c *fiber.Ctx) error {
	sb, err := s.loadSandbox(c)
	var ae *apierr.Error
	if errors.As(err, &ae) && ae.Code == apierr.CodeNotFound {
		gone, terr := s.store.SandboxTombstoned(c.UserContext(), owner(c), c.Params("id"))
		if terr != nil {
			return fmt.Errorf("check deleted sandbox: %w", terr)
		}
		if gone {
			return c.SendStatus(http.StatusNoContent)
		}
	}
	if err != nil {
		return err
	}
	// As stop: recorded first; 204 when it finished now, else 202 with the
	// sandbox reading "deleting" until the reconcile loop finishes it. A
	// repeated DELETE resumes it (and is 204 once the tombstone is there).
	done, err := s.svc.RequestDelete(c.UserContext(), sb)
	if err != nil {
		return err
	}
	if !done {
		sb.Intent = store.IntentDelete
		return c.Status(http.StatusAccepted).JSON(s.sandboxView(sb))
	}
	return c.SendStatus(http.StatusNoContent)
}

// maxTTLSeconds is the longest ttl or extension a request may ask for.
func (s *Server) maxTTLSeconds() int64 {
	if s.cfg.MaxTTL > 0 {
		return int64(s.cfg.MaxTTL / time.Second)
	}
	return int64(MaxTTLCeiling / time.Second)
}
