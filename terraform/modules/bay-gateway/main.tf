locals {
  instance_id     = var.instance_id != "" ? var.instance_id : var.job_name
  secrets_path    = "nomad/jobs/${var.job_name}"
  acl_policy_name = var.acl_policy_name != "" ? var.acl_policy_name : "${var.job_name}-gateway"

  # Bay's policy as shipped in examples/acl/bay-policy.hcl, for this
  # namespace (the file is written for "default").
  acl_policy = replace(file("${path.module}/acl/bay-policy.hcl"), "namespace \"default\"", "namespace \"${var.namespace}\"")

  # SQLite lives on the data volume; with PostgreSQL the gateways keep
  # nothing of their own and need no volume.
  use_volume = var.store_driver == "sqlite"

  # Secrets, by the environment variable each becomes in the gateway task.
  # Empty ones are left out. The values may be unknown at plan time (a token
  # or a random_password made in the same run): nothing counts them.
  # BAY_SECRETS_VERSION keeps the variable non-empty and restarts the task
  # when the secrets change.
  secret_env = merge({ BAY_SECRETS_VERSION = tostring(var.secrets_version) }, {
    for k, v in {
      BAY_API_KEY           = var.api_key
      NOMAD_TOKEN           = var.nomad_auth == "token" ? var.gateway_nomad_token : ""
      CONSUL_HTTP_TOKEN     = var.consul_token
      BAY_STORE_DSN         = var.store_driver == "postgres" ? var.store_dsn : ""
      NOMAD_CLIENT_KEY_PEM  = var.nomad_tls_client_key
      CONSUL_CLIENT_KEY_PEM = var.consul_tls_client_key
    } : k => v if v != ""
  })

  # Purging a job deletes its allocations, and with them the workload
  # identity the gateway drains with: in that case Terraform only stops the
  # job and the gateway purges it once its sessions are stopped.
  gateway_purges = var.purge_on_destroy && var.drain_on_destroy && var.nomad_auth == "workload_identity"

  # The task's kill_timeout leaves the drain its time.
  kill_timeout = var.drain_timeout + 15
  # How long the policy, secrets and data volume are kept after the job is
  # deregistered: the service deregistration delay, the kill timeout, and a
  # margin.
  volume_release_seconds = 5 + local.kill_timeout + 10

  profiles = var.profiles != "" ? var.profiles : templatefile("${path.module}/templates/profiles.hcl.tftpl", {
    ship_image = var.ship_image
    gull_image = var.gull_image
  })

  bay_config = templatefile("${path.module}/templates/bay.hcl.tftpl", {
    log_level           = var.log_level
    allow_anonymous     = var.allow_anonymous
    api_keys            = var.api_keys
    region              = var.region
    namespace           = var.namespace
    session_datacenters = var.session_datacenters
    session_node_pool   = var.session_node_pool
    session_driver      = var.session_driver
    discovery           = var.discovery
    volume_plugin       = var.volume_plugin
    drain               = var.drain_on_destroy
    delete_cargos       = var.drain_on_destroy && var.delete_cargos_on_destroy
    purge_job           = local.gateway_purges
    drain_timeout       = var.drain_timeout
    profiles            = local.profiles
  })

  jobspec = templatefile("${path.module}/templates/bay.nomad.hcl.tftpl", {
    job_name          = var.job_name
    region            = var.region
    namespace         = var.namespace
    datacenters       = var.datacenters
    node_pool         = var.node_pool
    constraints       = var.constraints
    gateway_count     = var.gateway_count
    driver            = var.driver
    image             = var.gateway_image
    command           = var.gateway_command
    port              = var.port
    cpu               = var.gateway_resources.cpu
    memory            = var.gateway_resources.memory
    use_volume        = local.use_volume
    data_volume       = var.data_volume.name
    instance_id       = local.instance_id
    service_provider  = var.discovery
    nomad_address     = var.gateway_nomad_address
    consul_address    = var.consul_address
    workload_identity = var.nomad_auth == "workload_identity"
    secrets_source    = var.secrets_source
    secrets_path      = local.secrets_path
    # The Vault input is read only with secrets_source = "vault"; the
    # precondition reports a missing one.
    vault_path     = var.vault != null ? var.vault.path : ""
    vault_role     = var.vault != null ? var.vault.role : ""
    store_postgres = var.store_driver == "postgres"
    nomad_tls      = var.nomad_tls
    # A client certificate comes with its key (a secret: whether one is
    # given must not make the jobspec sensitive, so the certificate decides).
    nomad_tls_key  = var.nomad_tls != null ? var.nomad_tls.client_cert != "" : false
    consul_tls     = var.consul_tls
    consul_tls_key = var.consul_tls != null ? var.consul_tls.client_cert != "" : false
    kill_timeout   = local.kill_timeout
    # The configs sit in heredocs of the jobspec, where ${ and %{ would be
    # template syntax: doubled, they reach the files as written.
    bay_config   = replace(replace(local.bay_config, "$${", "$$${"), "%%{", "%%%{")
    extra_config = replace(replace(var.extra_config, "$${", "$$${"), "%%{", "%%%{")
  })
}

