package command

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bay-sandbox/bay/client"
)

func browserCmd(ctx context.Context, m *Meta, args []string) int {
	const synopsis = "bay browser [flags] <id> CMD...   (an agent-browser command, e.g. open https://example.org)"
	fs := m.flags("browser")
	timeout := fs.Int("timeout", 0, "seconds the command may run (default 30)")
	if code, ok := m.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() < 2 {
		return m.usage(fs, synopsis, "expected a sandbox id and a command")
	}
	c, err := m.Client()
	if err != nil {
		return m.fail(err)
	}
	res, err := c.Browser(ctx, fs.Arg(0), &client.BrowserRequest{Cmd: shellQuote(fs.Args()[1:]), Timeout: *timeout})
	if err != nil {
		return m.fail(err)
	}
	if m.json {
		m.printJSON(res)
	} else {
		io.WriteString(m.Stdout, res.Output)
		if !res.Success && res.Error != nil {
			fmt.Fprintln(m.Stderr, strings.TrimRight(*res.Error, "\n"))
		}
	}
	if res.ExitCode < 0 {
		return ExitNoStatus
	}
	return res.ExitCode & 0xff
}

func cargoCmd(ctx context.Context, m *Meta, args []string) int {
	return subcommand(ctx, m, "cargo", args, map[string]func(context.Context, *Meta, []string) int{
		"create": cargoCreate,
		"list":   cargoList,
		"status": cargoStatus,
		"delete": cargoDelete,
	})
}

func cargoCreate(ctx context.Context, m *Meta, args []string) int {
	fs := m.flags("cargo create")
	size := fs.Int("size", 0, "size limit in MB (default: the gateway's, 1024)")
	if code, ok := m.parse(fs, args); !ok {
		return code
	}
	c, err := m.Client()
	if err != nil {
		return m.fail(err)
	}
	cg, err := c.CreateCargo(ctx, *size)
	if err != nil {
		return m.fail(err)
	}
	if m.json {
		return m.printJSON(cg)
	}
	fmt.Fprintln(m.Stdout, cg.ID)
	return ExitOK
}

func cargoList(ctx context.Context, m *Meta, args []string) int {
	fs := m.flags("cargo list")
	managed := fs.Bool("managed", false, "list the cargos managed by sandboxes instead of external ones")
	if code, ok := m.parse(fs, args); !ok {
		return code
	}
	c, err := m.Client()
	if err != nil {
		return m.fail(err)
	}
	all, err := listAll(func(o *client.ListOptions) ([]client.Cargo, *string, error) {
		page, err := c.ListCargos(ctx, *managed, o)
		if err != nil {
			return nil, nil, err
		}
		return page.Items, page.NextCursor, nil
	})
	if err != nil {
		return m.fail(err)
	}
	if m.json {
		return m.printJSON(all)
	}
	if len(all) == 0 {
		fmt.Fprintln(m.Stdout, "No cargos")
		return ExitOK
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tManaged by\tBackend\tSize (MB)\tLast accessed")
	for _, cg := range all {
		by := "-"
		if cg.ManagedBySandboxID != nil {
			by = *cg.ManagedBySandboxID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", cg.ID, by, cg.Backend, cg.SizeLimitMB, cg.LastAccessedAt.Local().Format(time.DateTime))
	}
	tw.Flush()
	return ExitOK
}

func cargoStatus(ctx context.Context, m *Meta, args []string) int {
	id, code, ok := m.oneID("cargo status", args)
	if !ok {
		return code
	}
	c, err := m.Client()
	if err != nil {
		return m.fail(err)
	}
	cg, err := c.GetCargo(ctx, id)
	if err != nil {
		return m.fail(err)
	}
	if m.json {
		return m.printJSON(cg)
	}
	by := "-"
	if cg.ManagedBySandboxID != nil {
		by = *cg.ManagedBySandboxID
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "ID\t= %s\nManaged\t= %v\nManaged by\t= %s\nBackend\t= %s\nSize limit\t= %d MB\nCreated\t= %s\nLast accessed\t= %s\n",
		cg.ID, cg.Managed, by, cg.Backend, cg.SizeLimitMB, cg.CreatedAt.Local().Format(time.RFC3339), cg.LastAccessedAt.Local().Format(time.RFC3339))
	tw.Flush()
	return ExitOK
}

func cargoDelete(ctx context.Context, m *Meta, args []string) int {
	id, code, ok := m.oneID("cargo delete", args)
	if !ok {
		return code
	}
	c, err := m.Client()
	if err != nil {
		return m.fail(err)
	}
	if err := c.DeleteCargo(ctx, id); err != nil {
		return m.fail(err)
	}
	if !m.json {
		fmt.Fprintf(m.Stdout, "Cargo %s deleted\n", id)
		return ExitOK
	}
	return m.printJSON(map[string]string{"id": id, "status": "deleted"})
}

func historyCmd(ctx context.Context, m *Meta, args []string) int {
	fs := m.flags("history")
	typ := fs.String("type", "", "only this exec type (python, shell, browser, browser_batch)")
	limit := fs.Int("limit", 20, "entries to show (1..500)")
	failed := fs.Bool("success-only", false, "only successful executions")
	if code, ok := m.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return m.usage(fs, "bay history [flags] <id>", "expected one sandbox id")
	}
	c, err := m.Client()
	if err != nil {
		return m.fail(err)
	}
	l, err := c.History(ctx, fs.Arg(0), &client.HistoryOptions{ExecType: *typ, Limit: *limit, SuccessOnly: *failed})
	if err != nil {
		return m.fail(err)
	}
	if m.json {
		return m.printJSON(l)
	}
	if len(l.Entries) == 0 {
		fmt.Fprintln(m.Stdout, "No executions")
		return ExitOK
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tType\tSuccess\tTime (ms)\tCreated\tCode")
	for _, e := range l.Entries {
		code := strings.ReplaceAll(e.Code, "\n", "⏎")
		if len([]rune(code)) > 50 {
			code = string([]rune(code)[:49]) + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%s\t%s\n", e.ID, e.ExecType, e.Success, e.ExecutionTimeMS, e.CreatedAt.Local().Format(time.DateTime), code)
	}
	tw.Flush()
	if l.Total > len(l.Entries) {
		fmt.Fprintf(m.Stdout, "(%d of %d shown)\n", len(l.Entries), l.Total)
	}
	return ExitOK
}

func profilesCmd(ctx context.Context, m *Meta, args []string) int {
	fs := m.flags("profiles")
	if code, ok := m.parse(fs, args); !ok {
		return code
	}
	c, err := m.Client()
	if err != nil {
		return m.fail(err)
	}
	ps, err := c.Profiles(ctx, true)
	if err != nil {
		return m.fail(err)
	}
	if m.json {
		return m.printJSON(ps)
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCapabilities\tContainers\tIdle timeout")
	for _, p := range ps {
		names := make([]string, len(p.Containers))
		for i, ct := range p.Containers {
			names[i] = ct.Name + "(" + ct.RuntimeType + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%ds\n", p.ID, strings.Join(p.Capabilities, ","), strings.Join(names, ","), p.IdleTimeout)
	}
	tw.Flush()
	return ExitOK
}
