# Where and what the gateway job runs.

variable "job_name" {
  type        = string
  description = "Nomad job ID of the gateway; also the default instance_id and the secrets variable path (nomad/jobs/<job_name>)."
  default     = "bay"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,62}$", var.job_name))
    error_message = "The job_name must be 1-63 lowercase letters, digits or dashes, starting with a letter or digit."
  }
}

variable "region" {
  type        = string
  description = "Nomad region of the gateway job and of the sessions it starts."
  default     = "global"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+$", var.region))
    error_message = "The region must be a non-empty Nomad region name."
  }
}

variable "namespace" {
  type        = string
  description = "Nomad namespace of the gateway job, its secrets, its data volume and the sessions it starts."
  default     = "default"

  validation {
    condition     = can(regex("^[a-zA-Z0-9-]{1,128}$", var.namespace))
    error_message = "The namespace must be 1-128 letters, digits or dashes."
  }
}

variable "datacenters" {
  type        = list(string)
  description = "Datacenters the gateway job may run in (\"*\" for all)."
  default     = ["*"]

  validation {
    condition     = length(var.datacenters) > 0 && length([for dc in var.datacenters : dc if trimspace(dc) == ""]) == 0
    error_message = "The datacenters list must name at least one datacenter and no empty ones."
  }
}

variable "node_pool" {
  type        = string
  description = "Node pool of the gateway job."
  default     = "default"

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,128}$", var.node_pool))
    error_message = "The node_pool must be a non-empty node pool name."
  }
}

variable "gateway_image" {
  type        = string
  description = "Gateway image, built from deploy/Dockerfile.bay (e.g. \"bay:1.2.3\")."

  validation {
    condition     = can(regex("^[^\\s]+$", var.gateway_image))
    error_message = "The gateway_image must be a non-empty image reference without spaces."
  }
}

variable "ship_image" {
  type        = string
  description = "Ship image (deploy/Dockerfile.ship) the default profiles run. Not needed when profiles is set."
  default     = ""

  validation {
    condition     = can(regex("^[^\\s]*$", var.ship_image))
    error_message = "The ship_image must be an image reference without spaces."
  }
}

variable "gull_image" {
  type        = string
  description = "Gull image (deploy/Dockerfile.gull) the default profiles run. Not needed when profiles is set."
  default     = ""

  validation {
    condition     = can(regex("^[^\\s]*$", var.gull_image))
    error_message = "The gull_image must be an image reference without spaces."
  }
}

variable "port" {
  type        = number
  description = "Static host port the gateway listens on."
  default     = 8114

  validation {
    condition     = var.port == floor(var.port) && var.port >= 1 && var.port <= 65535
    error_message = "The port must be a whole number in 1..65535."
  }
}

variable "gateway_resources" {
  type = object({
    cpu    = number
    memory = number
  })
  description = "CPU (MHz) and memory (MB) of the gateway task."
  default     = { cpu = 500, memory = 256 }

  validation {
    condition     = var.gateway_resources.cpu >= 100 && var.gateway_resources.memory >= 64
    error_message = "The gateway needs at least 100 MHz of CPU and 64 MB of memory."
  }
}

variable "data_volume" {
  type = object({
    name = string
    # Create it here as a dynamic host volume; false means a host volume of
    # this name already exists (static in the client config, or created).
    create    = optional(bool, true)
    plugin_id = optional(string, "mkdir")
    node_pool = optional(string, "")
  })
  description = "Host volume holding the gateway's SQLite state (uid/gid 1000 must be able to write it)."
  default     = { name = "bay-data" }

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,128}$", var.data_volume.name)) && var.data_volume.plugin_id != ""
    error_message = "The data_volume needs a name of letters, digits, dashes or underscores, and a plugin_id."
  }
}

variable "wait_for_deployment" {
  type        = bool
  description = "Wait until the gateway's deployment is healthy (its /health check passing on every allocation) before apply returns, so a gateway that never becomes healthy (an image that cannot be pulled, a config Bay refuses) fails the apply."
  default     = true
}

variable "purge_on_destroy" {
  type        = bool
  description = "Purge the gateway job on destroy instead of leaving it stopped (dead) in Nomad."
  default     = true
}

# The gateway's configuration (bay.hcl).

