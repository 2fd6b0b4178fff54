locals {
  instance_id  = var.instance_id != "" ? var.instance_id : var.job_name
  secrets_path = "nomad/jobs/${var.job_name}"

  # Each item becomes an environment variable of the gateway task (see the
  # secrets template in the jobspec). A job's workload identity may read
  # nomad/jobs/<job id> without any ACL policy.
  secret_env = {
    for k, v in {
      BAY_API_KEY       = var.api_key
      NOMAD_TOKEN       = var.gateway_nomad_token
      CONSUL_HTTP_TOKEN = var.consul_token
    } : k => v if v != ""
  }

  profiles = var.profiles != "" ? var.profiles : templatefile("${path.module}/templates/profiles.hcl.tftpl", {
    ship_image = var.ship_image
    gull_image = var.gull_image
  })

  bay_config = templatefile("${path.module}/templates/bay.hcl.tftpl", {
    log_level           = var.log_level
    allow_anonymous     = var.allow_anonymous
    region              = var.region
    namespace           = var.namespace
    session_datacenters = var.session_datacenters
    session_node_pool   = var.session_node_pool
    session_driver      = var.session_driver
    discovery           = var.discovery
    volume_plugin       = var.volume_plugin
    profiles            = local.profiles
    extra_config        = var.extra_config
  })

  jobspec = templatefile("${path.module}/templates/bay.nomad.hcl.tftpl", {
    job_name         = var.job_name
    region           = var.region
    namespace        = var.namespace
    datacenters      = var.datacenters
    node_pool        = var.node_pool
    image            = var.gateway_image
    port             = var.port
    cpu              = var.gateway_resources.cpu
    memory           = var.gateway_resources.memory
    data_volume      = var.data_volume.name
    instance_id      = local.instance_id
    service_provider = var.discovery
    nomad_address    = var.gateway_nomad_address
    consul_address   = var.consul_address
    secrets_path     = local.secrets_path
    # The config sits in a heredoc of the jobspec, where ${ and %{ would be
    # template syntax: doubled, they reach the file as written.
    bay_config = replace(replace(local.bay_config, "$${", "$$${"), "%%{", "%%%{")
  })
}

resource "nomad_variable" "secrets" {
  # Only the number of secrets is revealed, not their values.
  count = nonsensitive(length(local.secret_env)) > 0 ? 1 : 0

  path      = local.secrets_path
  namespace = var.namespace
  items     = local.secret_env
}

resource "nomad_dynamic_host_volume" "data" {
  count = var.data_volume.create ? 1 : 0

  name      = var.data_volume.name
  namespace = var.namespace
  plugin_id = var.data_volume.plugin_id
  node_pool = var.data_volume.node_pool != "" ? var.data_volume.node_pool : null

  capability {
    access_mode     = "single-node-writer"
    attachment_mode = "file-system"
  }

  # The gateway image runs as uid/gid 1000 (deploy/Dockerfile.bay).
  parameters = {
    uid  = "1000"
    gid  = "1000"
    mode = "0700"
  }
}

resource "nomad_job" "gateway" {
  jobspec          = local.jobspec
  detach           = !var.wait_for_deployment
  purge_on_destroy = var.purge_on_destroy

  # The secrets must exist before the first render of the task's template,
  # and the volume before the job can be placed.
  depends_on = [nomad_variable.secrets, nomad_dynamic_host_volume.data]

  lifecycle {
    precondition {
      condition     = var.profiles != "" || (var.ship_image != "" && var.gull_image != "")
      error_message = "Set ship_image and gull_image for the default profiles, or define your own profiles."
    }
  }
}
