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
  description = "Wait until the gateway's deployment is healthy instead of returning once the job is registered."
  default     = false
}

variable "purge_on_destroy" {
  type        = bool
  description = "Purge the gateway job (not only stop it) on destroy."
  default     = false
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
  description = "Bearer key clients use. Stored in the Nomad variable nomad/jobs/<job_name>, never in the jobspec. Empty: the gateway generates one at first start (see <data_dir>/credentials.json)."
  default     = ""
  sensitive   = true

  validation {
    condition     = var.api_key == "" || can(regex("^[A-Za-z0-9._~+/=-]{16,}$", var.api_key))
    error_message = "The api_key must be empty or at least 16 characters from A-Z a-z 0-9 . _ ~ + / = -."
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
  description = "ACL token the gateway registers session jobs with (submit-job, read-job, host-volume-create/delete in its namespace). Empty for clusters without ACLs."
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
