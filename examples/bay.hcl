# Bay gateway configuration: every option, with its default.
#
#   bay serve --config bay.hcl        (bay.json in HCL's JSON form works too)
#
# With no file at all Bay runs a local gateway on 127.0.0.1:8114 with data in
# ./.bay and the profiles python-default and browser-python.
#
# Precedence: defaults < this file < BAY_* environment variables < flags.
# The standard NOMAD_ADDR, NOMAD_TOKEN, NOMAD_REGION, NOMAD_NAMESPACE,
# NOMAD_CACERT, NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY, NOMAD_TLS_SERVER_NAME,
# NOMAD_SKIP_VERIFY, CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_CACERT,
# CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY, CONSUL_TLS_SERVER_NAME and
# CONSUL_HTTP_SSL_VERIFY fill only what this file leaves unset.
# Durations are strings such as "30s", "10m", "1h".

# Where the state database, generated credentials and local cargos live.
# Env: BAY_DATA_DIR.
data_dir = "./.bay"

# Listen address and port. Env: BAY_BIND_ADDR, BAY_PORT.
bind_addr = "127.0.0.1"
port      = 8114

# trace | debug | info | warn | error | off. Env: BAY_LOG_LEVEL.
log_level = "info"

# Names this gateway in the Nomad jobs it creates (meta bay.instance), so
# several gateways can share a cluster. Default: derived from the hostname.
# Env: BAY_INSTANCE_ID.
instance_id = "bay-example"

# "local" runs sessions as child processes on this machine; "nomad" runs each
# session as a Nomad job. Default: "nomad" when a nomad block is present,
# otherwise "local". Env: BAY_ALLOCATOR.
allocator = "local"

auth {
  # Accepted bearer keys. BAY_API_KEY adds one. With no key and anonymous
  # mode off, Bay generates a key at first start and writes it to
  # <data_dir>/credentials.json.
  api_keys = ["change-me-0123456789"]

  # Let requests without a key through (owner from X-Owner). A wrong key is
  # still refused. Env: BAY_ALLOW_ANONYMOUS.
  allow_anonymous = false

  # The keys above (api_keys, BAY_API_KEY, the generated one) are admin keys
  # of owner "default". Named keys bind a key to one owner: everything made
  # with it belongs to that owner, and X-Owner naming another owner is a 403
  # unless the key is an admin key (admin keys may act as any owner and are
  # the only ones allowed on /v1/admin/*). Give the key's hex SHA-256
  # (Terraform: sha256(random_password.key.result)), or `secret` = the key
  # itself, which is hashed at load. Names: [A-Za-z0-9_.-]{1,64}; owners:
  # [A-Za-z0-9_.@-]{1,128}, not starting with "__".
  key "team-a" {
    owner  = "team-a"
    sha256 = "8d7ea2ba6db7e3ce4fec2b6e9a6a4f1d80c8af8a4fcd1c5a3e3b6c47d1e6f0a2"
    admin  = false
  }

  # More key blocks in their own file (same `key "name" { ... }` shape, HCL
  # or .json), re-read on SIGHUP and whenever the file changes: keys are
  # added and revoked without a restart; a file that fails to parse keeps
  # the keys in force. Env: BAY_KEYS_FILE.
  # keys_file = "/etc/bay/keys.hcl"
}

server {
  # Upper bound for handling one request, its runtime timeout included.
  request_timeout = "11m"

  # Longest a request waits for a cold start before answering 503
  # session_not_ready with retry_after_ms.
  start_timeout = "120s"

  # Quotas (429 quota_exceeded); 0 means unlimited.
  max_sandboxes_per_owner = 0
  max_sessions            = 0

  # Start a sandbox's session in the background right after it is created,
  # so the first call is usually warm. false: compute starts on first use.
  warmup_on_create = true
}

