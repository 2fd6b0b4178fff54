package command

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/bay-sandbox/bay/client"
)

func fsCmd(ctx context.Context, m *Meta, args []string) int {
	return subcommand(ctx, m, "fs", args, map[string]func(context.Context, *Meta, []string) int{
		"ls":  fsList,
		"cat": fsCat,
		"put": fsPut,
		"get": fsGet,
		"rm":  fsRemove,
	})
}

// fsArgs parses flags and n positional arguments.
func (m *Meta) fsArgs(name, synopsis string, args []string, min, max int) ([]string, int, bool) {
	fs := m.flags(name)
	if code, ok := m.parse(fs, args); !ok {
		return nil, code, false
	}
	if fs.NArg() < min || fs.NArg() > max {
		return nil, m.usage(fs, synopsis, "wrong number of arguments"), false
	}
	return fs.Args(), 0, true
}

func fsList(ctx context.Context, m *Meta, args []string) int {
	a, code, ok := m.fsArgs("fs ls", "bay fs ls [flags] <id> [PATH]", args, 1, 2)
	if !ok {
		return code
	}
	p := "."
	if len(a) == 2 {
		p = a[1]
	}
	c, err := m.Client()
	if err != nil {
		return m.fail(err)
	}
	entries, err := c.ListFiles(ctx, a[0], p)
	if err != nil {
		return m.fail(err)
	}
	if m.json {
		if entries == nil {
			entries = []client.DirEntry{}
		}
		return m.printJSON(entries)
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	for _, e := range entries {
		size := "-"
		if e.Size != nil && !e.IsDir {
			size = fmt.Sprint(*e.Size)
		}
		name := e.Name
		if e.IsDir {
			name += "/"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", size, e.ModifiedTime, name)
	}
	tw.Flush()
	return ExitOK
}

func fsCat(ctx context.Context, m *Meta, args []string) int {
	a, code, ok := m.fsArgs("fs cat", "bay fs cat [flags] <id> PATH", args, 2, 2)
	if !ok {
		return code
	}
	return m.download(ctx, a[0], a[1], "-")
}

func fsGet(ctx context.Context, m *Meta, args []string) int {
	a, code, ok := m.fsArgs("fs get", "bay fs get [flags] <id> REMOTE LOCAL   (LOCAL - is stdout)", args, 3, 3)
	if !ok {
		return code
	}
	return m.download(ctx, a[0], a[1], a[2])
}

// download streams a workspace file to local ("-": stdout). A file is
// written beside its destination and renamed, so a failed download never
// leaves a truncated file behind.
func (m *Meta) download(ctx context.Context, id, remote, local string) int {
	c, err := m.Client()
	if err != nil {
		return m.fail(err)
	}
	body, err := c.Download(ctx, id, remote)
	if err != nil {
		return m.fail(err)
	}
	defer body.Close()
	if local == "-" {
		if _, err := io.Copy(m.Stdout, body); err != nil {
			return m.fail(fmt.Errorf("download %s: %w", remote, err))
		}
		return ExitOK
	}
	tmp, err := os.CreateTemp(dirOf(local), ".bay-download-*")
	if err != nil {
		return m.fail(err)
	}
	n, err := io.Copy(tmp, body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), local)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return m.fail(fmt.Errorf("download %s: %w", remote, err))
	}
	if m.json {
		return m.printJSON(map[string]any{"path": remote, "local": local, "size": n})
	}
	m.progress("==> Downloaded %s to %s (%d bytes)", remote, local, n)
	return ExitOK
}

func dirOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			if i == 0 {
				return "/"
			}
			return p[:i]
		}
	}
	return "."
}

func fsPut(ctx context.Context, m *Meta, args []string) int {
	a, code, ok := m.fsArgs("fs put", "bay fs put [flags] <id> LOCAL REMOTE   (LOCAL - is stdin)", args, 3, 3)
	if !ok {
		return code
	}
	var r io.Reader = m.Stdin
	if a[1] != "-" {
		f, err := os.Open(a[1])
		if err != nil {
			return m.fail(err)
		}
		defer f.Close()
		r = f
	}
	c, err := m.Client()
	if err != nil {
		return m.fail(err)
	}
	res, err := c.Upload(ctx, a[0], a[2], r)
	if err != nil {
		return m.fail(err)
	}
	if m.json {
		return m.printJSON(res)
	}
	m.progress("==> Uploaded %s to %s (%d bytes)", a[1], res.Path, res.Size)
	return ExitOK
}

func fsRemove(ctx context.Context, m *Meta, args []string) int {
	a, code, ok := m.fsArgs("fs rm", "bay fs rm [flags] <id> PATH", args, 2, 2)
	if !ok {
		return code
	}
	c, err := m.Client()
	if err != nil {
		return m.fail(err)
	}
	if err := c.DeleteFile(ctx, a[0], a[1]); err != nil {
		return m.fail(err)
	}
	return ExitOK
}
