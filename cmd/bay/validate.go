package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// configValidate loads config files the way `bay serve` would (files or
// directories merged in order, then environment) and reports every problem
// with its position, without starting anything. Exit status 1 when invalid.
func configValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: bay config validate <file.hcl|file.json|dir>...")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	name := strings.Join(fs.Args(), " + ")
	cfg, err := loadConfig(fs.Args()...)
	if err != nil {
		fmt.Fprintf(stderr, "%s is invalid:\n%v\n", name, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s is valid: allocator %s, %d profile(s) %v\n", name, cfg.Allocator, cfg.Profiles.Len(), cfg.Profiles.IDs())
	return 0
}
