terraform {
  # optional() object attributes with defaults need 1.3.
  required_version = ">= 1.3.0"

  required_providers {
    nomad = {
      source = "hashicorp/nomad"
      # nomad_dynamic_host_volume first shipped in 2.5.0.
      version = ">= 2.5.0, < 3.0.0"
    }
  }
}
