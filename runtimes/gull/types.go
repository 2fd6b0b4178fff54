// Package gull is the browser runtime: a small HTTP server that passes
// agent-browser sub-commands through to the CLI (one browser session per
// Gull, persistent profile in the cargo), and the typed client the gateway
// uses to call it. Request and response types are defined once, here.
package gull

// Limits and defaults of the wire contract (API.md §3).
const (
	DefaultExecTimeout  = 30
	MaxExecTimeout      = 300
	DefaultBatchTimeout = 60
	MaxBatchTimeout     = 600
)

// ExecRequest is the body of POST /exec. Cmd has no "agent-browser" prefix;
// Timeout is in seconds, 0 means the default.
type ExecRequest struct {
	Cmd     string `json:"cmd"`
	Timeout int    `json:"timeout,omitempty"`
}

// ExecResponse is the answer of POST /exec. A command that fails is still a
// 200; ExitCode -1 means Gull killed it (timeout or shutdown).
type ExecResponse struct {
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	ExitCode int    `json:"exit_code"`
}

// BatchRequest is the body of POST /exec_batch. Timeout (seconds, 0 = default)
// is one budget shared by all steps; StopOnError nil means true.
type BatchRequest struct {
	Commands    []string `json:"commands"`
	Timeout     int      `json:"timeout,omitempty"`
	StopOnError *bool    `json:"stop_on_error,omitempty"`
}

// StepResult is the outcome of one batch step.
type StepResult struct {
	Cmd        string `json:"cmd"`
	Stdout     string `json:"stdout"`
	Stderr     string `json:"stderr"`
	ExitCode   int    `json:"exit_code"`
	StepIndex  int    `json:"step_index"`
	DurationMS int64  `json:"duration_ms"`
}

// BatchResponse is the answer of POST /exec_batch. CompletedSteps counts the
// steps that ran (failed ones included); Success means every step ran and
// exited 0.
type BatchResponse struct {
	Results        []StepResult `json:"results"`
	TotalSteps     int          `json:"total_steps"`
	CompletedSteps int          `json:"completed_steps"`
	Success        bool         `json:"success"`
	DurationMS     int64        `json:"duration_ms"`
}

// Health statuses.
const (
	StatusHealthy   = "healthy"
	StatusDegraded  = "degraded"
	StatusUnhealthy = "unhealthy"
)
