package client

import (
	"encoding/json"
	"time"
)

// Sandbox statuses.
const (
	StatusIdle     = "idle"
	StatusStarting = "starting"
	StatusReady    = "ready"
	StatusDegraded = "degraded"
	StatusFailed   = "failed"
	StatusExpired  = "expired"
)

// Start phases of a sandbox whose status is starting.
const (
	PhasePlacing            = "placing"
	PhaseStartingContainers = "starting_containers"
	PhaseHealthCheck        = "health_check"
)

// Sandbox is a sandbox as the gateway reports it.
type Sandbox struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	// Phase is what a cold start waits for while Status is starting.
	Phase         *string     `json:"phase"`
	Profile       string      `json:"profile"`
	CargoID       string      `json:"cargo_id"`
	Capabilities  []string    `json:"capabilities"`
	CreatedAt     time.Time   `json:"created_at"`
	ExpiresAt     *time.Time  `json:"expires_at"`
	IdleExpiresAt *time.Time  `json:"idle_expires_at"`
	Containers    []Container `json:"containers"`
}

// Container is one running container of a sandbox's session.
type Container struct {
	Name         string   `json:"name"`
	RuntimeType  string   `json:"runtime_type"`
	Status       string   `json:"status"`
	Version      *string  `json:"version"`
	Capabilities []string `json:"capabilities"`
	Healthy      *bool    `json:"healthy"`
}

// SandboxList is one page of sandboxes.
type SandboxList struct {
	Items      []Sandbox `json:"items"`
	NextCursor *string   `json:"next_cursor"`
}

// CreateSandboxRequest creates a sandbox; every field is optional.
type CreateSandboxRequest struct {
	Profile string `json:"profile,omitempty"`
	CargoID string `json:"cargo_id,omitempty"`
	// TTL in seconds; 0: no expiry.
	TTL int64 `json:"ttl,omitempty"`
}

// ListOptions pages a cursor-paged list.
type ListOptions struct {
	Limit  int
	Cursor string
}

// ExecMeta annotates an execution in history.
type ExecMeta struct {
	IncludeCode bool    `json:"include_code,omitempty"`
	Description *string `json:"description,omitempty"`
	// Tags is a comma-separated list.
	Tags *string `json:"tags,omitempty"`
}

// PythonRequest runs a cell.
type PythonRequest struct {
	Code string `json:"code"`
	// Timeout in seconds (1..300, default 30).
	Timeout int `json:"timeout,omitempty"`
	ExecMeta
}

// PythonResult is a cell's outcome; a failing cell has Success false.
type PythonResult struct {
	Success bool    `json:"success"`
	Output  string  `json:"output"`
	Error   *string `json:"error"`
	Data    struct {
		ExecutionCount int `json:"execution_count"`
		Output         struct {
			Text   string              `json:"text"`
			Images []map[string]string `json:"images"`
		} `json:"output"`
	} `json:"data"`
	ExecutionID     string  `json:"execution_id"`
	ExecutionTimeMS int64   `json:"execution_time_ms"`
	Code            *string `json:"code"`
}

// ShellRequest runs a command.
type ShellRequest struct {
	Command string `json:"command"`
	// Timeout in seconds (1..300, default 30).
	Timeout int `json:"timeout,omitempty"`
	// Cwd is relative to /workspace.
	Cwd string `json:"cwd,omitempty"`
	ExecMeta
}

// ShellResult is a command's outcome; a non-zero exit has Success false.
type ShellResult struct {
	Success         bool    `json:"success"`
	Output          string  `json:"output"`
	Error           *string `json:"error"`
	ExitCode        *int    `json:"exit_code"`
	ExecutionID     string  `json:"execution_id"`
	ExecutionTimeMS int64   `json:"execution_time_ms"`
	Command         *string `json:"command"`
}

// Streams an OutputChunk names.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
	// StreamOutput is Python's one interleaved stream.
	StreamOutput = "output"
)

// OutputChunk is output of a streamed exec, as the program wrote it.
type OutputChunk struct {
	Stream string `json:"stream"`
	Text   string `json:"text"`
}

// BrowserRequest runs one browser command (agent-browser syntax, without
// the agent-browser prefix).
type BrowserRequest struct {
	Cmd          string  `json:"cmd"`
	Timeout      int     `json:"timeout,omitempty"`
	Description  *string `json:"description,omitempty"`
	Tags         *string `json:"tags,omitempty"`
	Learn        bool    `json:"learn,omitempty"`
	IncludeTrace bool    `json:"include_trace,omitempty"`
}

// BrowserResult is one browser command's outcome.
type BrowserResult struct {
	Success         bool    `json:"success"`
	Output          string  `json:"output"`
	Error           *string `json:"error"`
	ExitCode        int     `json:"exit_code"`
	ExecutionID     string  `json:"execution_id"`
	ExecutionTimeMS int64   `json:"execution_time_ms"`
	TraceRef        *string `json:"trace_ref"`
}

