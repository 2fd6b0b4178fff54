package command

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Run runs the client command named by args[0]; ok is false when args[0]
// is not one of them.
func Run(ctx context.Context, m *Meta, args []string) (code int, ok bool) {
	if len(args) == 0 {
		return ExitUsage, false
	}
	cmd, found := commands()[args[0]]
	if !found {
		return ExitUsage, false
	}
	return cmd.run(ctx, m, args[1:]), true
}

type command struct {
	synopsis string
	run      func(ctx context.Context, m *Meta, args []string) int
}

func commands() map[string]command {
	return map[string]command{
		"sandbox":  {"create, list, inspect, stop and delete sandboxes", sandboxCmd},
		"exec":     {"run Python or a shell command in a sandbox", execCmd},
		"fs":       {"list, read, upload and download workspace files", fsCmd},
		"browser":  {"run a browser command in a sandbox", browserCmd},
		"cargo":    {"create, list, inspect and delete cargos (workspaces)", cargoCmd},
		"history":  {"list a sandbox's executions", historyCmd},
		"profiles": {"list the gateway's profiles", profilesCmd},
	}
}

// Help prints the client commands for the binary's usage text.
func Help(w io.Writer) {
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-17s %s\n", n, cmds[n].synopsis)
	}
}

// subcommand dispatches "<group> <sub> ...".
func subcommand(ctx context.Context, m *Meta, group string, args []string, subs map[string]func(context.Context, *Meta, []string) int) int {
	names := make([]string, 0, len(subs))
	for n := range subs {
		names = append(names, n)
	}
	sort.Strings(names)
	synopsis := fmt.Sprintf("bay %s <%s> [flags] [args]", group, strings.Join(names, "|"))
	if len(args) == 0 {
		return m.usage(nil, synopsis, "")
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		fmt.Fprintf(m.Stdout, "Usage: %s\n", synopsis)
		return ExitOK
	}
	run, ok := subs[args[0]]
	if !ok {
		return m.usage(nil, synopsis, "unknown subcommand %q", args[0])
	}
	return run(ctx, m, args[1:])
}
