// Package command is the bay CLI's client commands (sandbox, exec, fs,
// browser, cargo, history, profiles), in the style of the Nomad CLI: flags
// before arguments, -address/-api-key or BAY_ADDR/BAY_API_KEY, -json for
// machine output, human output otherwise. Every command talks to the
// gateway through the Go SDK (package client) only.
package command

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/bay-sandbox/bay/client"
)

// Exit codes of the client commands (exec shell exits with the program's).
const (
	ExitOK    = 0
	ExitError = 1 // the gateway refused, or could not be reached
	ExitUsage = 2 // bad flags or arguments
)

// Meta is what every command shares: its streams and environment.
type Meta struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads the environment (os.Getenv in the binary).
	Getenv func(string) string
	// Interactive: stderr is a terminal, so progress is shown there.
	Interactive bool

	address, apiKey, owner, credentials string
	json                                bool
}

// flags returns a flag set with the common client flags.
func (m *Meta) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.StringVar(&m.address, "address", "", "gateway address (default $BAY_ADDR, else "+client.DefaultAddress+")")
	fs.StringVar(&m.apiKey, "api-key", "", "API key (default $BAY_API_KEY, else the credentials file bay serve writes)")
	fs.StringVar(&m.owner, "owner", "", "X-Owner, for a gateway in anonymous mode (default $BAY_OWNER)")
	fs.StringVar(&m.credentials, "credentials", "", "credentials file (default $BAY_DATA_DIR/credentials.json, else ./.bay/credentials.json)")
	fs.BoolVar(&m.json, "json", false, "print JSON")
	return fs
}

// Client builds the SDK client: flags, then environment, then the
// credentials file `bay serve` writes when it generates a key.
func (m *Meta) Client() (*client.Client, error) {
	cfg := &client.Config{Address: m.address, APIKey: m.apiKey, Owner: m.owner, UserAgent: "bay-cli"}
	if cfg.Address == "" {
		cfg.Address = m.Getenv("BAY_ADDR")
	}
	if cfg.APIKey == "" {
		cfg.APIKey = m.Getenv("BAY_API_KEY")
	}
	if cfg.Owner == "" {
		cfg.Owner = m.Getenv("BAY_OWNER")
	}
	if cfg.APIKey == "" {
		key, err := m.keyFromCredentials()
		if err != nil {
			return nil, err
		}
		cfg.APIKey = key
	}
	return client.New(cfg)
}

// keyFromCredentials reads api_key from the credentials file; a missing
// default file is no error (the gateway may be anonymous).
func (m *Meta) keyFromCredentials() (string, error) {
	path, explicit := m.credentials, m.credentials != ""
	if path == "" {
		dir := m.Getenv("BAY_DATA_DIR")
		if dir == "" {
			dir = ".bay"
		}
		path = filepath.Join(dir, "credentials.json")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read credentials: %w", err)
	}
	var creds struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal(b, &creds); err != nil {
		return "", fmt.Errorf("read credentials %s: %w", path, err)
	}
	return creds.APIKey, nil
}

// printJSON prints v indented.
func (m *Meta) printJSON(v any) int {
	enc := json.NewEncoder(m.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return m.fail(err)
	}
	return ExitOK
}

// fail reports err and returns the error exit code.
func (m *Meta) fail(err error) int {
	var ae *client.APIError
	if errors.As(err, &ae) {
		fmt.Fprintf(m.Stderr, "Error: %s (%s", ae.Message, ae.Code)
		if ae.RequestID != "" {
			fmt.Fprintf(m.Stderr, ", request %s", ae.RequestID)
		}
		fmt.Fprintln(m.Stderr, ")")
		return ExitError
	}
	fmt.Fprintf(m.Stderr, "Error: %v\n", err)
	return ExitError
}

// usage reports a usage error.
func (m *Meta) usage(fs *flag.FlagSet, synopsis string, format string, args ...any) int {
	if format != "" {
		fmt.Fprintf(m.Stderr, "Error: "+format+"\n", args...)
	}
	fmt.Fprintf(m.Stderr, "Usage: %s\n", synopsis)
	if fs != nil {
		fmt.Fprintf(m.Stderr, "Run \"bay %s -h\" for its flags.\n", fs.Name())
	}
	return ExitUsage
}

// parse parses args, mapping -h to exit 0 and bad flags to usage.
func (m *Meta) parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK, false
		}
		return ExitUsage, false
	}
	return 0, true
}

// progress prints a line on the terminal (nothing when piped).
func (m *Meta) progress(format string, args ...any) {
	if m.Interactive {
		fmt.Fprintf(m.Stderr, format+"\n", args...)
	}
}

func describePhase(sb *client.Sandbox) string {
	phase := ""
	if sb.Phase != nil {
		phase = *sb.Phase
	}
	switch phase {
	case client.PhasePlacing:
		return "placing the session on a node"
	case client.PhaseStartingContainers:
		return "starting containers"
	case client.PhaseHealthCheck:
		return "waiting for the containers' health checks"
	}
	switch sb.Status {
	case client.StatusIdle:
		return "no compute yet; starting a session"
	case client.StatusReady:
		return "ready"
	case client.StatusDegraded:
		return "running, with a container down (degraded)"
	}
	return sb.Status
}

// shellQuote joins args into one command line, quoting where needed.
func shellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~!") {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
