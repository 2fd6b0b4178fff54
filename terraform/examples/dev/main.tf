# Deploys the Bay gateway onto a local dev agent:
#
#   nomad agent -dev -bind 0.0.0.0 &     # a client with the docker driver
#   docker build -f deploy/Dockerfile.bay  -t bay:dev .        # from the repo root
#   docker build -f deploy/Dockerfile.ship -t bay-ship:dev .
#   docker build -f deploy/Dockerfile.gull -t bay-gull:dev .
#   terraform init && terraform apply -var api_key=$(openssl rand -hex 24)
#
# -bind 0.0.0.0: the gateway container reaches the agent on the node's
# address, not on the container's own 127.0.0.1.

terraform {
  required_version = ">= 1.3.0"

  required_providers {
    nomad = {
      source  = "hashicorp/nomad"
      version = ">= 2.5.0, < 3.0.0"
    }
  }
}

variable "nomad_address" {
  type        = string
  description = "The dev agent Terraform talks to."
  default     = "http://127.0.0.1:4646"
}

variable "api_key" {
  type        = string
  description = "Bearer key for the gateway; empty lets it generate one (see its log)."
  default     = ""
  sensitive   = true
}

provider "nomad" {
  address = var.nomad_address
}

module "bay" {
  source = "../../modules/bay-gateway"

  gateway_image = "bay:dev"
  ship_image    = "bay-ship:dev"
  gull_image    = "bay-gull:dev"
  api_key       = var.api_key

  datacenters         = ["dc1"]
  session_datacenters = ["dc1"]
  discovery           = "nomad"
  log_level           = "debug"

  # A dev agent forgets everything on exit: nothing to keep.
  purge_on_destroy    = true
  wait_for_deployment = false

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
