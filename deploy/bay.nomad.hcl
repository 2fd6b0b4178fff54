# The Bay gateway as a Nomad service job (docker driver). The gateway then
# starts every sandbox session as a Nomad job of its own.
#
#   nomad volume create deploy/bay-data.volume.hcl      # once: the state volume
#   nomad acl policy apply -namespace default -job bay bay-gateway examples/acl/bay-policy.hcl
#   nomad var put nomad/jobs/bay BAY_API_KEY=<key>      # optional: secrets
#   nomad job run -var image=bay:1.2.3 -var "config=$(cat bay.hcl)" deploy/bay.nomad.hcl
#
# With ACLs, the policy bound to the job (-job bay) gives the gateway's
# workload identity (its NOMAD_TOKEN, see the identity block) what it needs:
# no long-lived token. Without ACLs the policy step is not needed.
#
# With Consul: -var service_provider=consul registers the gateway in Consul
# with its /health check (and a config with nomad { discovery = "consul" }
# finds the sessions' containers there too).
#
# Secrets never sit in this file: every item of the Nomad variable
# nomad/jobs/bay becomes an environment variable of the gateway (BAY_API_KEY,
# NOMAD_TOKEN, CONSUL_HTTP_TOKEN, ...). The job's workload identity may read
# that path without any ACL policy. Changing the variable restarts the task.
#
# The terraform/modules/bay-gateway module deploys the same job.

variable "image" {
  type        = string
  description = "The gateway image (built from deploy/Dockerfile.bay)."
  default     = "bay:latest"
}

variable "region" {
  type    = string
  default = "global"
}

variable "namespace" {
  type    = string
  default = "default"
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "node_pool" {
  type    = string
  default = "default"
}

variable "port" {
  type        = number
  description = "Static host port the gateway is reached on."
  default     = 8114
}

variable "data_volume" {
  type        = string
  description = "Host volume (dynamic or static) holding the gateway's SQLite state; must be writable by uid 1000."
  default     = "bay-data"
}

variable "instance_id" {
  type        = string
  description = "Stable name of this gateway in the session jobs it creates (meta bay.instance); a container's hostname changes on every restart, so it is set here."
  default     = "bay"
}

variable "service_provider" {
  type        = string
  description = "Where the gateway's own service \"bay\" and its /health check are registered: nomad, or consul when the cluster has Consul (then Consul's DNS and health API find the gateway, e.g. bay.service.consul)."
  default     = "nomad"

  validation {
    condition     = contains(["nomad", "consul"], var.service_provider)
    error_message = "The service_provider must be nomad or consul."
  }
}

# Runtime interpolation: Nomad fills ${attr...} in on the client, so the
# gateway talks to the agent of the node it runs on.
variable "nomad_address" {
  type    = string
  default = "http://$${attr.unique.network.ip-address}:4646"
}

variable "consul_address" {
  type        = string
  description = "Used when the config selects nomad.discovery = \"consul\"."
  default     = "http://$${attr.unique.network.ip-address}:8500"
}

variable "config" {
  type        = string
  description = "The gateway's bay.hcl. data_dir, bind_addr, port and instance_id are set by this job's environment and override the file."
  default     = <<-EOT
    allocator = "nomad"

    # nomad job stop bay: stop every session first; cargos are kept.
    shutdown {
      drain_sessions = true
      timeout        = "60s"
    }

    nomad {
      datacenters    = ["*"]
      default_driver = "docker"
      discovery      = "nomad"
    }

    # Paths inside the deploy/Dockerfile.ship and Dockerfile.gull images.
    runtimes {
      python        = "/usr/bin/python3"
      agent_browser = "/usr/local/bin/agent-browser"
    }

    # Sessions on docker need an image per container.
    profile "python-default" {
      description = "Python, shell and filesystem in one Ship container"

      container "ship" {
        runtime_type = "ship"
        image        = "bay-ship:latest"
      }
    }

    profile "browser-python" {
      description = "Python, shell and filesystem (Ship) plus a browser (Gull) on one workspace"

      container "ship" {
        runtime_type = "ship"
        primary_for  = ["filesystem"]
        image        = "bay-ship:latest"
      }

      container "gull" {
        runtime_type = "gull"
        image        = "bay-gull:latest"
      }
    }
  EOT
}

variable "cpu" {
  type    = number
  default = 500
}

variable "memory" {
  type    = number
  default = 256
}

job "bay" {
  type        = "service"
  region      = var.region
  namespace   = var.namespace
  datacenters = var.datacenters
  node_pool   = var.node_pool

  # No bay.* meta here: that prefix marks the session jobs the gateway
  # manages (and garbage-collects).

  # One gateway per state volume: SQLite has a single writer, so no canaries
  # and the old allocation stops before the new one starts.
  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "3m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "gateway" {
    count = 1

    # Deregister the service first so clients stop sending new requests.
    shutdown_delay = "5s"

    network {
      port "http" {
        static = var.port
        to     = 8114
      }
    }

    volume "data" {
      type   = "host"
      source = var.data_volume
    }

    restart {
      attempts = 3
      delay    = "10s"
      interval = "5m"
      mode     = "delay"
    }

    service {
      name     = "bay"
      provider = var.service_provider
      port     = "http"
      tags     = ["bay", "gateway"]

      check {
        name     = "bay-health"
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "bay" {
      driver = "docker"

      config {
        image = var.image
        ports = ["http"]
        # A directory of config fragments, merged in name order.
        args = ["--config", "$${NOMAD_TASK_DIR}/bay.d"]
      }

      # The task's workload identity is its Nomad token (NOMAD_TOKEN).
      identity {
        env         = true
        change_mode = "restart"
      }

      # Settings the job owns: where the volume and the port are.
      env {
        BAY_DATA_DIR     = "/var/lib/bay"
        BAY_BIND_ADDR    = "0.0.0.0"
        BAY_PORT         = "8114"
        BAY_INSTANCE_ID  = var.instance_id
        NOMAD_ADDR       = var.nomad_address
        CONSUL_HTTP_ADDR = var.consul_address
      }

      volume_mount {
        volume      = "data"
        destination = "/var/lib/bay"
      }

      template {
        data        = var.config
        destination = "local/bay.d/10-bay.hcl"
        change_mode = "restart"
      }

      template {
        data        = <<-EOT
          {{- if nomadVarExists "nomad/jobs/bay" }}
          {{- range $k, $v := nomadVar "nomad/jobs/bay" }}
          {{- if not ($k | regexMatch "_PEM$") }}
          {{ $k }}={{ $v.Value | toJSON }}
          {{- end }}
          {{- end }}
          {{- end }}
        EOT
        destination = "secrets/bay.env"
        env         = true
        change_mode = "restart"
      }

      # On SIGTERM the gateway finishes in-flight requests, drains its warm
      # pool and, when this job is being stopped, its sessions
      # (shutdown { drain_sessions }): kill_timeout leaves it that time.
      kill_signal  = "SIGTERM"
      kill_timeout = "75s"

      resources {
        cpu    = var.cpu
        memory = var.memory
      }
    }
  }
}