// BrowserBatchRequest runs browser commands in one time budget.
type BrowserBatchRequest struct {
	Commands     []string `json:"commands"`
	Timeout      int      `json:"timeout,omitempty"`
	StopOnError  *bool    `json:"stop_on_error,omitempty"`
	Description  *string  `json:"description,omitempty"`
	Tags         *string  `json:"tags,omitempty"`
	Learn        bool     `json:"learn,omitempty"`
	IncludeTrace bool     `json:"include_trace,omitempty"`
}

// StepResult is one step of a batch.
type StepResult struct {
	Cmd        string `json:"cmd"`
	Stdout     string `json:"stdout"`
	Stderr     string `json:"stderr"`
	ExitCode   int    `json:"exit_code"`
	StepIndex  int    `json:"step_index"`
	DurationMS int64  `json:"duration_ms"`
}

// BrowserBatchResult is a batch's outcome.
type BrowserBatchResult struct {
	Results         []StepResult `json:"results"`
	TotalSteps      int          `json:"total_steps"`
	CompletedSteps  int          `json:"completed_steps"`
	Success         bool         `json:"success"`
	DurationMS      int64        `json:"duration_ms"`
	ExecutionID     string       `json:"execution_id"`
	ExecutionTimeMS int64        `json:"execution_time_ms"`
	TraceRef        *string      `json:"trace_ref"`
}

// DirEntry is one entry of a directory listing.
type DirEntry struct {
	Name         string `json:"name"`
	Path         string `json:"path"`
	IsFile       bool   `json:"is_file"`
	IsDir        bool   `json:"is_dir"`
	Size         *int64 `json:"size"`
	ModifiedTime string `json:"modified_time"`
}

// UploadResult is a finished upload.
type UploadResult struct {
	Status string `json:"status"`
	Path   string `json:"path"`
	Size   int64  `json:"size"`
}

// HistoryEntry is one recorded execution.
type HistoryEntry struct {
	ID              string    `json:"id"`
	SessionID       *string   `json:"session_id"`
	ExecType        string    `json:"exec_type"`
	Code            string    `json:"code"`
	Success         bool      `json:"success"`
	ExecutionTimeMS int64     `json:"execution_time_ms"`
	Output          *string   `json:"output"`
	Error           *string   `json:"error"`
	PayloadRef      *string   `json:"payload_ref"`
	Description     *string   `json:"description"`
	Tags            *string   `json:"tags"`
	Notes           *string   `json:"notes"`
	CreatedAt       time.Time `json:"created_at"`
}

// HistoryList is a page of history, newest first.
type HistoryList struct {
	Entries []HistoryEntry `json:"entries"`
	Total   int            `json:"total"`
}

// HistoryOptions filters a history listing.
type HistoryOptions struct {
	ExecType       string // python, shell, browser, browser_batch
	SuccessOnly    bool
	Limit, Offset  int
	Tags           string // comma list, any match
	HasNotes       bool
	HasDescription bool
}

// HistoryPatch annotates an execution; nil fields are left alone.
type HistoryPatch struct {
	Description *string `json:"description,omitempty"`
	Tags        *string `json:"tags,omitempty"`
	Notes       *string `json:"notes,omitempty"`
}

// Cargo is a workspace volume.
type Cargo struct {
	ID                 string    `json:"id"`
	Managed            bool      `json:"managed"`
	ManagedBySandboxID *string   `json:"managed_by_sandbox_id"`
	Backend            string    `json:"backend"`
	SizeLimitMB        int       `json:"size_limit_mb"`
	CreatedAt          time.Time `json:"created_at"`
	LastAccessedAt     time.Time `json:"last_accessed_at"`
}

// CargoList is one page of cargos.
type CargoList struct {
	Items      []Cargo `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// Resources of a profile or container.
type Resources struct {
	CPUs   float64 `json:"cpus"`
	Memory string  `json:"memory"`
}

// ProfileContainer is a container of a profile (detail listing).
type ProfileContainer struct {
	Name         string    `json:"name"`
	RuntimeType  string    `json:"runtime_type"`
	Capabilities []string  `json:"capabilities"`
	Resources    Resources `json:"resources"`
}

// Profile is a sandbox template.
type Profile struct {
	ID           string             `json:"id"`
	Image        string             `json:"image"`
	Resources    Resources          `json:"resources"`
	Capabilities []string           `json:"capabilities"`
	IdleTimeout  int64              `json:"idle_timeout"`
	Description  *string            `json:"description"`
	Containers   []ProfileContainer `json:"containers"`
}

// BrowserTrace is a stored browser trace.
type BrowserTrace struct {
	TraceRef string          `json:"trace_ref"`
	Trace    json.RawMessage `json:"trace"`
}
