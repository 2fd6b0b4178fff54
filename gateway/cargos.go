package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/gofiber/fiber/v2"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/gateway/apierr"
	"github.com/bay-sandbox/bay/store"
)

// cargoStore is what the cargo handlers need beyond the service's store.
type cargoStore interface {
	ListCargos(ctx context.Context, f store.CargoFilter) ([]store.Cargo, string, error)
	SandboxesUsingCargo(ctx context.Context, cargoID string) ([]string, error)
}

type cargoResponse struct {
	ID                 string  `json:"id"`
	Managed            bool    `json:"managed"`
	ManagedBySandboxID *string `json:"managed_by_sandbox_id"`
	Backend            string  `json:"backend"`
	SizeLimitMB        int     `json:"size_limit_mb"`
	CreatedAt          string  `json:"created_at"`
	LastAccessedAt     string  `json:"last_accessed_at"`
}

func cargoView(cg store.Cargo) cargoResponse {
	return cargoResponse{
		ID: cg.ID, Managed: cg.Managed, ManagedBySandboxID: optional(cg.ManagedBySandboxID), Backend: cg.Backend,
		SizeLimitMB: cg.SizeLimitMB, CreatedAt: ts(cg.CreatedAt), LastAccessedAt: ts(cg.LastAccessedAt),
	}
}

type createCargoRequest struct {
	SizeLimitMB *int `json:"size_limit_mb"`
}

func (s *Server) createCargo(c *fiber.Ctx) error {
	var req createCargoRequest
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	size, err := intRange("size_limit_mb", req.SizeLimitMB, 1024, 1, 65536)
	if err != nil {
		return err
	}
	cg, err := s.svc.CreateCargo(c.UserContext(), owner(c), "", size)
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(cargoView(cg))
}

func (s *Server) listCargos(c *fiber.Ctx) error {
	limit, err := queryInt(c, "limit", 50, 1, 200)
	if err != nil {
		return err
	}
	managed, err := queryBool(c, "managed")
	if err != nil {
		return err
	}
	if managed == nil {
		f := false
		managed = &f
	}
	items, next, err := s.store.ListCargos(c.UserContext(), store.CargoFilter{Owner: owner(c), Managed: managed, Limit: limit, Cursor: c.Query("cursor")})
	if errors.Is(err, store.ErrInvalidCursor) {
		return apierr.Schema("cursor", "invalid cursor")
	}
	if err != nil {
		return fmt.Errorf("list cargos: %w", err)
	}
	out := make([]cargoResponse, len(items))
	for i, cg := range items {
		out[i] = cargoView(cg)
	}
	return c.JSON(fiber.Map{"items": out, "next_cursor": optional(next)})
}

func (s *Server) loadCargo(c *fiber.Ctx) (store.Cargo, error) {
	id := c.Params("id")
	cg, err := s.store.GetCargo(c.UserContext(), owner(c), id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Cargo{}, apierr.NotFound("cargo", id)
	}
	if err != nil {
		return store.Cargo{}, fmt.Errorf("load cargo: %w", err)
	}
	return cg, nil
}

func (s *Server) getCargo(c *fiber.Ctx) error {
	cg, err := s.loadCargo(c)
	if err != nil {
		return err
	}
	return c.JSON(cargoView(cg))
}

func (s *Server) deleteCargo(c *fiber.Ctx) error {
	cg, err := s.loadCargo(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if cg.Managed && cg.ManagedBySandboxID != "" {
		if _, err := s.store.GetSandbox(ctx, "", cg.ManagedBySandboxID); err == nil {
			return apierr.Conflict("cargo %s is managed by sandbox %s; delete the sandbox instead", cg.ID, cg.ManagedBySandboxID).
				With(map[string]any{"managed_by_sandbox_id": cg.ManagedBySandboxID})
		}
	}
	users, err := s.store.SandboxesUsingCargo(ctx, cg.ID)
	if err != nil {
		return fmt.Errorf("find cargo users: %w", err)
	}
	if len(users) > 0 {
		sort.Strings(users)
		return apierr.Conflict("cargo %s is used by %d sandbox(es)", cg.ID, len(users)).
			With(map[string]any{"active_sandbox_ids": users})
	}
	if err := s.alloc.DeleteCargo(ctx, allocator.Cargo{ID: cg.ID, Backend: cg.Backend, Locator: cg.Locator}); err != nil {
		return fmt.Errorf("delete cargo storage: %w", err)
	}
	if err := s.store.DeleteCargo(ctx, cg.ID); err != nil {
		return fmt.Errorf("delete cargo: %w", err)
	}
	return c.SendStatus(http.StatusNoContent)
}
