// Package docs holds Bay's API contract: openapi.json (OpenAPI 3.1), which
// the gateway serves at GET /openapi.json, and the human reference beside it.
package docs

import _ "embed"

//go:embed openapi.json
var openapi string

// OpenAPI returns the OpenAPI 3.1 document of the gateway API.
func OpenAPI() string { return openapi }
