package command

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bay-sandbox/bay/client"
)

func sandboxCmd(ctx context.Context, m *Meta, args []string) int {
	return subcommand(ctx, m, "sandbox", args, map[string]func(context.Context, *Meta, []string) int{
		"create": sandboxCreate,
		"list":   sandboxList,
		"status": sandboxStatus,
		"stop":   sandboxStop,
		"delete": sandboxDelete,
	})
}

func sandboxCreate(ctx context.Context, m *Meta, args []string) int {
	fs := m.flags("sandbox create")
	profile := fs.String("profile", "", "profile id (default: the gateway's default profile)")
	cargo := fs.String("cargo", "", "an external cargo to mount (default: a new managed one)")
	ttl := fs.Int64("ttl", 0, "seconds until the sandbox expires (0: never)")
	detach := fs.Bool("detach", false, "return at once instead of waiting until the sandbox is ready")
	idem := fs.String("idempotency-key", "", "Idempotency-Key (default: generated)")
	if code, ok := m.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		return m.usage(fs, "bay sandbox create [flags]", "unexpected arguments %q", fs.Args())
	}
	c, err := m.Client()
	if err != nil {
		return m.fail(err)
	}
	var opts []client.RequestOption
	if *idem != "" {
		opts = append(opts, client.WithIdempotencyKey(*idem))
	}
	sb, err := c.CreateSandbox(ctx, &client.CreateSandboxRequest{Profile: *profile, CargoID: *cargo, TTL: *ttl}, opts...)
	if err != nil {
		return m.fail(err)
	}
	if !*detach {
		m.progress("==> Sandbox %s created (profile %s); waiting for compute", sb.ID, sb.Profile)
		if sb, err = m.waitReady(ctx, c, sb.ID); err != nil {
			return m.fail(err)
		}
	}
	if m.json {
		return m.printJSON(sb)
	}
	fmt.Fprintln(m.Stdout, sb.ID)
	return ExitOK
}

// waitReady waits for the sandbox's session, showing each start phase on
// the terminal.
func (m *Meta) waitReady(ctx context.Context, c *client.Client, id string) (*client.Sandbox, error) {
	start := time.Now()
	sb, err := c.WaitReady(ctx, id, 100*time.Millisecond, func(sb *client.Sandbox) {
		m.progress("    %6.1fs  %s", time.Since(start).Seconds(), describePhase(sb))
	})
	if err == nil {
		m.progress("==> Sandbox %s ready after %.1fs", id, time.Since(start).Seconds())
	}
	return sb, err
}

func sandboxList(ctx context.Context, m *Meta, args []string) int {
	fs := m.flags("sandbox list")
	status := fs.String("status", "", "only sandboxes in this status")
	if code, ok := m.parse(fs, args); !ok {
		return code
	}
	c, err := m.Client()
	if err != nil {
		return m.fail(err)
	}
	all, err := listAll(func(o *client.ListOptions) ([]client.Sandbox, *string, error) {
		page, err := c.ListSandboxes(ctx, *status, o)
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
		fmt.Fprintln(m.Stdout, "No sandboxes")
		return ExitOK
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tStatus\tProfile\tCargo\tCreated\tExpires")
	for _, sb := range all {
		exp := "never"
		if sb.ExpiresAt != nil {
			exp = sb.ExpiresAt.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", sb.ID, sb.Status, sb.Profile, sb.CargoID, sb.CreatedAt.Local().Format(time.DateTime), exp)
	}
	tw.Flush()
	return ExitOK
}

// oneID parses flags and exactly one sandbox id.
func (m *Meta) oneID(name string, args []string) (string, int, bool) {
	fs := m.flags(name)
	if code, ok := m.parse(fs, args); !ok {
		return "", code, false
	}
	if fs.NArg() != 1 {
		return "", m.usage(fs, "bay "+name+" [flags] <id>", "expected one id"), false
	}
	return fs.Arg(0), 0, true
}

func sandboxStatus(ctx context.Context, m *Meta, args []string) int {
	id, code, ok := m.oneID("sandbox status", args)
	if !ok {
		return code
	}
	c, err := m.Client()
	if err != nil {
		return m.fail(err)
	}
	sb, err := c.GetSandbox(ctx, id)
	if err != nil {
		return m.fail(err)
	}
	if m.json {
		return m.printJSON(sb)
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "ID\t= %s\n", sb.ID)
	fmt.Fprintf(tw, "Status\t= %s\n", sb.Status)
	if sb.Phase != nil {
		fmt.Fprintf(tw, "Phase\t= %s\n", *sb.Phase)
	}
	fmt.Fprintf(tw, "Profile\t= %s\n", sb.Profile)
	fmt.Fprintf(tw, "Cargo\t= %s\n", sb.CargoID)
	fmt.Fprintf(tw, "Capabilities\t= %s\n", strings.Join(sb.Capabilities, ", "))
	fmt.Fprintf(tw, "Created\t= %s\n", sb.CreatedAt.Local().Format(time.RFC3339))
	fmt.Fprintf(tw, "Expires\t= %s\n", timeOr(sb.ExpiresAt, "never"))
	fmt.Fprintf(tw, "Idle expires\t= %s\n", timeOr(sb.IdleExpiresAt, "-"))
	tw.Flush()
	if len(sb.Containers) > 0 {
		fmt.Fprintln(m.Stdout, "\nContainers")
		tw = tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "Name\tRuntime\tStatus\tHealthy\tVersion\tCapabilities")
		for _, ct := range sb.Containers {
			healthy := "-"
			if ct.Healthy != nil {
				healthy = fmt.Sprint(*ct.Healthy)
			}
			version := "-"
			if ct.Version != nil {
				version = *ct.Version
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ct.Name, ct.RuntimeType, ct.Status, healthy, version, strings.Join(ct.Capabilities, ","))
		}
		tw.Flush()
	}
	return ExitOK
}

func timeOr(t *time.Time, def string) string {
	if t == nil {
		return def
	}
	return t.Local().Format(time.RFC3339)
}

func sandboxStop(ctx context.Context, m *Meta, args []string) int {
	id, code, ok := m.oneID("sandbox stop", args)
	if !ok {
		return code
	}
	c, err := m.Client()
	if err != nil {
		return m.fail(err)
	}
	if err := c.StopSandbox(ctx, id); err != nil {
		return m.fail(err)
	}
	if m.json {
		return m.printJSON(map[string]string{"id": id, "status": "stopped"})
	}
	fmt.Fprintf(m.Stdout, "Sandbox %s stopped (its cargo is kept)\n", id)
	return ExitOK
}

func sandboxDelete(ctx context.Context, m *Meta, args []string) int {
	id, code, ok := m.oneID("sandbox delete", args)
	if !ok {
		return code
	}
	c, err := m.Client()
	if err != nil {
		return m.fail(err)
	}
	if err := c.DeleteSandbox(ctx, id); err != nil {
		return m.fail(err)
	}
	if m.json {
		return m.printJSON(map[string]string{"id": id, "status": "deleted"})
	}
	fmt.Fprintf(m.Stdout, "Sandbox %s deleted\n", id)
	return ExitOK
}

// listAll follows a list's cursors to the end. It returns an empty, not nil,
// slice for no items so that -json prints [] rather than null.
func listAll[T any](page func(*client.ListOptions) ([]T, *string, error)) ([]T, error) {
	all := []T{}
	opts := &client.ListOptions{Limit: 200}
	for {
		items, next, err := page(opts)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if next == nil {
			return all, nil
		}
		opts.Cursor = *next
	}
}
