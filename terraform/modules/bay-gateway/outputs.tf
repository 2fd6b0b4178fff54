output "job_id" {
  description = "ID of the gateway's Nomad job."
  value       = nomad_job.gateway.id
}

output "namespace" {
  description = "Namespace the gateway job runs in."
  value       = nomad_job.gateway.namespace
}

output "service_name" {
  description = "Name of the gateway's service in the discovery provider."
  value       = var.job_name
}

output "port" {
  description = "Static host port of the gateway."
  value       = var.port
}

output "address_hint" {
  description = "Where to reach the gateway: the static port on the node running its allocation."
  value = format(
    "http://<node address>:%d (the node: nomad job status -namespace=%s %s; or the %q service in %s)",
    var.port, nomad_job.gateway.namespace, nomad_job.gateway.id, var.job_name, var.discovery,
  )
}

output "secrets_variable_path" {
  description = "Nomad variable whose items become the gateway's environment (BAY_API_KEY, NOMAD_TOKEN, CONSUL_HTTP_TOKEN, BAY_STORE_DSN, ...): written by the module (secrets_source = \"terraform\") or by you (\"external\"); null with Vault."
  value       = var.secrets_source == "vault" ? null : local.secrets_path
}

output "acl_policy_name" {
  description = "The gateway's Nomad ACL policy (null when create_acl_policy = false). With nomad_auth = \"token\", create the gateway's token with it: nomad_acl_token { policies = [module.bay.acl_policy_name] }."
  value       = length(nomad_acl_policy.gateway) > 0 ? nomad_acl_policy.gateway[0].name : null
}

output "gateway_count" {
  description = "Number of gateway allocations behind the service_name."
  value       = var.gateway_count
}

output "data_volume_id" {
  description = "ID of the dynamic host volume holding the gateway's state; null when the module did not create it (create = false, or store_driver = \"postgres\")."
  value       = length(nomad_dynamic_host_volume.data) > 0 ? nomad_dynamic_host_volume.data[0].id : null
}

output "jobspec" {
  description = "The rendered jobspec (no secrets in it)."
  value       = local.jobspec
}
