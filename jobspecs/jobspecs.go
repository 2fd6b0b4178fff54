// Package jobspecs renders a session of a profile into a Nomad job. It is
// pure: no I/O, no clock, and the same input always gives the same job, so
// the rendered jobs are pinned by golden files.
package jobspecs

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/bay-sandbox/bay/profiles"
)

// Job meta keys. Every Bay job carries all of them so that a restarted
// gateway can match jobs to sessions (re-adoption) and find orphans.
const (
	MetaSandboxID = "bay.sandbox_id"
	MetaSessionID = "bay.session_id"
	MetaProfile   = "bay.profile"
	MetaOwner     = "bay.owner"
	MetaCargoID   = "bay.cargo_id"
	MetaInstance  = "bay.instance"
)

// Shape of the rendered job.
const (
	// GroupName is the one task group of a session.
	GroupName = "session"
	// WorkspacePath is where drivers that can mount see the cargo.
	WorkspacePath = "/workspace"
	// CargoVolume is the group volume label the tasks mount.
	CargoVolume = "cargo"
	// EphemeralWorkspace is the workspace when the job claims no volume: the
	// allocation's shared data directory, which every driver can reach and
	// Nomad interpolates per task.
	EphemeralWorkspace = "${NOMAD_ALLOC_DIR}/data"
	// HealthPath is what the service check asks each runtime.
	HealthPath = "/health"
	// ServiceTag marks every service Bay registers.
	ServiceTag = "bay"
)

// The capability a dynamic host volume must be created with so that the
// group's volume request can claim it: the scheduler only places a request
// on a volume whose capabilities contain exactly this access and attachment
// mode.
const (
	VolumeAccessMode     = "single-node-writer"
	VolumeAttachmentMode = "file-system"
)

// Task drivers Bay renders.
const (
	DriverDocker  = "docker"
	DriverExec    = "exec"
	DriverRawExec = "raw_exec"
)

// Service providers.
const (
	ProviderConsul = "consul"
	ProviderNomad  = "nomad"
)

// Defaults applied by Render when Options leave them zero.
const (
	DefaultDriver        = DriverRawExec
	DefaultKillTimeout   = 10 * time.Second
	DefaultCheckInterval = time.Second
	DefaultCheckTimeout  = time.Second
	// DefaultRestartAttempts and DefaultRestartDelay apply when the profile's
	// restart policy is the zero value (DESIGN: 3 attempts, 1 s delay).
	DefaultRestartAttempts = 3
	DefaultRestartDelay    = time.Second
	// minRestartInterval keeps the restart window wide enough that a burst of
	// crashes is throttled (mode delay) rather than looping hot.
	minRestartInterval = time.Minute
)

// ErrInvalid is wrapped by every error Render returns: the input cannot be
// rendered into a job.
var ErrInvalid = errors.New("invalid job input")

// Input is one session to render.
type Input struct {
	Profile   *profiles.Profile
	SandboxID string
	SessionID string
	Owner     string
	CargoID   string
	// VolumeName is the dynamic host volume's name, the source of the group
	// volume block. Empty means no volume: the workspace is then
	// EphemeralWorkspace (tests, throwaway sessions).
	VolumeName string
	// VolumeHostPath is the volume's directory on its node. raw_exec tasks
	// cannot mount, so they get it as their workspace path.
	VolumeHostPath string
	// Secret is the session's runtime secret, given to every task in
	// SecretEnv. Empty renders none (the runtimes then refuse to start).
	Secret string
}

// SecretEnv is the variable the runtimes read the session secret from
// (runtimes/wire.SecretEnv).
const SecretEnv = "BAY_RUNTIME_SECRET"

// Constraint is a placement constraint (Nomad's constraint block).
type Constraint struct {
	Attribute string
	Operator  string // "" means "="
	Value     string
}

// Options are the gateway's Nomad settings, the same for every session.
type Options struct {
	// InstanceID names the gateway that made the job (meta bay.instance).
	InstanceID  string
	Region      string
	Namespace   string
	Datacenters []string // default ["*"]
	NodePool    string
	Constraints []Constraint
	// DefaultDriver is used for containers that name no driver; default
	// raw_exec.
	DefaultDriver string
	// ServiceProvider is "consul" (default) or "nomad".
	ServiceProvider string
	// Binaries maps a runtime type ("ship", "gull") to the command exec and
	// raw_exec tasks run when the container has no Command of its own.
	Binaries map[string]string
	// RuntimeEnv is extra env per runtime type (e.g. BAY_PYTHON,
	// AGENT_BROWSER_*); profile and container env override it.
	RuntimeEnv map[string]map[string]string
	// KillTimeout is how long a task gets between SIGTERM and SIGKILL;
	// default 10 s (Gull saves browser state on SIGTERM).
	KillTimeout time.Duration
	// CheckInterval and CheckTimeout shape the /health check; default 1 s
	// each (Nomad's minimum), which bounds how fast a start is seen healthy.
	CheckInterval time.Duration
	CheckTimeout  time.Duration
}

