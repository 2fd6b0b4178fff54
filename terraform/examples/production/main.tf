# Bay on a production cluster: several Nomad clients with the docker driver,
# Consul for service discovery, ACLs and TLS on, two gateways on PostgreSQL
# behind one Consul service ("bay"), secrets kept out of the state.
#
#   export NOMAD_ADDR=https://nomad.example:4646 NOMAD_TOKEN=<operator token>
#   export NOMAD_CACERT=... NOMAD_CLIENT_CERT=... NOMAD_CLIENT_KEY=...
#   tofu init
#   tofu apply -var-file=prod.tfvars     # images, dsn, TLS material
#
# The provider reads NOMAD_ADDR, NOMAD_TOKEN and the TLS variables from the
# environment. The gateway gets no long-lived token: its workload identity
# carries Bay's ACL policy, bound to the job by the module.
#
# Put a load balancer in front of the "bay" Consul service (Consul DNS
# bay.service.consul, consul-template into HAProxy/nginx, Traefik or Fabio
# with the Consul catalog): any gateway serves any sandbox.

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

variable "gateway_image" {
  type        = string
  description = "Gateway image in your registry, e.g. registry.example/bay:1.2.3."
}

variable "ship_image" {
  type        = string
  description = "Ship image, e.g. registry.example/bay-ship:1.2.3."
}

variable "gull_image" {
  type        = string
  description = "Gull image, e.g. registry.example/bay-gull:1.2.3."
}

variable "store_dsn" {
  type        = string
  description = "PostgreSQL DSN of the gateways' shared state."
  sensitive   = true
}

variable "consul_token" {
  type        = string
  description = "Consul token of the gateway (service:read, node:read)."
  default     = ""
  sensitive   = true
}

variable "nomad_ca_pem" {
  type        = string
  description = "CA bundle (PEM) of the Nomad API the gateways talk to."
}

variable "consul_ca_pem" {
  type        = string
  description = "CA bundle (PEM) of the Consul agents."
}

variable "secrets_version" {
  type        = number
  description = "Bump to write new secret values (write-only: Terraform cannot see them change)."
  default     = 1
}

provider "nomad" {}

variable "api_key" {
  type        = string
  description = "Client bearer key (openssl rand -hex 24, or a random_password: a value unknown at plan time is fine). Sent to Nomad write-only, never stored in the state by the module."
  sensitive   = true
}

module "bay" {
  source = "../../modules/bay-gateway"

  gateway_image = var.gateway_image
  ship_image    = var.ship_image
  gull_image    = var.gull_image
  api_key       = var.api_key

  job_name    = "bay"
  namespace   = "default"
  datacenters = ["dc1", "dc2"]
  node_pool   = "default"
  constraints = [
    { attribute = "$${attr.kernel.name}", value = "linux" },
    { attribute = "$${attr.driver.docker}", value = "true" },
  ]
  gateway_count     = 2
  gateway_resources = { cpu = 1000, memory = 512 }

  store_driver    = "postgres"
  store_dsn       = var.store_dsn
  secrets_version = var.secrets_version

  nomad_auth            = "workload_identity"
  gateway_nomad_address = "https://$${attr.unique.network.ip-address}:4646"
  nomad_tls             = { ca_cert = var.nomad_ca_pem, server_name = "client.global.nomad" }

  discovery      = "consul"
  consul_address = "https://$${attr.unique.network.ip-address}:8501"
  consul_token   = var.consul_token
  consul_tls     = { ca_cert = var.consul_ca_pem }

  session_datacenters = ["dc1", "dc2"]
  session_driver      = "docker"

  drain_on_destroy         = true
  delete_cargos_on_destroy = false
}

output "service_name" {
  value = module.bay.service_name
}

output "acl_policy_name" {
  value = module.bay.acl_policy_name
}
