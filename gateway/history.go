package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/bay-sandbox/bay/gateway/apierr"
	"github.com/bay-sandbox/bay/store"
)

// historyStore keeps executions and the blobs (traces) they refer to.
type historyStore interface {
	CreateExecution(ctx context.Context, e store.Execution) error
	GetExecution(ctx context.Context, owner, sandboxID, id string) (store.Execution, error)
	ListExecutions(ctx context.Context, f store.ExecutionFilter) ([]store.Execution, int, error)
	LastExecution(ctx context.Context, owner, sandboxID, execType string) (store.Execution, error)
	UpdateExecution(ctx context.Context, owner, sandboxID, id string, p store.ExecutionPatch) (store.Execution, error)
	PutBlob(ctx context.Context, b store.Blob) error
	GetBlob(ctx context.Context, owner, id string) (store.Blob, error)
}

type historyEntry struct {
	ID              string  `json:"id"`
	SessionID       *string `json:"session_id"`
	ExecType        string  `json:"exec_type"`
	Code            string  `json:"code"`
	Success         bool    `json:"success"`
	ExecutionTimeMS int64   `json:"execution_time_ms"`
	Output          *string `json:"output"`
	Error           *string `json:"error"`
	PayloadRef      *string `json:"payload_ref"`
	Description     *string `json:"description"`
	Tags            *string `json:"tags"`
	Notes           *string `json:"notes"`
	// The learning fields of Shipyard Neo's entries.
	LearnEnabled     bool    `json:"learn_enabled"`
	LearnStatus      *string `json:"learn_status"`
	LearnError       *string `json:"learn_error"`
	LearnProcessedAt *string `json:"learn_processed_at"`
	CreatedAt        string  `json:"created_at"`
}

func historyView(e store.Execution) historyEntry {
	return historyEntry{
		ID: e.ID, SessionID: optional(e.SessionID), ExecType: e.ExecType, Code: e.Code, Success: e.Success,
		ExecutionTimeMS: e.ExecutionTimeMS, Output: e.Output, Error: e.Error, PayloadRef: e.PayloadRef,
		Description: e.Description, Tags: e.Tags, Notes: e.Notes, CreatedAt: ts(e.CreatedAt),
		LearnEnabled: e.LearnEnabled, LearnStatus: e.LearnStatus, LearnError: e.LearnError,
		LearnProcessedAt: tsPtr(e.LearnProcessedAt),
	}
}

var execTypes = map[string]bool{"python": true, "shell": true, "browser": true, "browser_batch": true}

func execTypeQuery(c *fiber.Ctx) (string, error) {
	t := c.Query("exec_type")
	if t != "" && !execTypes[t] {
		return "", apierr.Schema("exec_type", "exec_type must be one of python, shell, browser, browser_batch")
	}
	return t, nil
}

func (s *Server) listHistory(c *fiber.Ctx) error {
	sb, err := s.loadSandbox(c)
	if err != nil {
		return err
	}
	f := store.ExecutionFilter{Owner: sb.Owner, SandboxID: sb.ID}
	if f.ExecType, err = execTypeQuery(c); err != nil {
		return err
	}
	for name, dst := range map[string]*bool{"success_only": &f.SuccessOnly, "has_notes": &f.HasNotes, "has_description": &f.HasDescription} {
		b, err := queryBool(c, name)
		if err != nil {
			return err
		}
		*dst = b != nil && *b
	}
	if f.Limit, err = queryInt(c, "limit", 100, 1, 500); err != nil {
		return err
	}
	if f.Offset, err = queryInt(c, "offset", 0, 0, 1<<31-1); err != nil {
		return err
	}
	if t := c.Query("tags"); t != "" {
		for _, tag := range strings.Split(t, ",") {
			if tag = strings.TrimSpace(tag); tag != "" {
				f.Tags = append(f.Tags, tag)
			}
		}
	}
	items, total, err := s.store.ListExecutions(c.UserContext(), f)
	if err != nil {
		return fmt.Errorf("list history: %w", err)
	}
	out := make([]historyEntry, len(items))
	for i, e := range items {
		out[i] = historyView(e)
	}
	return c.JSON(fiber.Map{"entries": out, "total": total})
}

func (s *Server) lastHistory(c *fiber.Ctx) error {
	sb, err := s.loadSandbox(c)
	if err != nil {
		return err
	}
	t, err := execTypeQuery(c)
	if err != nil {
		return err
	}
	e, err := s.store.LastExecution(c.UserContext(), sb.Owner, sb.ID, t)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.NotFound("history entry", "last")
	} else if err != nil {
		return fmt.Errorf("last history: %w", err)
	}
	return c.JSON(historyView(e))
}

func (s *Server) getHistory(c *fiber.Ctx) error {
	sb, err := s.loadSandbox(c)
	if err != nil {
		return err
	}
	e, err := s.store.GetExecution(c.UserContext(), sb.Owner, sb.ID, c.Params("exec"))
	if errors.Is(err, store.ErrNotFound) {
		return apierr.NotFound("execution", c.Params("exec"))
	} else if err != nil {
		return fmt.Errorf("get history: %w", err)
	}
	return c.JSON(historyView(e))
}

type patchHistoryRequest struct {
	Description *string `json:"description"`
	Tags        *string `json:"tags"`
	Notes       *string `json:"notes"`
}

func (s *Server) patchHistory(c *fiber.Ctx) error {
	var req patchHistoryRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	sb, err := s.loadSandbox(c)
	if err != nil {
		return err
	}
	p := store.ExecutionPatch{Description: req.Description, Notes: req.Notes}
	if req.Tags != nil {
		p.Tags = normalizeTags(req.Tags)
		if p.Tags == nil {
			empty := ""
			p.Tags = &empty
		}
	}
	e, err := s.store.UpdateExecution(c.UserContext(), sb.Owner, sb.ID, c.Params("exec"), p)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.NotFound("execution", c.Params("exec"))
	} else if err != nil {
		return fmt.Errorf("annotate history: %w", err)
	}
	return c.JSON(historyView(e))
}
