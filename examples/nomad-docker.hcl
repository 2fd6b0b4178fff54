# Bay on a local Nomad agent with sessions as Docker tasks: the production
# shape (deploy/Dockerfile.ship and Dockerfile.gull images), on one machine.
#
# Serves the default profiles (python-default: Ship; browser-python: Ship +
# Gull) with the bay-ship and bay-gull images: each session is one Nomad job
# whose group has a bridge network (Gull reaches Ship on 127.0.0.1:8123) and
# the cargo, a Nomad dynamic host volume, mounted at /workspace in both
# containers. Nomad-native service discovery.
#
# 1. Build the images (Docker running; only Debian's mirrors needed):
#
#      make images          # bay-ship:dev, bay-gull:dev (and :<version>)
#
# 2. Start a dev agent as root (bridge networking needs it) with the CNI
#    plugins, e.g. with this agent file:
#
#      # nomad-agent.hcl
#      client {
#        cni_path = "/usr/lib/cni"   # Debian/Ubuntu: containernetworking-plugins
#      }
#      plugin "docker" {
#        config {
#          # A bridge-network group's namespace is held by a pause container.
#          # Nomad's default (registry.k8s.io/pause) needs that registry; with
#          # no registry reachable, bay-pause:dev (made by `make images`)
#          # does the same job.
#          infra_image = "bay-pause:dev"
#        }
#      }
#
#      sudo nomad agent -dev -config nomad-agent.hcl
#
# 3. From the repository root:
#
#      make build && bin/bay serve --config examples/nomad-docker.hcl
#
# Images tagged :dev are never pulled by Nomad when present; on a cluster,
# push the images to a registry the clients reach and name them here.

data_dir  = "./.bay-nomad-docker"
bind_addr = "127.0.0.1"
port      = 8114
log_level = "info"

instance_id = "bay-nomad-docker"

allocator = "nomad"

auth {
  # Development only: no API key needed, the owner comes from X-Owner.
  allow_anonymous = true
}

# Paths inside the images (the gateway passes them to the tasks).
runtimes {
  python        = "/usr/bin/python3"
  agent_browser = "/usr/local/bin/agent-browser"
}

nomad {
  address     = "http://127.0.0.1:4646"
  datacenters = ["*"]

  # Containers that name no driver run as docker tasks.
  default_driver = "docker"

  discovery = "nomad"

  volume {
    plugin = "mkdir"
  }

  # Register → every container answering /health (a first start of Gull's
  # image takes a few seconds).
  start_timeout = "120s"

  # SIGTERM → SIGKILL: Gull saves its browser profile into the cargo on
  # SIGTERM.
  kill_timeout = "10s"
}

# The default profiles, with the images.
profile "python-default" {
  description = "Python, shell and filesystem in one Ship container"

  container "ship" {
    runtime_type = "ship"
    image        = "bay-ship:dev"
  }
}

profile "browser-python" {
  description = "Python, shell and filesystem (Ship) plus a browser (Gull) on one workspace"

  container "ship" {
    runtime_type = "ship"
    primary_for  = ["filesystem"]
    image        = "bay-ship:dev"
  }

  container "gull" {
    runtime_type = "gull"
    image        = "bay-gull:dev"
  }
}