// JobID is the Nomad job id (and name) of a session.
func JobID(sandboxID, sessionID string) string {
	return "bay-" + sandboxID + "-" + sessionID
}

// TaskName is the Nomad task of a container.
func TaskName(containerName string) string { return containerName }

var notPortLabel = regexp.MustCompile(`[^A-Za-z0-9_]`)

// PortLabel is the group network port of a container. Nomad exposes it as
// NOMAD_PORT_<label>, so only characters valid in an env name are kept.
func PortLabel(containerName string) string {
	return notPortLabel.ReplaceAllString(containerName, "_")
}

var notDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// ServiceName is the service a container registers: "bay-" + its name made
// DNS-safe (RFC 1123 label, at most 63 characters), as Nomad requires. The
// same name serves that container across all sessions; tags tell them apart.
func ServiceName(containerName string) string {
	s := "bay-" + notDNS.ReplaceAllString(strings.ToLower(containerName), "-")
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.TrimRight(s, "-")
}

// SandboxTag, SessionTag and ContainerTag are the service tags discovery
// matches on.
func SandboxTag(sandboxID string) string { return "sandbox=" + sandboxID }

// SessionTag is the tag naming the session of a service instance.
func SessionTag(sessionID string) string { return "session=" + sessionID }

// ContainerTag is the tag naming the container of a service instance.
func ContainerTag(containerName string) string { return "container=" + containerName }

// ServiceTags are the tags of a container's service.
func ServiceTags(sandboxID, sessionID, containerName string) []string {
	return []string{ServiceTag, SandboxTag(sandboxID), SessionTag(sessionID), ContainerTag(containerName)}
}

// DefaultArgs are the arguments of a Ship or Gull binary when the profile
// gives none. In bridge mode every task, raw_exec included, runs in the
// group's network namespace, so the runtime listens on its own runtime port
// there and Nomad maps a host port onto it.
func DefaultArgs(port int, workspace string) []string {
	return []string{"--port", strconv.Itoa(port), "--workspace", workspace}
}

// WorkspaceFor is the workspace path a container of the given driver sees.
func WorkspaceFor(in Input, driver string) string {
	switch {
	case in.VolumeName == "":
		return EphemeralWorkspace
	case driver == DriverRawExec:
		return in.VolumeHostPath
	default:
		return WorkspacePath
	}
}

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Render builds the Nomad job of one session. It returns an error wrapping
// ErrInvalid when the input cannot make a valid job.
func Render(in Input, opts Options) (*api.Job, error) {
	opts = withDefaults(opts)
	if err := validate(in, opts); err != nil {
		return nil, err
	}
	p := in.Profile
	id := JobID(in.SandboxID, in.SessionID)

	job := &api.Job{
		ID:          new(id),
		Name:        new(id),
		Type:        new(api.JobTypeService),
		Datacenters: slices.Clone(opts.Datacenters),
		Meta: map[string]string{
			MetaSandboxID: in.SandboxID,
			MetaSessionID: in.SessionID,
			MetaProfile:   p.ID,
			MetaOwner:     in.Owner,
			MetaCargoID:   in.CargoID,
			MetaInstance:  opts.InstanceID,
		},
	}
	if opts.Region != "" {
		job.Region = new(opts.Region)
	}
	if opts.Namespace != "" {
		job.Namespace = new(opts.Namespace)
	}
	if opts.NodePool != "" {
		job.NodePool = new(opts.NodePool)
	}
	for _, c := range opts.Constraints {
		op := c.Operator
		if op == "" {
			op = "=" // Nomad rejects an empty operand when given through the API
		}
		job.Constraints = append(job.Constraints, api.NewConstraint(c.Attribute, op, c.Value))
	}

	group := &api.TaskGroup{
		Name:  new(GroupName),
		Count: new(1),
		Networks: []*api.NetworkResource{{
			Mode: "bridge",
		}},
		RestartPolicy: restartPolicy(p.Restart),
		// A lost or failed allocation is not moved: the session is gone and
		// the next call cold-starts a fresh one (DESIGN rule 2).
		ReschedulePolicy: &api.ReschedulePolicy{
			Attempts:  new(0),
			Unlimited: new(false),
		},
	}
	if in.VolumeName != "" {
		group.Volumes = map[string]*api.VolumeRequest{
			CargoVolume: {
				Name:           CargoVolume,
				Type:           "host",
				Source:         in.VolumeName,
				AccessMode:     VolumeAccessMode,
				AttachmentMode: VolumeAttachmentMode,
			},
		}
	}

	for i := range p.Containers {
		c := &p.Containers[i]
		group.Networks[0].DynamicPorts = append(group.Networks[0].DynamicPorts, api.Port{
			Label: PortLabel(c.Name),
			To:    c.RuntimePort,
		})
		group.Tasks = append(group.Tasks, renderTask(in, opts, c))
	}
	job.TaskGroups = []*api.TaskGroup{group}
	return job, nil
}

