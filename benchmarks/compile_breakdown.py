"""Where a first run's compile time goes: every function numba compiles for one simulation in
an empty kernel cache, with its specializations and CPU time.

    python benchmarks/compile_breakdown.py [MODEL] [--preset P] [--timing-only] [--top N]

Runs the model through a `Session` in this process with a fresh NUMBA_CACHE_DIR and prints,
per compiled function, how many type specializations were compiled and the CPU seconds of
its compiles, including what it compiled on the way (callees) and excluding it; then the
totals, the CPU time numba spent holding LLVM, and the cache files written. The API's helper
process for the integer kernels (sim/precompile.py) runs only in the API's and CLI's runs:
here everything compiles in this process, so the figures are the whole compile work of a
first run (which the API shares out over two processes).
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=str(ROOT / "models" / "kws_dscnn.onnx"))
    parser.add_argument("--preset", default="ndp120")
    parser.add_argument("--timing-only", action="store_true")
    parser.add_argument("--top", type=int, default=25, help="rows to print")
    args = parser.parse_args(argv)
    cache = tempfile.mkdtemp(prefix="ndpsim-compile-")
    os.environ["NUMBA_CACHE_DIR"] = cache  # before numba is imported
    from numba.core import event

    stack: list[list[float]] = []
    incl: collections.Counter = collections.Counter()
    excl: collections.Counter = collections.Counter()
    count: collections.Counter = collections.Counter()
    llvm = [0.0]

    class Compiles(event.Listener):
        def on_start(self, ev):
            stack.append([time.process_time(), 0.0])

        def on_end(self, ev):
            t0, inner = stack.pop()
            dt = time.process_time() - t0
            if stack:
                stack[-1][1] += dt
            f = ev.data["dispatcher"].py_func
            name = f"{f.__module__.removeprefix('ndpsim.')}.{f.__name__}"
            incl[name] += dt
            excl[name] += dt - inner
            count[name] += 1

    held: list[float] = []

    class Llvm(event.Listener):  # the lock may be taken again while held: outermost only
        def on_start(self, ev):
            held.append(time.process_time())

        def on_end(self, ev):
            t0 = held.pop()
            if not held:
                llvm[0] += time.process_time() - t0

    event.register("numba:compile", Compiles())
    event.register("numba:llvm_lock", Llvm())
    from ndpsim.config import load_preset
    from ndpsim.options import SimOptions
    from ndpsim.session import Session

    t0 = time.perf_counter()
    opts = SimOptions(timing_only=args.timing_only, compare_reference=False)
    Session(args.model).simulate(load_preset(args.preset), opts)
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    w = max(len(n) for n in incl)
    print(f"{args.model} on {args.preset}, {'timing-only' if args.timing_only else 'full'}; "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"{'function'.ljust(w)}  {'specs':>5}  {'incl s':>7}  {'excl s':>7}")
    for name, t in incl.most_common(args.top):
        print(f"{name.ljust(w)}  {count[name]:>5}  {t:>7.2f}  {excl[name]:>7.2f}")
    files = sum(1 for p in Path(cache).rglob("*") if p.is_file())
    print(f"compiled: {len(incl)} functions, {sum(count.values())} specializations, "
          f"{sum(excl.values()):.2f} s CPU ({llvm[0]:.2f} s of it in LLVM); process CPU "
          f"{ru.ru_utime + ru.ru_stime:.2f} s, wall {wall:.2f} s; {files} cache files")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
