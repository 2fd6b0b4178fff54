terraform {
  # Write-only arguments (items_wo) need Terraform 1.11 or OpenTofu 1.11.
  required_version = ">= 1.11.0"

  required_providers {
    nomad = {
      source = "hashicorp/nomad"
      # nomad_variable.items_wo first shipped in 2.6.0; 2.6.1 fixes the
      # muxed provider's address schema. The examples pin exact versions
      # in their lock files.
      version = ">= 2.6.1, < 3.0.0"
    }
    time = {
      source  = "hashicorp/time"
      version = ">= 0.9.0, < 1.0.0"
    }
  }
}
