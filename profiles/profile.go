// Package profiles is the schema of operator-defined sandbox profiles: what
// containers a session runs, which capabilities each offers, and how a
// capability is routed to a container. It imports nothing of Bay.
package profiles

import (
	"slices"
	"strings"
	"time"
)

// Capabilities a container can offer.
const (
	CapPython     = "python"
	CapShell      = "shell"
	CapFilesystem = "filesystem"
	CapBrowser    = "browser"
)

// Runtime types a container can be.
const (
	RuntimeShip = "ship"
	RuntimeGull = "gull"
)

// Default runtime ports, as in the wire contract.
const (
	DefaultShipPort = 8123
	DefaultGullPort = 8115
)

// Profile is one sandbox template.
type Profile struct {
	ID          string
	Description string
	// IdleTimeout is how long a session may sit without a capability call
	// before it is released (scale to zero).
	IdleTimeout time.Duration
	// Env is given to every container; container env wins on conflicts.
	Env           map[string]string
	WarmPoolSize  int
	WarmRotateTTL time.Duration
	Restart       RestartPolicy
	// Network is NetworkDefault (outbound network where the host has it)
	// or NetworkNone (loopback only: the session's containers reach each
	// other and nothing else).
	Network    string
	Containers []Container
}

// Profile network modes.
const (
	NetworkDefault = ""
	NetworkNone    = "none"
)

// RestartPolicy is how often, and after what delay, a dead container is
// restarted in place before the session is given up.
type RestartPolicy struct {
	Attempts int
	Delay    time.Duration
}

// Container is one task of a session.
type Container struct {
	Name         string
	RuntimeType  string // RuntimeShip or RuntimeGull
	RuntimePort  int
	Capabilities []string
	PrimaryFor   []string
	Env          map[string]string
	Resources    Resources
	// Nomad task shape. Driver "" means the gateway's configured default.
	Driver  string // docker | exec | raw_exec
	Image   string
	Command string
	Args    []string
}

// Resources are per container (DESIGN rule 8), in Nomad's units.
type Resources struct {
	CPU      int // MHz
	MemoryMB int
}

// Capabilities is the union of the containers' capabilities, in profile order.
func (p *Profile) Capabilities() []string {
	var out []string
	for _, c := range p.Containers {
		for _, cap := range c.Capabilities {
			if !slices.Contains(out, cap) {
				out = append(out, cap)
			}
		}
	}
	return out
}

// Route picks the container serving capability: one listing it in PrimaryFor
// wins, otherwise the first container (profile order) offering it.
func (p *Profile) Route(capability string) (*Container, bool) {
	for i := range p.Containers {
		if slices.Contains(p.Containers[i].PrimaryFor, capability) {
			return &p.Containers[i], true
		}
	}
	for i := range p.Containers {
		if slices.Contains(p.Containers[i].Capabilities, capability) {
			return &p.Containers[i], true
		}
	}
	return nil, false
}

// Container returns the container called name.
func (p *Profile) Container(name string) (*Container, bool) {
	for i := range p.Containers {
		if p.Containers[i].Name == name {
			return &p.Containers[i], true
		}
	}
	return nil, false
}

// Vars are the values of the placeholders allowed in env values.
type Vars struct {
	SandboxID     string
	SessionID     string
	ContainerName string
	CargoPath     string
}

// Expand replaces ${SANDBOX_ID}, ${SESSION_ID}, ${CONTAINER_NAME} and
// ${CARGO_PATH} in s; other text, including unknown placeholders, is kept.
func Expand(s string, v Vars) string {
	if !strings.Contains(s, "${") {
		return s
	}
	return strings.NewReplacer(
		"${SANDBOX_ID}", v.SandboxID,
		"${SESSION_ID}", v.SessionID,
		"${CONTAINER_NAME}", v.ContainerName,
		"${CARGO_PATH}", v.CargoPath,
	).Replace(s)
}

// ProfileEnvVar names the variable listing (comma-separated, sorted) the
// keys of a container's profile env, so Ship can write them to the
// workspace's .bay_env.sh for scripts to source.
const ProfileEnvVar = "BAY_PROFILE_ENV"

// EnvKeys is the value of ProfileEnvVar for env.
func EnvKeys(env map[string]string) string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}

// ContainerEnv is the environment of container c in a session: profile env,
// then container env, placeholders expanded. Identity variables (BAY_*) are
// added by the allocator, not here.
func (p *Profile) ContainerEnv(c *Container, v Vars) map[string]string {
	v.ContainerName = c.Name
	out := make(map[string]string, len(p.Env)+len(c.Env))
	for k, val := range p.Env {
		out[k] = Expand(val, v)
	}
	for k, val := range c.Env {
		out[k] = Expand(val, v)
	}
	return out
}
