"""Bay Ship's Python driver: one persistent interpreter per Ship.

Protocol: requests arrive on fd 3, results leave on fd 4, each frame a 4-byte
big-endian length then UTF-8 JSON.  The code's stdout/stderr go to fds 1 and
2; after each cell the driver writes the request's end marker to fd 1 so Ship
knows where the cell's output ends.
"""
import ast
import base64
import io
import json
import linecache
import os
import platform
import re
import signal
import struct
import sys
import traceback
import warnings

REQ_FD, RESP_FD = 3, 4
os.set_inheritable(REQ_FD, False)
os.set_inheritable(RESP_FD, False)

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")

state = {"images": []}


def interruptible(on):
    # Ship interrupts a cell that ran past its timeout with SIGINT. Between
    # cells SIGINT is ignored, so one that arrives just as a cell finished can
    # hit neither the protocol code nor the next cell.
    signal.signal(signal.SIGINT, signal.default_int_handler if on else signal.SIG_IGN)


interruptible(False)


def read_exact(n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(REQ_FD, n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def recv():
    (n,) = struct.unpack(">I", read_exact(4))
    return json.loads(read_exact(n).decode("utf-8"))


def send(obj):
    data = json.dumps(obj).encode("utf-8")
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(RESP_FD, view):]


def b64(value):
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    return str(value).strip()


def emit(data):
    """Show a displayed value: PNGs become images, other values their text."""
    if not isinstance(data, dict):
        return
    png = data.get("image/png")
    if png:
        state["images"].append({"image/png": b64(png)})
        return
    text = data.get("text/plain")
    if text is not None:
        sys.stdout.write(str(text) + "\n")
        sys.stdout.flush()


def capture_figures():
    """Return every open matplotlib figure as a PNG and close it, the way
    IPython's inline backend does at the end of a cell."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    try:
        for num in plt.get_fignums():
            fig = plt.figure(num)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", bbox_inches="tight")
            state["images"].append({"image/png": b64(buf.getvalue())})
        plt.close("all")
    except Exception as exc:  # a broken figure must not break the driver
        sys.stderr.write("[ship] could not render figure: %r\n" % (exc,))


class IPythonEngine:
    name = "ipython"

    def __init__(self):
        from traitlets.config import Config
        from IPython.core.displayhook import DisplayHook
        from IPython.core.displaypub import DisplayPublisher
        from IPython.core.interactiveshell import InteractiveShell

        class Hook(DisplayHook):
            # No "Out[n]:" prompt: a cell's value is shown as its bare repr.
            def write_output_prompt(self):
                pass

            def write_format_data(self, format_dict, md_dict=None):
                emit(format_dict)

        class Publisher(DisplayPublisher):
            def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
                emit(data)

            def clear_output(self, wait=False):
                pass

        cfg = Config()
        cfg.HistoryManager.enabled = False
        cfg.InteractiveShell.colors = "NoColor"
        self.shell = InteractiveShell.instance(
            config=cfg, displayhook_class=Hook, display_pub_class=Publisher
        )
        self.error = None
        engine = self

        def showtraceback(etype, evalue, stb):
            engine.error = ANSI.sub("", engine.shell.InteractiveTB.stb2text(stb))

        self.shell._showtraceback = showtraceback

    def count(self):
        return max(self.shell.execution_count - 1, 0)

    def run(self, code):
        self.error = None
        res = self.shell.run_cell(code, store_history=True)
        err = self.error
        if not res.success and err is None:
            exc = res.error_in_exec or res.error_before_exec
            err = "".join(traceback.format_exception_only(type(exc), exc)) if exc else "execution failed"
        count = res.execution_count if res.execution_count is not None else self.count()
        return res.success and self.error is None, err, count


class PlainEngine:
    """Fallback when IPython cannot be imported: exec with the value of a
    final expression shown as its repr."""

    name = "plain"

    def __init__(self):
        import builtins

        self.ns = {"__name__": "__main__", "__builtins__": builtins}
        self.ns["display"] = self.display
        self.n = 0

    def display(self, *objs):
        for obj in objs:
            self.show(obj)

    def show(self, value):
        png = getattr(value, "_repr_png_", None)
        if callable(png):
            try:
                data = png()
                if data:
                    emit({"image/png": data})
                    return
            except Exception:
                pass
        emit({"text/plain": repr(value)})

    def count(self):
        return self.n

    def run(self, code):
        self.n += 1
        name = "<cell-%d>" % self.n
        linecache.cache[name] = (len(code), None, code.splitlines(True), name)
        try:
            tree = ast.parse(code, name, "exec")
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                last = ast.Expression(tree.body.pop().value)
            exec(compile(tree, name, "exec"), self.ns)
            if last is not None:
                value = eval(compile(last, name, "eval"), self.ns)
                if value is not None:
                    self.ns["_"] = value
                    self.show(value)
            return True, None, self.n
        except BaseException as exc:
            tb = exc.__traceback__
            if tb is not None and tb.tb_frame.f_code is PlainEngine.run.__code__:
                tb = tb.tb_next  # hide the driver's own frame
            text = "".join(traceback.format_exception(type(exc), exc, tb))
            return False, text, self.n


def make_engine():
    try:
        return IPythonEngine(), ""
    except Exception as exc:
        return PlainEngine(), "IPython unavailable (%s: %s); using plain exec" % (type(exc).__name__, exc)


def main():
    warnings.filterwarnings("ignore", message=".*non-interactive.*cannot be shown")
    engine, note = make_engine()
    send({"type": "ready", "engine": engine.name, "python_version": platform.python_version(),
          "pid": os.getpid(), "note": note})
    while True:
        try:
            req = recv()
        except EOFError:
            return
        if req.get("type") != "exec":
            send({"type": "error", "id": req.get("id"), "error": "unknown request type %r" % req.get("type")})
            continue
        state["images"] = []
        ok, err, count = False, None, engine.count()
        try:
            interruptible(True)
            ok, err, count = engine.run(req["code"])
            interruptible(False)
        except KeyboardInterrupt:
            interruptible(False)
            ok, err, count = False, "KeyboardInterrupt", engine.count()
        except BaseException as exc:  # the engine itself failed
            interruptible(False)
            ok, err = False, "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        capture_figures()
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
            except Exception:
                pass
        try:
            os.write(1, req["marker"].encode("utf-8"))
        except OSError:
            pass
        send({"type": "result", "id": req["id"], "success": bool(ok), "error": err,
              "execution_count": count, "images": state["images"]})


if __name__ == "__main__":
    main()
