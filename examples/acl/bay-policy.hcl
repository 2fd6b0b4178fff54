# The Nomad ACL policy of a Bay gateway: exactly the capabilities it uses.
#
#   nomad acl policy apply -description "Bay gateway" bay examples/acl/bay-policy.hcl
#   nomad acl token create -name bay -policy bay      # give its secret to Bay (NOMAD_TOKEN)
#
# Bay runs its sessions in one namespace ("default" here; set the same one in
# bay.hcl's nomad { namespace = ... } and change the label below).
#
# What each capability is for (`bay serve` checks each at start and names
# the ones the token lacks; nomad { token_check = "refuse" } stops it there):
#   list-jobs           re-adopt sessions after a restart, find orphans
#   read-job            allocations, evaluations, the event stream (Allocation,
#                       Job, Service topics) and native service discovery
#   submit-job          register, stop and purge session jobs
#   host-volume-read    read and list cargo volumes
#   host-volume-create  create cargo volumes (dynamic host volumes)
#   host-volume-delete  delete managed cargo volumes
# and, on the cargo volumes only (every cargo is "bay-cargo-<id>"):
#   mount-readwrite     a session's job claims its cargo read-write
#
# Consul discovery (nomad { discovery = "consul" }) needs a Consul token
# with service:read and node:read instead of the Nomad read-job for services.
namespace "default" {
  capabilities = [
    "list-jobs",
    "read-job",
    "submit-job",
    "host-volume-read",
    "host-volume-create",
    "host-volume-delete",
  ]
}

host_volume "bay-cargo-*" {
  capabilities = ["mount-readwrite"]
}
