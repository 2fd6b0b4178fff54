package gateway

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/bay-sandbox/bay/runtimes/ship"
)

// pythonResult records a finished cell in history and returns the response
// body, the same for a plain and a streamed call.
func (s *Server) pythonResult(ctx context.Context, t target, meta execMeta, code string, res ship.PythonExecResponse, elapsed time.Duration) fiber.Map {
	images := res.Output.Images
	if images == nil {
		images = []map[string]string{}
	}
	id := s.record(ctx, t, "python", code, res.Success, elapsed, strPtr(res.Output.Text), res.Error, nil, meta)
	return fiber.Map{
		"success": res.Success,
		"output":  res.Output.Text,
		"error":   res.Error,
		"data": fiber.Map{
			"execution_count": res.ExecutionCount,
			"output":          fiber.Map{"text": res.Output.Text, "images": images},
		},
		"execution_id":      id,
		"execution_time_ms": elapsed.Milliseconds(),
		"code":              codeIf(meta.IncludeCode, code),
	}
}

// shellResult records a finished command in history and returns the
// response body, the same for a plain and a streamed call.
func (s *Server) shellResult(ctx context.Context, t target, meta execMeta, command string, res ship.ShellExecResponse, elapsed time.Duration) fiber.Map {
	output := res.Stdout + res.Stderr
	errText := res.Error
	if errText == nil && !res.Success && res.Stderr != "" {
		errText = strPtr(res.Stderr)
	}
	id := s.record(ctx, t, "shell", command, res.Success, elapsed, strPtr(output), errText, nil, meta)
	return fiber.Map{
		"success": res.Success, "output": output, "error": errText, "exit_code": res.ReturnCode,
		"execution_id": id, "execution_time_ms": elapsed.Milliseconds(), "command": codeIf(meta.IncludeCode, command),
	}
}
