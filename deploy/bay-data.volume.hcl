# The gateway's state volume: a Nomad dynamic host volume made by the
# built-in mkdir plugin, owned by the image's "bay" user (uid/gid 1000).
#
#   nomad volume create deploy/bay-data.volume.hcl
#
# The volume lives on one node, so the gateway job is placed there.
name      = "bay-data"
type      = "host"
plugin_id = "mkdir"

capability {
  access_mode     = "single-node-writer"
  attachment_mode = "file-system"
}

parameters {
  uid  = "1000"
  gid  = "1000"
  mode = "0700"
}
