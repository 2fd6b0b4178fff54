# Deploys the Bay gateway onto a local dev agent:
#
#   nomad agent -dev -bind 0.0.0.0 &     # a client with the docker driver
#   docker build -f deploy/Dockerfile.bay  -t bay:dev .        # from the repo root
#   docker build -f deploy/Dockerfile.ship -t bay-ship:dev .
#   docker build -f deploy/Dockerfile.gull -t bay-gull:dev .
#   tofu init && tofu apply -var api_key=$(openssl rand -hex 24)
#
# -bind 0.0.0.0: the gateway container reaches the agent on the node's
# address, not on the container's own 127.0.0.1. A dev agent without ACLs
# needs no policy (acl = true below is for an agent with acl { enabled }).

terraform {
  required_version = ">= 1.11.0"

  required_providers {
    nomad = {
      source  = "hashicorp/nomad"
      version = "= 2.6.1"
    }
    time = {
      source  = "hashicorp/time"
      version = "= 0.14.0"
    }
  }
}

variable "nomad_address" {
  type        = string
  description = "The dev agent Terraform talks to."
  default     = "http://127.0.0.1:4646"
}

variable "acl" {
  type        = bool
  description = "The agent has ACLs enabled: create Bay's policy and bind it to the gateway's workload identity (the provider's token, NOMAD_TOKEN, needs to manage ACL policies)."
  default     = false
}

variable "api_key" {
  type        = string
  description = "Bearer key for the gateway; empty lets it generate one (see its log)."
  default     = ""
  sensitive   = true
}

variable "gateway_image" {
  type        = string
  description = "Gateway image."
  default     = "bay:dev"
}

provider "nomad" {
  address = var.nomad_address
}

module "bay" {
  source = "../../modules/bay-gateway"

  gateway_image = var.gateway_image
  ship_image    = "bay-ship:dev"
  gull_image    = "bay-gull:dev"
  api_key       = var.api_key

  datacenters         = ["dc1"]
  session_datacenters = ["dc1"]
  discovery           = "nomad"
  log_level           = "debug"

  nomad_auth        = var.acl ? "workload_identity" : "none"
  create_acl_policy = var.acl

  extra_config = <<-EOT
    gc {
      interval = "30s"
    }
  EOT
}

output "job_id" {
  value = module.bay.job_id
}

output "address_hint" {
  value = module.bay.address_hint
}

output "acl_policy_name" {
  value = module.bay.acl_policy_name
}
