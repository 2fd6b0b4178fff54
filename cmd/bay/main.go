// Command bay is the Bay gateway: `bay serve` runs it, `bay version` prints
// its version. It only wires packages together; the logic lives in them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/bay-sandbox/bay/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := serve(ctx, args[1:], stdout, stderr); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			fmt.Fprintf(stderr, "bay: %v\n", err)
			return 1
		}
		return 0
	case "config":
		if len(args) < 2 || args[1] != "validate" {
			fmt.Fprintln(stderr, "Usage: bay config validate <file|dir>...")
			return 2
		}
		return configValidate(args[2:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "bay %s\n", version.String())
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	if code, ok := runClient(args, stdout, stderr); ok {
		return code
	}
	fmt.Fprintf(stderr, "bay: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: bay <command> [flags]

Commands:
  serve             run the gateway (embedded local allocator unless Nomad is configured)
  config validate   check a config file and report every problem with its position
  version           print the version

Client commands (address from -address or BAY_ADDR, key from -api-key, BAY_API_KEY or the
credentials file bay serve writes; -json for JSON output):
`+clientHelp()+`
Run "bay serve -h" for the serve flags.
`)
}
