// Command bench measures Bay's speed and memory goals on this machine. Every
// suite measures its baseline in the same run, so ratios compare like with
// like. Output: one "name: value unit" line per measurement.
//
//	go run ./bench [-only ship,gull,...] [-n 200]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// suite is one group of measurements.
type suite struct {
	name string
	run  func(ctx context.Context, r *Reporter) error
}

func main() {
	only := flag.String("only", "", "comma-separated suites to run (default all)")
	n := flag.Int("n", 200, "calls per latency measurement")
	flag.Parse()

	suites := []suite{
		// Each runtime/gateway area registers its suite here.
		{"local", benchLocal},
		{"store", benchStore},
		{"gateway", benchGateway},
		{"ship", benchShip},
		{"nomad", benchNomad},
		{"nomad-coldstart", benchNomadColdStart},
		{"nomad-docker", benchNomadDocker},
		{"lifecycle", benchLifecycle},
		{"pgstore", benchPGStore},
		{"gull", benchGull},
		{"stream", benchStream},
		{"limits", benchLimits},
		{"sandbox", benchSandbox},
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &Reporter{N: *n}
	failed := false
	for _, s := range suites {
		if *only != "" && !contains(strings.Split(*only, ","), s.name) {
			continue
		}
		fmt.Printf("# suite %s\n", s.name)
		if err := s.run(ctx, r); err != nil {
			fmt.Printf("# suite %s failed: %v\n", s.name, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}
