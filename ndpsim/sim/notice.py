"""The first-run notice: while numba compiles simulator kernels (the first run of a model's
opcodes in an empty kernel cache takes seconds; later runs load them from the cache), one
line on stderr says so and grows with the name of each kernel as it is compiled:

    ndpsim: compiling simulator kernels (first run only; cached for later runs): schedule
    mvm/float requant/float pool/float softmax/float ... done in 11.9 s

Nothing is printed when every kernel comes from the cache, and nothing goes to stdout.
"""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

_ACTIVE: list[bool] = []  # one listener at a time (the CLI and the API both ask for it)


def active() -> bool:
    """Whether a compile_notice block is open (an API or CLI run)."""
    return bool(_ACTIVE)


def _label(dispatcher, args) -> str:
    """The kernel's name, with the datapath of its arena (`mem`) when it has one."""
    func = dispatcher.py_func
    name = func.__name__.removeprefix("run_").lstrip("_")
    params = list(inspect.signature(func).parameters)
    if "mem" in params and params.index("mem") < len(args):
        dtype = str(getattr(args[params.index("mem")], "dtype", ""))
        name += {"float32": "/float", "int32": "/int"}.get(dtype, "")
    return name


class _Notice:
    """Writes the notice for numba's compile events of top-level ndpsim kernels."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.depth = 0
        self.t0: float | None = None

    def on_start(self, event) -> None:
        if self.depth == 0 and _ours(event) and self.t0 is None:
            self.t0 = time.perf_counter()
            self._write("ndpsim: compiling simulator kernels (first run only; cached for later "
                        "runs):")  # fmt: skip
        self.depth += 1

    def on_end(self, event) -> None:
        self.depth -= 1
        if self.depth == 0 and _ours(event) and self.t0 is not None:
            self._write(" " + _label(event.data["dispatcher"], event.data["args"]))

    def finish(self) -> None:
        if self.t0 is not None:
            self._write(f" ... done in {time.perf_counter() - self.t0:.1f} s\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _ours(event) -> bool:
    return event.data["dispatcher"].py_func.__module__.startswith("ndpsim.")


@contextmanager
def compile_notice(stream: TextIO | None = None) -> Iterator[None]:
    """Within this block, kernel compilation is announced on `stream` (default stderr)."""
    if _ACTIVE:
        yield
        return
    from numba.core import event

    notice = _Notice(stream or sys.stderr)

    class Listener(event.Listener):
        def on_start(self, ev):
            notice.on_start(ev)

        def on_end(self, ev):
            notice.on_end(ev)

    _ACTIVE.append(True)
    try:
        with event.install_listener("numba:compile", Listener()):
            yield
    finally:
        _ACTIVE.pop()
        notice.finish()