# What one client can hold or ask for. Everything here has a safe default.
limits {
  # Longest lifetime a sandbox may have from now: caps ttl and every
  # extend_by (422 naming the bound past it). With a cap, a sandbox created
  # without ttl gets max_ttl. "0s": no operator cap (ten years still bounds
  # every ttl so expiry arithmetic cannot overflow).
  max_ttl = "0s"

  # Reading a request's headers (a connection that sends nothing is closed
  # after this too), a body stalling between reads, and a keep-alive
  # connection waiting for its next request. write_timeout "0s": none, so
  # large downloads to slow clients finish.
  header_timeout = "20s"
  body_timeout   = "60s"
  idle_timeout   = "75s"
  write_timeout  = "0s"

  # Open client connections, in all and per client address (0: no cap).
  # At a cap the connection quiet the longest gives way, so idle ones never
  # lock out a client with a request; when all are busy the newcomer gets
  # 503 too_many_connections. max_connections is also kept below the open
  # file limit (raised to its hard limit at start).
  max_connections        = 16384
  max_connections_per_ip = 4096

  # JSON bodies over this are refused with 413 payload_too_large while
  # being read (uploads stream and are not bound by it); memory held for
  # one body never passes it.
  max_body_bytes = 33554432
}

gc {
  # Env: BAY_GC_ENABLED, BAY_GC_INTERVAL.
  enabled  = true
  interval = "60s"

  # Tasks a cycle runs.
  idle_session    = true # release sessions past their idle deadline
  expired_sandbox = true # delete sandboxes past their TTL
  orphan_cargo    = true # remove managed cargos whose sandbox is gone
  orphan_session  = true # stop compute no sandbox refers to
}

idempotency {
  # How long a response to an Idempotency-Key is replayed.
  ttl = "1h"
}

warm_pool {
  # Keep each profile's warm_pool_size sandboxes started ahead of demand.
  enabled = true
}

# What a deliberate shutdown does with the compute the gateway started.
# Deliberate: the gateway's own Nomad job was stopped or purged (nomad job
# stop, terraform destroy); outside Nomad, any SIGTERM/SIGINT. A restart, a
# rolling update or a node drain is not: sessions keep running and the next
# gateway re-adopts them.
shutdown {
  # Env: BAY_DRAIN_ON_SHUTDOWN. Stop every session (Nomad job) on a
  # deliberate shutdown. Cargos, the users' workspaces, are kept.
  drain_sessions = false
  # Also delete every sandbox and every cargo with its storage (needs
  # drain_sessions): THE USERS' WORKSPACES ARE LOST.
  delete_cargos = false
  # Then purge the gateway's own (stopped) Nomad job. For a job stopped
  # without -purge: purging removes its allocations, and with them the
  # workload identity the gateway drains with.
  purge_job = false
  # Bound of the drain; keep it under the gateway task's kill_timeout.
  timeout = "60s"
}

# Runtime binaries. Empty means: beside the bay binary, then PATH.
runtimes {
  ship          = ""                 # Env: BAY_SHIP_BIN
  gull          = ""                 # Env: BAY_GULL_BIN
  python        = "/usr/bin/python3" # Env: BAY_PYTHON; the interpreter Ship runs code with
  agent_browser = ""                 # Env: BAY_AGENT_BROWSER; the CLI Gull wraps
}

# The local allocator.
local {
  # How long a stopping container gets after SIGTERM before SIGKILL. Gull
  # needs up to 10 s to close its browser and save state (cookies, storage).
  grace_period = "12s"

  # "sandbox" (the default): every session in a bubblewrap sandbox of its
  # own (uid 1000 shipyard, cargo at /workspace, own namespaces, one network
  # namespace per session, profile limits enforced). Needs bwrap (and
  # slirp4netns for outbound network); without it the gateway refuses to
  # start unless this says "none": plain child processes on loopback ports.
  isolation = "sandbox"  # BAY_LOCAL_ISOLATION

  # The host uid (and gid) sandboxes run as when the gateway runs as root
  # (cargo files end up owned by it). 0: 64000.
  sandbox_uid = 0

  # Only with isolation = "none": as root on Linux, give each container a
  # private mount namespace with its cargo bound at /workspace (as on
  # Nomad). Off (or without root): the cargo's host path.
  mount_workspace = true
}

