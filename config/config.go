// Package config is the gateway's configuration: defaults, then one HCL file
// (JSON form by extension), then the environment, then command-line flags
// (applied by cmd), then Validate, which reports every problem at once with
// the file position (or environment variable) it came from.
package config

import (
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bay-sandbox/bay/profiles"
)

// Allocators.
const (
	AllocatorLocal = "local"
	AllocatorNomad = "nomad"
)

// What serve does about a Nomad token that lacks capabilities.
const (
	TokenCheckWarn   = "warn"
	TokenCheckRefuse = "refuse"
	TokenCheckOff    = "off"
)

// Service discovery providers for Nomad sessions.
const (
	DiscoveryNomad  = "nomad"
	DiscoveryConsul = "consul"
)

// Defaults that other packages may want to show or compare against.
const (
	DefaultDataDir      = "./.bay"
	DefaultBindAddr     = "127.0.0.1"
	DefaultPort         = 8114
	DefaultLogLevel     = "info"
	DefaultNomadAddress = "http://127.0.0.1:4646"
)

// Config is the gateway's resolved configuration. Durations are parsed;
// every field holds its final value (defaults filled in).
type Config struct {
	DataDir  string
	BindAddr string
	Port     int
	// LogLevel is one of trace, debug, info, warn, error, off (lowercase).
	LogLevel string
	// InstanceID names this gateway in the jobs it creates (meta
	// bay.instance); defaults to a stable id derived from the hostname.
	InstanceID string
	// Allocator is AllocatorLocal or AllocatorNomad. Unless set explicitly
	// it is "nomad" when the file has a nomad block, else "local".
	Allocator string

	Auth        Auth
	Server      Server
	Limits      Limits
	GC          GC
	Idempotency Idempotency
	WarmPool    WarmPool
	Runtimes    Runtimes
	Local       Local
	Nomad       Nomad
	Consul      Consul
	Shutdown    Shutdown
	Store       Store

	// Profiles are the file's profile blocks, or profiles.Defaults() when
	// the file defines none.
	Profiles *profiles.Set

	// origins says where each setting was last given (file position or
	// environment variable), so Validate can point at it.
	origins map[string]origin
}

// Auth is API-key authentication.
type Auth struct {
	// APIKeys accepted as "Authorization: Bearer <key>". BAY_API_KEY adds one.
	// They are admin keys of owner LegacyOwner (see APIKey).
	APIKeys []string
	// AllowAnonymous lets requests without a key through (owner from X-Owner).
	AllowAnonymous bool
	// Keys are named keys bound to owners (key blocks); see APIKey.
	Keys []APIKey
	// KeysFile holds more key blocks, re-read on SIGHUP and on change.
	KeysFile string
}

// Server holds request handling limits.
type Server struct {
	// RequestTimeout bounds the handling of one request, the runtime call's
	// own timeout included (the longest, exec_batch, may be 600 s).
	RequestTimeout time.Duration
	// StartTimeout is the longest a request waits for a cold start before
	// answering 503 session_not_ready with retry_after_ms.
	StartTimeout time.Duration
	// MaxSandboxesPerOwner and MaxSessions are quotas; 0 means unlimited.
	MaxSandboxesPerOwner int
	MaxSessions          int
	// WarmupOnCreate starts a sandbox's session right after it is created,
	// so the first call is usually warm. Off, compute starts on first use.
	WarmupOnCreate bool
}

// GC is the background garbage collector; each task can be switched off.
type GC struct {
	Enabled        bool
	Interval       time.Duration
	IdleSession    bool
	ExpiredSandbox bool
	OrphanCargo    bool
	OrphanSession  bool
}

// Idempotency is how long an Idempotency-Key's response is replayed.
type Idempotency struct {
	TTL time.Duration
}

// WarmPool switches the per-profile warm pools (profile warm_pool_size).
type WarmPool struct {
	Enabled bool
}

// Runtimes are the binaries the gateway runs or hands to Nomad. Empty means
// "find it" (beside the bay binary, then PATH); cmd resolves them.
type Runtimes struct {
	Ship         string
	Gull         string
	Python       string
	AgentBrowser string
}

// Local configures the embedded (child process) allocator.
type Local struct {
	// GracePeriod is how long a stopping container gets after SIGTERM
	// before it is killed.
	GracePeriod time.Duration
	// MountWorkspace gives each container (when the gateway runs as root on
	// Linux) a private mount namespace with its cargo bound at /workspace,
	// as on Nomad. Off, containers see the cargo at its host path. Only
	// with Isolation "none": a sandbox always has its cargo at /workspace.
	MountWorkspace bool
	// Isolation is IsolationSandbox (the default: every session in a
	// bubblewrap sandbox of its own) or IsolationNone (plain child
	// processes, only when set explicitly).
	Isolation string
	// SandboxUID is the host uid (and gid) sandboxes run as when the
	// gateway runs as root; 0 means the launcher's default (64000).
	SandboxUID int
}

// Local isolation modes.
const (
	IsolationSandbox = "sandbox"
	IsolationNone    = "none"
)

// Nomad configures the Nomad allocator. Address, Token, Region, Namespace
// and TLS fall back to the standard NOMAD_* variables where the file left
// them empty, as the Nomad CLI does.
type Nomad struct {
	Address   string
	Region    string
	Namespace string
	Token     string
	TLS       TLS
	// Datacenters the session jobs may run in; ["*"] by default.
	Datacenters []string
	NodePool    string
	Constraints []Constraint
	// DefaultDriver is used for profile containers that name no driver.
	DefaultDriver string
	// Discovery is DiscoveryNomad (native services) or DiscoveryConsul.
	Discovery string
	Volume    Volume
	// StartTimeout bounds register → all tasks healthy; KillTimeout is the
	// tasks' kill_timeout (SIGTERM → SIGKILL).
	StartTimeout time.Duration
	KillTimeout  time.Duration
	// TokenCheck is what `bay serve` does when its Nomad token lacks a
	// capability Bay needs: TokenCheckWarn (log what fails), TokenCheckRefuse
	// (do not start) or TokenCheckOff.
	TokenCheck string
	// CargoPoolSize is how many cargo volumes are kept created and ready
	// ahead of demand, so a create need not wait for the node fingerprint
	// that makes a new volume schedulable (5–10 s on a normal client).
	CargoPoolSize int
}

