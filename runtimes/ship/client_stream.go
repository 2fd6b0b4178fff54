package ship

import (
	"context"

	"github.com/bay-sandbox/bay/runtimes/wire"
)

// PythonExecStream runs a cell like PythonExec, handing its output to
// onOutput as the interpreter writes it. Cancelling ctx interrupts the cell.
func (c *Client) PythonExecStream(ctx context.Context, req PythonExecRequest, onOutput func(wire.OutputChunk)) (PythonExecResponse, error) {
	var r PythonExecResponse
	return r, wire.DoEventStream(ctx, c.hc, c.base+"/ipython/exec", req, onOutput, &r)
}

// ShellExecStream runs a foreground command like ShellExec, handing its
// stdout and stderr to onOutput as written. Cancelling ctx kills the command.
func (c *Client) ShellExecStream(ctx context.Context, req ShellExecRequest, onOutput func(wire.OutputChunk)) (ShellExecResponse, error) {
	var r ShellExecResponse
	return r, wire.DoEventStream(ctx, c.hc, c.base+"/shell/exec", req, onOutput, &r)
}
