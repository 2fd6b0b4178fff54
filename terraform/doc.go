// Package terraform holds Bay's deployment assets: the bay-gateway Terraform
// module (modules/bay-gateway), an example using it against a dev agent
// (examples/dev), and tests for them and for ../deploy. It has no Go API;
// the tests parse every .tf and .hcl file, check every reference, render the
// module's templates as Terraform's templatefile would, load the rendered
// gateway configuration with the real config package, and validate the
// rendered jobspecs with nomad (and format-check with terraform) when those
// binaries are on PATH.
package terraform