func withDefaults(o Options) Options {
	if len(o.Datacenters) == 0 {
		o.Datacenters = []string{"*"}
	}
	if o.DefaultDriver == "" {
		o.DefaultDriver = DefaultDriver
	}
	if o.ServiceProvider == "" {
		o.ServiceProvider = ProviderConsul
	}
	if o.KillTimeout == 0 {
		o.KillTimeout = DefaultKillTimeout
	}
	if o.CheckInterval == 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.CheckTimeout == 0 {
		o.CheckTimeout = DefaultCheckTimeout
	}
	return o
}

func driverOf(c *profiles.Container, opts Options) string {
	if c.Driver != "" {
		return c.Driver
	}
	return opts.DefaultDriver
}

func validate(in Input, opts Options) error {
	p := in.Profile
	if p == nil {
		return invalid("no profile")
	}
	if !validID.MatchString(in.SandboxID) {
		return invalid("sandbox id %q must be non-empty letters, digits, '_', '-' or '.'", in.SandboxID)
	}
	if !validID.MatchString(in.SessionID) {
		return invalid("session id %q must be non-empty letters, digits, '_', '-' or '.'", in.SessionID)
	}
	if len(p.Containers) == 0 {
		return invalid("profile %q has no containers", p.ID)
	}
	switch opts.ServiceProvider {
	case ProviderConsul, ProviderNomad:
	default:
		return invalid("service provider %q is not %q or %q", opts.ServiceProvider, ProviderConsul, ProviderNomad)
	}
	if opts.KillTimeout < 0 || opts.CheckInterval < time.Second || opts.CheckTimeout < time.Second {
		return invalid("kill timeout must not be negative and check interval/timeout must be at least 1s")
	}
	if p.Restart.Attempts < 0 || p.Restart.Delay < 0 {
		return invalid("profile %q: restart attempts and delay must not be negative", p.ID)
	}
	for i, c := range opts.Constraints {
		if c.Attribute == "" {
			return invalid("constraint %d has no attribute", i)
		}
	}
	seen := map[string]string{} // derived name → container, to catch collisions
	for i := range p.Containers {
		c := &p.Containers[i]
		if c.Name == "" || strings.ContainsAny(c.Name, "/\x00 \t\n") {
			return invalid("container %d: name %q is empty or has '/', NUL or spaces", i, c.Name)
		}
		for _, key := range []string{"task:" + c.Name, "port:" + PortLabel(c.Name), "service:" + ServiceName(c.Name)} {
			if other, dup := seen[key]; dup {
				return invalid("containers %q and %q collide (%s)", other, c.Name, key)
			}
			seen[key] = c.Name
		}
		if c.RuntimePort < 1 || c.RuntimePort > 65535 {
			return invalid("container %q: runtime port %d is out of range", c.Name, c.RuntimePort)
		}
		// The containers share one network namespace.
		if other, dup := seen["listen:"+strconv.Itoa(c.RuntimePort)]; dup {
			return invalid("containers %q and %q both listen on port %d in the session's shared network", other, c.Name, c.RuntimePort)
		}
		seen["listen:"+strconv.Itoa(c.RuntimePort)] = c.Name
		if c.Resources.CPU < 0 || c.Resources.MemoryMB < 0 {
			return invalid("container %q: resources must not be negative", c.Name)
		}
		switch d := driverOf(c, opts); d {
		case DriverDocker:
			if c.Image == "" {
				return invalid("container %q: driver docker needs an image", c.Name)
			}
		case DriverExec, DriverRawExec:
			if c.Command == "" && opts.Binaries[c.RuntimeType] == "" {
				return invalid("container %q: driver %s needs a command (none in the profile, no binary configured for runtime %q)", c.Name, d, c.RuntimeType)
			}
			if d == DriverRawExec && in.VolumeName != "" && in.VolumeHostPath == "" {
				return invalid("container %q: raw_exec cannot mount, so the volume's host path is needed", c.Name)
			}
		default:
			return invalid("container %q: unknown driver %q (want docker, exec or raw_exec)", c.Name, d)
		}
	}
	return nil
}