variable "instance_id" {
  type        = string
  description = "Name of this gateway in the session jobs it creates (meta bay.instance). Empty means job_name. Must stay stable: a restarted gateway re-adopts the sessions carrying it."
  default     = ""

  validation {
    condition     = var.instance_id == "" || can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", var.instance_id))
    error_message = "The instance_id must be empty or 1-63 letters, digits, dots, dashes or underscores."
  }
}

variable "log_level" {
  type        = string
  description = "Gateway log level."
  default     = "info"

  validation {
    condition     = contains(["trace", "debug", "info", "warn", "error", "off"], var.log_level)
    error_message = "The log_level must be one of trace, debug, info, warn, error, off."
  }
}

variable "api_key" {
  type        = string
  description = "Bearer key clients use (e.g. from random_password: unknown at plan time is fine). Written write-only to the Nomad variable nomad/jobs/<job_name>: never in the jobspec or the state. Empty: the gateway generates one at first start (see <data_dir>/credentials.json)."
  default     = ""
  sensitive   = true

  validation {
    condition     = var.api_key == "" || can(regex("^[A-Za-z0-9._~+/=-]{16,}$", var.api_key))
    error_message = "The api_key must be empty or at least 16 characters from A-Z a-z 0-9 . _ ~ + / = -."
  }
}

variable "api_keys" {
  type = map(object({
    owner = string
    # Hex SHA-256 of the key, e.g. sha256(random_password.team_a.result):
    # the key itself never reaches the jobspec, the state of this module or
    # the gateway's disk.
    sha256 = string
    admin  = optional(bool, false)
  }))
  description = "Named API keys, each bound to one owner (the gateway's key model): everything made with a key belongs to its owner, and only admin keys may act as another owner (X-Owner) or call /v1/admin. Rendered as auth { key \"<name>\" { owner, sha256, admin } }. api_key, if set, is an admin key of owner \"default\"."
  default     = {}

  validation {
    condition = length([for name, k in var.api_keys : name if !(
      can(regex("^[A-Za-z0-9_.-]{1,64}$", name)) && can(regex("^[A-Za-z0-9_.@-]{1,128}$", k.owner)) &&
      !can(regex("^__", k.owner)) && can(regex("^[0-9a-f]{64}$", k.sha256))
    )]) == 0
    error_message = "Each api_keys entry needs a name of 1-64 [A-Za-z0-9_.-], an owner of 1-128 [A-Za-z0-9_.@-] not starting with \"__\", and sha256 = 64 lowercase hex digits."
  }
}

variable "allow_anonymous" {
  type        = bool
  description = "Accept requests without an API key (owner from X-Owner)."
  default     = false
}

variable "gateway_nomad_address" {
  type        = string
  description = "Nomad HTTP API address the gateway uses. Nomad interpolates $${...} node attributes at run time; the default is the agent on the gateway's own node."
  default     = "http://$${attr.unique.network.ip-address}:4646"

  validation {
    condition     = can(regex("^(https?|unix)://", var.gateway_nomad_address))
    error_message = "The gateway_nomad_address must be an http://, https:// or unix:// URL."
  }
}

variable "gateway_nomad_token" {
  type        = string
  description = "With nomad_auth = \"token\": the gateway's ACL token (one of the acl_policy_name policy). May come from a nomad_acl_token in the same configuration (unknown at plan time is fine). Kept out of the state with the other secrets."
  default     = ""
  sensitive   = true

  validation {
    condition     = can(regex("^[^\\s\"]*$", var.gateway_nomad_token))
    error_message = "The gateway_nomad_token must not contain spaces or quotes."
  }
}

variable "discovery" {
  type        = string
  description = "Service discovery for sessions and for the gateway's own service: \"nomad\" (native services) or \"consul\"."
  default     = "nomad"

  validation {
    condition     = contains(["nomad", "consul"], var.discovery)
    error_message = "The discovery provider must be \"nomad\" or \"consul\"."
  }
}

variable "consul_address" {
  type        = string
  description = "Consul HTTP address the gateway uses when discovery is \"consul\"; $${...} node attributes are interpolated by Nomad."
  default     = "http://$${attr.unique.network.ip-address}:8500"
}

variable "consul_token" {
  type        = string
  description = "Consul ACL token for the gateway (discovery = \"consul\"). Stored in the Nomad variable with the other secrets."
  default     = ""
  sensitive   = true

  validation {
    condition     = can(regex("^[^\\s\"]*$", var.consul_token))
    error_message = "The consul_token must not contain spaces or quotes."
  }
}

