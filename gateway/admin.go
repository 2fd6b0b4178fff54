package gateway

import (
	"errors"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/bay-sandbox/bay/gateway/apierr"
	"github.com/bay-sandbox/bay/gateway/gc"
)

type gcRunRequest struct {
	Tasks []string `json:"tasks"`
}

func (s *Server) gcRun(c *fiber.Ctx) error {
	if s.gc == nil {
		return apierr.New(http.StatusNotFound, apierr.CodeNotFound, "gc is not configured")
	}
	var req gcRunRequest
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	if err := gc.Validate(req.Tasks); err != nil {
		return apierr.Schema("tasks", "%v", err)
	}
	rep, err := s.gc.RunOnce(c.UserContext(), req.Tasks)
	if errors.Is(err, gc.ErrRunning) {
		return apierr.New(http.StatusLocked, apierr.CodeLocked, "a gc cycle is already running")
	}
	if err != nil {
		return err
	}
	return c.JSON(rep)
}

func (s *Server) gcStatus(c *fiber.Ctx) error {
	if s.gc == nil {
		return apierr.New(http.StatusNotFound, apierr.CodeNotFound, "gc is not configured")
	}
	return c.JSON(s.gc.Status())
}