# The Nomad allocator. This block selects it unless allocator says otherwise
# (here it does, so the example runs without a cluster).
nomad {
  address   = "http://127.0.0.1:4646" # NOMAD_ADDR if unset
  region    = ""                      # NOMAD_REGION if unset
  namespace = ""                      # NOMAD_NAMESPACE if unset
  token     = ""                      # NOMAD_TOKEN if unset

  tls {
    ca_file     = ""    # NOMAD_CACERT
    cert_file   = ""    # NOMAD_CLIENT_CERT
    key_file    = ""    # NOMAD_CLIENT_KEY
    insecure    = false # NOMAD_SKIP_VERIFY
    server_name = ""    # NOMAD_TLS_SERVER_NAME
  }

  # Where session jobs may run.
  datacenters = ["*"]
  node_pool   = ""

  # Added to every session job; repeatable. Nomad's ${...} interpolation is
  # kept as written. operator defaults to "=".
  constraint {
    attribute = "${attr.kernel.name}"
    operator  = "="
    value     = "linux"
  }

  # Driver for profile containers that name none: docker | exec | raw_exec.
  default_driver = "raw_exec"

  # Where endpoints are found: "nomad" (native services) or "consul".
  discovery = "nomad"

  # Cargos are Nomad dynamic host volumes.
  volume {
    plugin    = "mkdir"
    node_pool = ""
  }

  # Register → all tasks healthy, else roll back. kill_timeout is the tasks'
  # SIGTERM → SIGKILL grace.
  start_timeout = "60s"
  kill_timeout  = "10s"
}

# Used when nomad.discovery = "consul".
consul {
  address    = "" # CONSUL_HTTP_ADDR if unset
  token      = "" # CONSUL_HTTP_TOKEN if unset
  datacenter = ""

  tls {
    ca_file     = ""    # CONSUL_CACERT
    cert_file   = ""    # CONSUL_CLIENT_CERT
    key_file    = ""    # CONSUL_CLIENT_KEY
    insecure    = false # CONSUL_HTTP_SSL_VERIFY=false
    server_name = ""    # CONSUL_TLS_SERVER_NAME
  }
}

# Profiles. When the file defines any, only those exist; with none, the
# built-in python-default and browser-python are used.
#
# In env values ${SANDBOX_ID}, ${SESSION_ID}, ${CONTAINER_NAME} and
# ${CARGO_PATH} are replaced per session; other ${...} (such as Nomad's
# ${NOMAD_TASK_DIR}) are passed through untouched.
profile "python-default" {
  description  = "Python, shell and filesystem in one Ship container"
  idle_timeout = "30m"

  container "ship" {
    runtime_type = "ship"
  }
}

profile "browser-python" {
  description     = "Python + browser"
  idle_timeout    = "30m"                         # > 0
  env             = { FOO = "bar-${SANDBOX_ID}" } # every container; container env wins
  warm_pool_size  = 0                             # sandboxes kept started ahead of demand
  warm_rotate_ttl = "30m"                         # replace warm sandboxes older than this; 0 = never
  # network = "none"                              # local sandbox: loopback only, no outbound network

  # In-place restarts of a dead container before the session is given up.
  restart {
    attempts = 3
    delay    = "1s"
  }

  container "ship" {
    runtime_type = "ship"                            # required: ship | gull
    runtime_port = 8123                              # default 8123 (ship), 8115 (gull)
    capabilities = ["python", "shell", "filesystem"] # default: all of the runtime's
    primary_for  = ["filesystem"]                    # wins routing for these capabilities
    env          = { WORKSPACE = "${CARGO_PATH}" }

    resources {
      cpu    = 500 # MHz; default ship 500, gull 1000
      memory = 512 # MB; default ship 512, gull 1024
    }

    # Nomad only. driver defaults to nomad.default_driver; docker needs image;
    # exec/raw_exec run command (default: the runtime's binary) with args.
    driver  = "raw_exec"
    command = "/usr/local/bin/ship"
    args    = []
  }

  container "gull" {
    runtime_type = "gull"
  }
}

# The original project's single-container form: becomes one container named
# "primary" that is primary for all its capabilities.
profile "legacy" {
  image        = "ghcr.io/example/ship:latest"
  driver       = "docker"
  runtime_type = "ship" # default ship
  runtime_port = 8123
  capabilities = ["python", "shell", "filesystem"]
  resources {
    cpu    = 500
    memory = 512
  }
  env          = {}
  idle_timeout = "30m"
}
