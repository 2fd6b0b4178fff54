# This file is maintained automatically by "tofu init".
# Manual edits may be lost in future updates.
#
# The versions are pinned; no checksums are recorded yet (the official
# release checksums could not be obtained where this was written): the
# first "tofu init" adds the registry's, to be reviewed and committed, and
# "tofu init -lockfile=readonly" checks the pins without them.

provider "registry.opentofu.org/hashicorp/nomad" {
  version     = "2.6.1"
  constraints = ">= 2.6.1, 2.6.1, < 3.0.0"
}

provider "registry.opentofu.org/hashicorp/time" {
  version     = "0.14.0"
  constraints = ">= 0.9.0, 0.14.0, < 1.0.0"
}