resource "nomad_acl_policy" "gateway" {
  count = var.create_acl_policy ? 1 : 0

  name        = local.acl_policy_name
  description = "Bay gateway ${var.job_name}: the capabilities it needs in namespace ${var.namespace}"
  rules_hcl   = local.acl_policy

  # Bound to the gateway job, the policy applies to its workload identity:
  # the task's NOMAD_TOKEN is then a short-lived identity token, no secret.
  dynamic "job_acl" {
    for_each = var.nomad_auth == "workload_identity" ? [var.job_name] : []
    content {
      namespace = var.namespace
      job_id    = job_acl.value
    }
  }
}

resource "nomad_variable" "secrets" {
  count = var.secrets_source == "terraform" ? 1 : 0

  path      = local.secrets_path
  namespace = var.namespace
  # Write-only: sent to Nomad, never stored in the state or shown in a plan.
  items_wo         = jsonencode(local.secret_env)
  items_wo_version = var.secrets_version
}

resource "nomad_dynamic_host_volume" "data" {
  count = local.use_volume && var.data_volume.create ? 1 : 0

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

  # The provider reads the capacities back as "0 B" where none was set and
  # would plan an update every time, which Nomad refuses for a volume in use.
  lifecycle {
    ignore_changes = [capacity_min, capacity_max]
  }
}

# Destroying the job returns as soon as Nomad accepts the deregistration,
# while the gateway is still draining: it still needs its ACL policy (to
# stop its sessions), its secrets and its volume. Destroyed after the job,
# this waits the task's shutdown delay and kill timeout before they go.
resource "time_sleep" "gateway_stopped" {
  destroy_duration = "${local.volume_release_seconds}s"

  depends_on = [nomad_variable.secrets, nomad_acl_policy.gateway, nomad_dynamic_host_volume.data]
}

resource "nomad_job" "gateway" {
  jobspec          = local.jobspec
  detach           = !var.wait_for_deployment
  purge_on_destroy = var.purge_on_destroy && !local.gateway_purges

  # The secrets must exist before the first render of the task's templates,
  # the policy before the task's identity uses it, and the volume before
  # the job can be placed; all three outlive the job's stop (the sleep).
  depends_on = [nomad_variable.secrets, nomad_acl_policy.gateway, nomad_dynamic_host_volume.data, time_sleep.gateway_stopped]

  lifecycle {
    precondition {
      condition     = var.profiles != "" || (var.ship_image != "" && var.gull_image != "")
      error_message = "Set ship_image and gull_image for the default profiles, or define your own profiles."
    }
    precondition {
      condition     = var.gateway_count == 1 || var.store_driver == "postgres"
      error_message = "More than one gateway needs store_driver = \"postgres\": SQLite has a single writer."
    }
    precondition {
      condition     = var.secrets_source != "vault" || var.vault != null
      error_message = "secrets_source = \"vault\" needs the vault input (path, role)."
    }
    precondition {
      condition     = (var.nomad_tls == null ? "" : var.nomad_tls.client_cert) == "" || nonsensitive(var.nomad_tls_client_key != "")
      error_message = "nomad_tls.client_cert needs its key in nomad_tls_client_key."
    }
    precondition {
      condition     = (var.consul_tls == null ? "" : var.consul_tls.client_cert) == "" || nonsensitive(var.consul_tls_client_key != "")
      error_message = "consul_tls.client_cert needs its key in consul_tls_client_key."
    }
    precondition {
      condition     = var.nomad_auth != "workload_identity" || var.create_acl_policy
      error_message = "nomad_auth = \"workload_identity\" needs create_acl_policy = true: the identity gets its capabilities from the policy bound to the job."
    }
  }
}
