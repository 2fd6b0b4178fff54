package main

import (
	"flag"
	"fmt"
	"io"
)

// configValidate loads a config file the way `bay serve` would (file, then
// environment) and reports every problem with its position, without
// starting anything. Exit status 1 when the file is invalid.
func configValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: bay config validate <file.hcl|file.json>")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	cfg, err := loadConfig(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "%s is invalid:\n%v\n", fs.Arg(0), err)
		return 1
	}
	fmt.Fprintf(stdout, "%s is valid: allocator %s, %d profile(s) %v\n", fs.Arg(0), cfg.Allocator, cfg.Profiles.Len(), cfg.Profiles.IDs())
	return 0
}
