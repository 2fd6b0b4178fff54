package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mattn/go-isatty"

	"github.com/bay-sandbox/bay/command"
)

// runClient runs a client command (package command), if args names one.
func runClient(args []string, stdout, stderr io.Writer) (int, bool) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := &command.Meta{Stdin: os.Stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv,
		Interactive: stderr == os.Stderr && isatty.IsTerminal(os.Stderr.Fd())}
	return command.Run(ctx, m, args)
}

func clientHelp() string {
	var b strings.Builder
	command.Help(&b)
	return b.String()
}
