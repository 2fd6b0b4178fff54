# Bay on a local Nomad dev agent with Consul service discovery.
#
# As examples/nomad-dev.hcl (the default profiles as raw_exec tasks in a
# bridge-network group, host-volume cargos), but each container's service is
# registered by Nomad in Consul, and the gateway resolves endpoints from
# Consul's health API (passing instances only, kept fresh by blocking
# queries).
#
# 1. Start Consul (make consul builds v1.16.3, the last MPL-2.0 release, into
#    bin/consul; any Consul agent on 127.0.0.1:8500 will do):
#
#      bin/consul agent -dev
#
# 2. Start a dev Nomad agent as root (bridge networking needs it) that
#    registers services in that Consul, e.g. with this agent file:
#
#      # nomad-agent.hcl
#      client {
#        cni_path = "/usr/lib/cni"   # Debian/Ubuntu: containernetworking-plugins
#      }
#      plugin "raw_exec" {
#        config {
#          enabled = true
#        }
#      }
#      consul {
#        address = "127.0.0.1:8500"
#      }
#
#      sudo nomad agent -dev -config nomad-agent.hcl
#
# 3. From the repository root:
#
#      make build && bin/bay serve --config examples/nomad-consul.hcl

data_dir  = "./.bay-nomad-consul"
bind_addr = "127.0.0.1"
port      = 8114
log_level = "info"

instance_id = "bay-nomad-consul"

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
  address     = "http://127.0.0.1:4646"
  datacenters = ["*"]

  default_driver = "raw_exec"

  # Nomad registers every container's service in Consul (provider
  # "consul"); the gateway reads Consul's health API.
  discovery = "consul"

  volume {
    plugin = "mkdir"
  }

  start_timeout = "60s"
  kill_timeout  = "10s"
}

# Also from CONSUL_HTTP_ADDR / CONSUL_HTTP_TOKEN when left out here.
consul {
  address = "http://127.0.0.1:8500"
}