variable "session_datacenters" {
  type        = list(string)
  description = "Datacenters session jobs may run in."
  default     = ["*"]

  validation {
    condition     = length(var.session_datacenters) > 0 && length([for dc in var.session_datacenters : dc if trimspace(dc) == ""]) == 0
    error_message = "The session_datacenters list must name at least one datacenter and no empty ones."
  }
}

variable "session_node_pool" {
  type        = string
  description = "Node pool of session jobs and their cargo volumes; empty for Nomad's default."
  default     = ""
}

variable "session_driver" {
  type        = string
  description = "Driver for profile containers that name none."
  default     = "docker"

  validation {
    condition     = contains(["docker", "exec", "raw_exec"], var.session_driver)
    error_message = "The session_driver must be docker, exec or raw_exec."
  }
}

variable "volume_plugin" {
  type        = string
  description = "Dynamic host volume plugin that creates cargos."
  default     = "mkdir"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+$", var.volume_plugin))
    error_message = "The volume_plugin must be a plugin ID."
  }
}

variable "profiles" {
  type        = string
  description = "HCL of the gateway's profile \"id\" { container \"name\" { ... } } blocks. Empty: python-default (Ship) and browser-python (Ship + Gull) running ship_image and gull_image with the docker driver."
  default     = ""
}

variable "extra_config" {
  type        = string
  description = "More bay.hcl, appended verbatim (server, gc, idempotency, warm_pool blocks...)."
  default     = ""
}

# How many gateways, and how they run.

variable "gateway_count" {
  type        = number
  description = "Number of gateway allocations, all registered as one service (job_name) for a load balancer to spread over. More than 1 needs store_driver = \"postgres\" (SQLite has a single writer)."
  default     = 1

  validation {
    condition     = var.gateway_count == floor(var.gateway_count) && var.gateway_count >= 1 && var.gateway_count <= 64
    error_message = "The gateway_count must be a whole number in 1..64."
  }
}

variable "driver" {
  type        = string
  description = "Task driver of the gateway: docker or podman run gateway_image; exec or raw_exec run gateway_command (a bay binary on the node)."
  default     = "docker"

  validation {
    condition     = contains(["docker", "podman", "exec", "raw_exec"], var.driver)
    error_message = "The driver must be docker, podman, exec or raw_exec."
  }
}

variable "gateway_command" {
  type        = string
  description = "Path of the bay binary on the nodes, for the exec and raw_exec drivers."
  default     = "/usr/local/bin/bay"

  validation {
    condition     = can(regex("^/[^\\s]*$", var.gateway_command))
    error_message = "The gateway_command must be an absolute path without spaces."
  }
}

variable "constraints" {
  type = list(object({
    attribute = string
    operator  = optional(string, "=")
    value     = optional(string, "")
  }))
  description = "Placement constraints of the gateway job (Nomad constraint blocks), e.g. { attribute = \"$${node.class}\", value = \"control\" }."
  default     = []

  validation {
    condition     = length([for c in var.constraints : c if trimspace(c.operator) == ""]) == 0
    error_message = "Every constraint needs an operator."
  }
}

# Nomad ACLs: the gateway's policy, and how the gateway authenticates.

variable "nomad_auth" {
  type        = string
  description = "How the gateway authenticates to Nomad: \"workload_identity\" (its own task identity, with the module's ACL policy bound to the job: no long-lived token), \"token\" (gateway_nomad_token), or \"none\" (a cluster without ACLs)."
  default     = "workload_identity"

  validation {
    condition     = contains(["workload_identity", "token", "none"], var.nomad_auth)
    error_message = "The nomad_auth must be workload_identity, token or none."
  }
}

variable "create_acl_policy" {
  type        = bool
  description = "Create Bay's ACL policy (acl/bay-policy.hcl, the file shipped as examples/acl/bay-policy.hcl, for the module's namespace). With nomad_auth = \"workload_identity\" it is bound to the gateway job; with \"token\", make the token from the acl_policy_name output. Needs a cluster with ACLs enabled."
  default     = true
}

variable "acl_policy_name" {
  type        = string
  description = "Name of the ACL policy; empty means <job_name>-gateway."
  default     = ""

  validation {
    condition     = var.acl_policy_name == "" || can(regex("^[a-zA-Z0-9-]{1,128}$", var.acl_policy_name))
    error_message = "The acl_policy_name must be 1-128 letters, digits or dashes."
  }
}

