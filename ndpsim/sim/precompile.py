"""The first full run of a float model compiles two datapaths' kernels: the float one (the
calibration runs) and then the integer one, after the weight quantizer of the integer
parameters (quant/bind.py). When this process starts compiling one of its kernels, a helper
process compiles the weight quantizer and then the integer datapath's kernels of the same
opcodes into the same numba cache meanwhile, so on two cores the datapaths compile side by
side, and the binding and the integer run load them from the cache. Nothing starts on a
warm run (no compile event), nor outside the API's and CLI's runs (sim/notice.py's block:
sweep workers warm up their own).
numba writes cache entries atomically; if the helper fails, this process compiles them.

    python -m ndpsim.sim.precompile FLOAT_MODE OPCODE...    (the helper)
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from ndpsim.sim import notice

HELPER_TIMEOUT_S = 600  # then this process compiles the kernels itself


@contextmanager
def integer_kernels_alongside(opcodes) -> Iterator[None]:
    """Within this block, the first compile of an ndpsim kernel starts the helper for the
    integer kernels of `opcodes`; leaving it waits for the helper to finish."""
    opcodes = sorted({int(op) for op in opcodes})
    if not opcodes or not notice.active():
        yield
        return
    from numba.core import event

    helper: list[subprocess.Popen] = []
    cmd = [sys.executable, "-m", "ndpsim.sim.precompile", "0", *map(str, opcodes)]

    class Listener(event.Listener):
        def on_start(self, ev):
            if not helper and ev.data["dispatcher"].py_func.__module__.startswith("ndpsim."):
                helper.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                               stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL))  # fmt: skip

        def on_end(self, ev):
            pass

    try:
        with event.install_listener("numba:compile", Listener()):
            yield
    except BaseException:
        for proc in helper:  # the run failed or was interrupted: its kernels are not needed
            proc.kill()
            proc.wait()
        raise
    for proc in helper:
        try:
            proc.wait(timeout=HELPER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str]) -> None:
    """The helper: load or compile the integer weight quantizer (float32 weights, the common
    case) and the kernels of the opcodes named, for one datapath."""
    from ndpsim.sim.numba_setup import numba_target_without_scipy

    numba_target_without_scipy()
    import numpy as np

    from ndpsim.quant.bind import _quantize_weights
    from ndpsim.sim.core import compile_kernels

    if argv[0] == "0":  # what bind() quantizes a conv's weights with, on tiny arrays
        weights = np.ones((1, 1), np.float32)
        weights.flags.writeable = False  # the graph's constants are read-only
        _quantize_weights(weights, 8, True, np.zeros(1, np.int32))

    compile_kernels([int(op) for op in argv[1:]], float_mode=argv[0] == "1")


if __name__ == "__main__":
    main(sys.argv[1:])
