# Bay on a local Nomad dev agent.
#
# Serves the default profiles (python-default: Ship; browser-python: Ship +
# Gull) as Nomad jobs on `nomad agent -dev`, with raw_exec tasks, bridge
# networking and Nomad-native service discovery. Cargos are Nomad dynamic
# host volumes (plugin "mkdir").
#
# 1. Start a dev agent (as root: bridge networking needs it) with raw_exec
#    enabled and the CNI plugins, e.g. with this agent file:
#
#      # nomad-agent.hcl
#      disable_update_check = true   # no lookup of the checkpoint service
#      client {
#        cni_path = "/usr/lib/cni"   # Debian/Ubuntu: containernetworking-plugins
#      }
#      plugin "raw_exec" {
#        config {
#          enabled = true
#        }
#      }
#
#      sudo nomad agent -dev -config nomad-agent.hcl
#
#    (On a cloud-less machine where a cloud fingerprinter hangs or fails,
#    add options = { "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean" }
#    to the client block.)
#
# 2. Build Bay (make build puts bay, ship and gull side by side in bin/) and
#    run, from the repository root:
#
#      bin/bay serve --config examples/nomad-dev.hcl
#
# raw_exec runs the ship and gull binaries found beside bay (or set them in
# the runtimes block) directly on the host, so their paths must exist on the
# Nomad client: on a dev agent that is this machine. raw_exec isolates
# nothing; use exec or docker (default_driver, or a profile container's
# driver) for real isolation.

data_dir  = "./.bay-nomad"
bind_addr = "127.0.0.1"
port      = 8114
log_level = "info"

# Names this gateway in its jobs (meta bay.instance): a restarted gateway
# re-adopts the sessions it made, and leaves other gateways' alone.
instance_id = "bay-nomad-dev"

allocator = "nomad"

auth {
  # Development only: no API key needed, the owner comes from X-Owner.
  allow_anonymous = true
}

runtimes {
  # Empty: ship and gull beside the bay binary, then PATH. Ship uses
  # Debian's python3 (it has IPython, matplotlib and numpy).
  python = "/usr/bin/python3"
}

nomad {
  # Also from NOMAD_ADDR / NOMAD_TOKEN / NOMAD_REGION / NOMAD_NAMESPACE and
  # NOMAD_CACERT / NOMAD_CLIENT_CERT / NOMAD_CLIENT_KEY when left out here.
  address = "http://127.0.0.1:4646"

  datacenters = ["*"]

  # Containers that name no driver run as raw_exec tasks.
  default_driver = "raw_exec"

  # Endpoints come from Nomad's own service registrations (no Consul).
  discovery = "nomad"

  volume {
    # Cargos are dynamic host volumes made by Nomad's built-in plugin.
    plugin = "mkdir"
  }

  # Register → every container answering /health; raw_exec starts in about
  # a second here.
  start_timeout = "60s"

  # SIGTERM → SIGKILL: Gull saves its browser profile into the cargo on
  # SIGTERM.
  kill_timeout = "10s"
}
