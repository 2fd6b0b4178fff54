package deps
import (
_ "github.com/gofiber/fiber/v2"
_ "github.com/hashicorp/nomad/api"
_ "github.com/hashicorp/consul/api"
_ "github.com/hashicorp/go-hclog"
_ "github.com/hashicorp/hcl/v2"
_ "github.com/hashicorp/hcl/v2/gohcl"
_ "github.com/hashicorp/hcl/v2/hclsimple"
_ "modernc.org/sqlite"
_ "github.com/google/shlex"
)