// TLS is the client side of a TLS connection to Nomad or Consul.
type TLS struct {
	CAFile     string
	CertFile   string
	KeyFile    string
	Insecure   bool
	ServerName string
}

// Constraint is a Nomad job constraint added to every session job. The
// attribute keeps Nomad's own "${...}" interpolation verbatim.
type Constraint struct {
	Attribute string
	Operator  string
	Value     string
}

// Volume is how cargos are created as Nomad dynamic host volumes.
type Volume struct {
	Plugin   string
	NodePool string
}

// Shutdown is what the gateway does with the compute it started when it is
// stopped on purpose: its own Nomad job stopped or purged (nomad job stop,
// terraform destroy), or, outside Nomad, any SIGTERM/SIGINT. A restart, a
// rolling update or a node drain of the gateway is not deliberate: sessions
// keep running and the next gateway re-adopts them.
type Shutdown struct {
	// DrainSessions stops every session on a deliberate shutdown. Cargos,
	// i.e. user data, are kept unless DeleteCargos is set.
	DrainSessions bool
	// DeleteCargos (needs DrainSessions) also deletes every sandbox and
	// every cargo with its storage: the users' workspaces are lost.
	DeleteCargos bool
	// PurgeJob (needs DrainSessions) purges the gateway's own Nomad job once
	// the drain is done. For a job stopped without purge (purging at once
	// would end the workload identity the drain authenticates with), so that
	// nothing of the deployment is left in Nomad.
	PurgeJob bool
	// Timeout bounds the drain; keep it under the task's kill_timeout.
	Timeout time.Duration
}

// Store drivers.
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

// Store is where the gateway keeps its state. SQLite (a file in data_dir) is
// the embedded default for one gateway; several gateways in front of one
// cluster share a PostgreSQL database, and elect through it the one leader
// that runs GC, the warm pools and the reconcile loop.
type Store struct {
	// Driver is StoreSQLite or StorePostgres.
	Driver string
	// DSN is the PostgreSQL connection string (postgres://... or key=value);
	// BAY_STORE_DSN sets it too. Parts it leaves out come from the standard
	// PG* variables (PGHOST, PGUSER, PGPASSWORD, PGDATABASE, ...).
	DSN string
	// MaxConns caps the gateway's PostgreSQL connections.
	MaxConns int
	// LeaseTTL is how long a gateway's leadership and its cold-start leases
	// last without renewal (renewed every third of it): a gateway that dies
	// is replaced as leader, and its half-done starts are taken over, within
	// about LeaseTTL plus a third. Keep it well above the clock skew between
	// gateways.
	LeaseTTL time.Duration
}

// Consul is used when Nomad.Discovery is DiscoveryConsul. Empty fields fall
// back to CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN and friends.
type Consul struct {
	Address    string
	Token      string
	Datacenter string
	TLS        TLS
}

// Default returns the configuration used with no file and no environment:
// a local gateway on 127.0.0.1:8114 with data in ./.bay and the built-in
// profiles.
func Default() *Config {
	host, _ := os.Hostname()
	return &Config{
		DataDir:    DefaultDataDir,
		BindAddr:   DefaultBindAddr,
		Port:       DefaultPort,
		LogLevel:   DefaultLogLevel,
		InstanceID: instanceID(host),
		Allocator:  AllocatorLocal,
		Server: Server{
			RequestTimeout: 11 * time.Minute,
			StartTimeout:   120 * time.Second,
			WarmupOnCreate: true,
		},
		GC: GC{
			Enabled: true, Interval: 60 * time.Second,
			IdleSession: true, ExpiredSandbox: true, OrphanCargo: true, OrphanSession: true,
		},
		Limits:      defaultLimits(),
		Idempotency: Idempotency{TTL: time.Hour},
		WarmPool:    WarmPool{Enabled: true},
		Local:       Local{GracePeriod: 12 * time.Second, MountWorkspace: true, Isolation: IsolationSandbox},
		Nomad: Nomad{
			Address:       DefaultNomadAddress,
			Datacenters:   []string{"*"},
			DefaultDriver: "raw_exec",
			Discovery:     DiscoveryNomad,
			Volume:        Volume{Plugin: "mkdir"},
			StartTimeout:  60 * time.Second,
			KillTimeout:   10 * time.Second,
			TokenCheck:    TokenCheckWarn,
			CargoPoolSize: 2,
		},
		Shutdown: Shutdown{Timeout: 60 * time.Second},
		Store:    Store{Driver: StoreSQLite, MaxConns: 10, LeaseTTL: 15 * time.Second},
		Profiles: profiles.DefaultSet(),
	}
}

// Addr is the listen address, host:port.
func (c *Config) Addr() string {
	return net.JoinHostPort(c.BindAddr, strconv.Itoa(c.Port))
}

// instanceID turns a hostname into a stable id usable in Nomad meta and
// job names: lowercase letters, digits and dashes, at most 63 characters.
func instanceID(host string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(host) {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		switch {
		case ok:
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	id := strings.TrimRight(b.String(), "-")
	if len(id) > 63 {
		id = strings.TrimRight(id[:63], "-")
	}
	if id == "" {
		return "bay"
	}
	return id
}