// restartPolicy keeps a dead container restarting in place: Nomad fails the
// whole allocation, healthy siblings included, once a task runs out of
// restarts, so mode "delay" (throttle, never give up) is what keeps Ship
// serving while Gull recovers. Zero attempts means "never restart", which
// Nomad only accepts in mode "fail".
func restartPolicy(r profiles.RestartPolicy) *api.RestartPolicy {
	if r == (profiles.RestartPolicy{}) {
		r = profiles.RestartPolicy{Attempts: DefaultRestartAttempts, Delay: DefaultRestartDelay}
	}
	mode := api.RestartPolicyModeDelay
	if r.Attempts == 0 {
		mode = api.RestartPolicyModeFail
	}
	interval := max(minRestartInterval, 2*time.Duration(r.Attempts)*r.Delay)
	return &api.RestartPolicy{
		Attempts: new(r.Attempts),
		Delay:    new(r.Delay),
		Interval: new(interval),
		Mode:     new(mode),
	}
}

func renderTask(in Input, opts Options, c *profiles.Container) *api.Task {
	driver := driverOf(c, opts)
	workspace := WorkspaceFor(in, driver)
	label := PortLabel(c.Name)
	vars := profiles.Vars{SandboxID: in.SandboxID, SessionID: in.SessionID, ContainerName: c.Name, CargoPath: workspace}

	// Gateway runtime env first, then the profile's (more specific) env, then
	// identity variables nobody may override.
	env := map[string]string{}
	for k, v := range opts.RuntimeEnv[c.RuntimeType] {
		env[k] = profiles.Expand(v, vars)
	}
	penv := in.Profile.ContainerEnv(c, vars)
	maps.Copy(env, penv)
	if len(penv) > 0 {
		env[profiles.ProfileEnvVar] = profiles.EnvKeys(penv)
	}
	env["BAY_SANDBOX_ID"] = in.SandboxID
	env["BAY_SESSION_ID"] = in.SessionID
	env["BAY_CONTAINER_NAME"] = c.Name
	env["BAY_WORKSPACE_PATH"] = workspace
	env["PORT"] = strconv.Itoa(c.RuntimePort)
	delete(env, SecretEnv) // only the gateway's, never the profile's
	if in.Secret != "" {
		env[SecretEnv] = in.Secret
	}

	config := map[string]any{}
	switch driver {
	case DriverDocker:
		config["image"] = c.Image
		config["ports"] = []string{label}
		if c.Command != "" {
			config["command"] = c.Command
		}
		if len(c.Args) > 0 {
			config["args"] = slices.Clone(c.Args)
		}
	default: // exec, raw_exec
		command, args := c.Command, slices.Clone(c.Args)
		if command == "" {
			command = opts.Binaries[c.RuntimeType]
			if len(args) == 0 {
				args = DefaultArgs(c.RuntimePort, workspace)
			}
		}
		config["command"] = command
		if len(args) > 0 {
			config["args"] = args
		}
	}

	task := &api.Task{
		Name:        TaskName(c.Name),
		Driver:      driver,
		Config:      config,
		Env:         env,
		KillTimeout: new(opts.KillTimeout),
		// exec and raw_exec default to SIGINT; Gull saves its browser state
		// on SIGTERM (DESIGN rule 6), and Ship shuts its kernels down on it.
		KillSignal: "SIGTERM",
		Services: []*api.Service{{
			Name:      ServiceName(c.Name),
			Tags:      ServiceTags(in.SandboxID, in.SessionID, c.Name),
			PortLabel: label,
			Provider:  opts.ServiceProvider,
			// A task-level service is deregistered as soon as its task dies,
			// so discovery drops a dead container at once instead of after a
			// failing check.
			TaskName: TaskName(c.Name),
			Checks: []api.ServiceCheck{{
				Name:     "health",
				Type:     "http",
				Path:     HealthPath,
				Interval: opts.CheckInterval,
				Timeout:  opts.CheckTimeout,
			}},
		}},
	}
	if c.Resources.CPU > 0 || c.Resources.MemoryMB > 0 {
		task.Resources = &api.Resources{}
		if c.Resources.CPU > 0 {
			task.Resources.CPU = new(c.Resources.CPU)
		}
		if c.Resources.MemoryMB > 0 {
			task.Resources.MemoryMB = new(c.Resources.MemoryMB)
		}
	}
	if in.VolumeName != "" && driver != DriverRawExec {
		task.VolumeMounts = []*api.VolumeMount{{
			Volume:      new(CargoVolume),
			Destination: new(WorkspacePath),
			ReadOnly:    new(false),
		}}
	}
	return task
}