# Secrets: kept out of the Terraform state.

variable "secrets_source" {
  type        = string
  description = "Where the gateway's secrets come from. \"terraform\": this module writes the Nomad variable nomad/jobs/<job_name> with write-only arguments (items_wo: the values are sent to Nomad and never stored in the state or the plan); \"external\": you write that variable yourself (nomad var put), the module does not touch it; \"vault\": a Vault KV v2 secret (see vault)."
  default     = "terraform"

  validation {
    condition     = contains(["terraform", "external", "vault"], var.secrets_source)
    error_message = "The secrets_source must be terraform, external or vault."
  }
}

variable "secrets_version" {
  type        = number
  description = "Version of the write-only secrets (items_wo_version). Terraform cannot see a change of a write-only value: bump this to write new secret values; the gateway restarts with them."
  default     = 1
}

variable "vault" {
  type = object({
    # KV v2 path as consul-template reads it, e.g. "secret/data/bay".
    path = string
    # Vault role of the job's workload identity; empty: the cluster default.
    role = optional(string, "")
  })
  description = "With secrets_source = \"vault\": where the gateway's secrets live. Every key of the secret becomes an environment variable of the task (BAY_API_KEY, NOMAD_TOKEN, CONSUL_HTTP_TOKEN, BAY_STORE_DSN, NOMAD_CLIENT_KEY_PEM, CONSUL_CLIENT_KEY_PEM)."
  default     = null
}

variable "store_driver" {
  type        = string
  description = "Where the gateway keeps its state: \"sqlite\" (a file on the data volume; one gateway) or \"postgres\" (store_dsn; any number of gateways, no data volume)."
  default     = "sqlite"

  validation {
    condition     = contains(["sqlite", "postgres"], var.store_driver)
    error_message = "The store_driver must be sqlite or postgres."
  }
}

variable "store_dsn" {
  type        = string
  description = "PostgreSQL DSN (store_driver = \"postgres\"), a secret: written to the Nomad variable write-only, rendered into the task's secrets directory only."
  default     = ""
  sensitive   = true
}

# TLS to Nomad and Consul, as PEM text. The CA and certificate go into the
# jobspec; the private key goes with the other secrets.

variable "nomad_tls" {
  type = object({
    ca_cert     = string
    client_cert = optional(string, "")
    server_name = optional(string, "")
  })
  description = "TLS of the gateway's Nomad API connection: CA bundle and client certificate (PEM). The client key is nomad_tls_client_key. Null: plain HTTP or the system roots."
  default     = null
}

variable "nomad_tls_client_key" {
  type        = string
  description = "Private key (PEM) of nomad_tls.client_cert; a secret, kept out of the state like the others."
  default     = ""
  sensitive   = true
}

variable "consul_tls" {
  type = object({
    ca_cert     = string
    client_cert = optional(string, "")
    server_name = optional(string, "")
  })
  description = "TLS of the gateway's Consul connection (discovery = \"consul\"): CA bundle and client certificate (PEM). The client key is consul_tls_client_key."
  default     = null
}

variable "consul_tls_client_key" {
  type        = string
  description = "Private key (PEM) of consul_tls.client_cert; a secret."
  default     = ""
  sensitive   = true
}

# What a destroy does with the sessions the gateway started.

variable "drain_on_destroy" {
  type        = bool
  description = "When the gateway job is stopped or purged (terraform destroy, nomad job stop) the gateway stops every session it started before it exits, so no sandbox compute is left running. A rolling update or restart is not affected. Cargos (the users' workspaces) are kept unless delete_cargos_on_destroy."
  default     = true
}

variable "delete_cargos_on_destroy" {
  type        = bool
  description = "With drain_on_destroy, also delete every sandbox and every cargo volume: THE USERS' WORKSPACES ARE LOST. Default false keeps them (their dynamic host volumes bay-cargo-*) for a later deployment."
  default     = false
}

variable "drain_timeout" {
  type        = number
  description = "Seconds the gateway may spend draining on a deliberate stop; the task's kill_timeout is this plus 15 s."
  default     = 60

  validation {
    condition     = var.drain_timeout == floor(var.drain_timeout) && var.drain_timeout >= 5 && var.drain_timeout <= 3600
    error_message = "The drain_timeout must be a whole number of seconds in 5..3600."
  }
}
