package ship

// Request and response bodies of Ship's HTTP API (API.md §2). They are defined
// once here and used by both the server and the Client, so the two cannot drift.

// ReadFileRequest is the body of POST /fs/read_file. Offset is a 1-based line
// number and Limit a line count; zero means unset.
type ReadFileRequest struct {
	Path   string `json:"path"`
	Offset int    `json:"offset,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// ReadFileResponse carries the (UTF-8) content read. Size is the file's size
// in bytes, not the length of the returned slice of lines.
type ReadFileResponse struct {
	Content string `json:"content"`
	Path    string `json:"path"`
	Size    int64  `json:"size"`
}

// WriteFileRequest is the body of POST /fs/write_file. Mode is "w" (replace,
// the default when empty) or "a" (append). Parent directories are created.
type WriteFileRequest struct {
	Path    string `json:"path"`
	Content string `json:"content"`
	Mode    string `json:"mode,omitempty"`
}

// WriteFileResponse reports the file's size after the write.
type WriteFileResponse struct {
	Success bool   `json:"success"`
	Path    string `json:"path"`
	Size    int64  `json:"size"`
}

// EditFileRequest is the body of POST /fs/edit_file: an exact-string
// replacement. Without ReplaceAll, OldString must occur exactly once.
type EditFileRequest struct {
	Path       string `json:"path"`
	OldString  string `json:"old_string"`
	NewString  string `json:"new_string"`
	ReplaceAll bool   `json:"replace_all,omitempty"`
}

// EditFileResponse reports how many occurrences were replaced.
type EditFileResponse struct {
	Success      bool   `json:"success"`
	Path         string `json:"path"`
	Replacements int    `json:"replacements"`
	Size         int64  `json:"size"`
}

// DeleteFileRequest is the body of POST /fs/delete_file. Directories are
// removed with everything in them.
type DeleteFileRequest struct {
	Path string `json:"path"`
}

// DeleteFileResponse is the answer of POST /fs/delete_file.
type DeleteFileResponse struct {
	Success bool   `json:"success"`
	Path    string `json:"path"`
}

// ListDirRequest is the body of POST /fs/list_dir. Path defaults to ".".
type ListDirRequest struct {
	Path       string `json:"path,omitempty"`
	ShowHidden bool   `json:"show_hidden,omitempty"`
}

// ListDirResponse lists a directory: directories first, then files, each
// group sorted by name.
type ListDirResponse struct {
	Files       []FileInfo `json:"files"`
	CurrentPath string     `json:"current_path"`
}

// FileInfo describes one directory entry. Path is relative to the workspace;
// Size is nil for directories; ModifiedTime is RFC 3339 UTC with a Z.
type FileInfo struct {
	Name         string `json:"name"`
	Path         string `json:"path"`
	IsFile       bool   `json:"is_file"`
	IsDir        bool   `json:"is_dir"`
	Size         *int64 `json:"size"`
	ModifiedTime string `json:"modified_time"`
}

// UploadResponse is the answer of POST /fs/upload.
type UploadResponse struct {
	Success  bool   `json:"success"`
	FilePath string `json:"file_path"`
	Size     int64  `json:"size"`
}

// PythonExecRequest is the body of POST /ipython/exec. Timeout is in seconds
// (0 = the default of 30).
type PythonExecRequest struct {
	Code    string `json:"code"`
	Timeout int    `json:"timeout,omitempty"`
}

// PythonExecResponse is the result of one cell. A failing cell is still a
// 200 with Success false and the plain-text traceback in Error.
type PythonExecResponse struct {
	Success        bool         `json:"success"`
	ExecutionCount int          `json:"execution_count"`
	Output         PythonOutput `json:"output"`
	Error          *string      `json:"error"`
}

// PythonOutput is what a cell printed (stdout and stderr interleaved as
// written, then displayed values) and the images it produced, each as
// {"image/png": base64}.
type PythonOutput struct {
	Text   string              `json:"text"`
	Images []map[string]string `json:"images"`
}

// KernelStatus is the answer of GET /ipython/kernel/status and of
// POST /ipython/kernel/restart.
type KernelStatus struct {
	Status         string `json:"status"` // starting | ready | busy | stopped
	Engine         string `json:"engine"` // ipython | plain ("" before the first start)
	PythonVersion  string `json:"python_version,omitempty"`
	Python         string `json:"python"`
	PID            int    `json:"pid,omitempty"`
	ExecutionCount int    `json:"execution_count"`
	Restarts       int    `json:"restarts"`
}

// ShellExecRequest is the body of POST /shell/exec. Cwd is relative to the
// workspace (default: its root); Timeout is in seconds (0 = 30) and applies
// to foreground commands only.
type ShellExecRequest struct {
	Command    string            `json:"command"`
	Cwd        string            `json:"cwd,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	Timeout    int               `json:"timeout,omitempty"`
	Background bool              `json:"background,omitempty"`
}

// ShellExecResponse is the result of a foreground command, or the handle of a
// background one (ProcessID set, ReturnCode nil). A timed-out command has
// ReturnCode -1, Success false and Error saying so.
type ShellExecResponse struct {
	Success    bool    `json:"success"`
	ReturnCode *int    `json:"return_code"`
	Stdout     string  `json:"stdout"`
	Stderr     string  `json:"stderr"`
	PID        int     `json:"pid"`
	ProcessID  string  `json:"process_id"`
	Error      *string `json:"error"`
}

// ProcessInfo describes one background process. Status is running,
// completed (exit 0), failed (non-zero exit) or killed.
type ProcessInfo struct {
	ProcessID  string `json:"process_id"`
	PID        int    `json:"pid"`
	Command    string `json:"command"`
	Status     string `json:"status"`
	ReturnCode *int   `json:"return_code"`
	StartedAt  string `json:"started_at"`
	EndedAt    string `json:"ended_at,omitempty"`
}

// ProcessList is the answer of GET /shell/processes.
type ProcessList struct {
	Processes []ProcessInfo `json:"processes"`
}

// ProcessOutput is the answer of GET /shell/processes/{id} and
// POST /shell/processes/{id}/kill: the process and what it has written so
// far (the most recent part when it wrote more than the buffer holds).
type ProcessOutput struct {
	ProcessInfo
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
}
