"""MVM kernel throughput: GMAC/s of the integer dot products, the float dot products and the
float k-order axpys on tile shapes (rows x pixels x columns) from ResNet-50 down to a
depthwise 3x3, so FLOAT_DOT_MIN_ROWS (kernels_mac.py) can be checked on this machine.

    python benchmarks/mac_kernels.py [--repeats N]

Each figure is the median over N timed calls of a compiled loop that runs one kernel
enough times to do ~2e8 MACs; compilation happens in a warm-up call first.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from numba import njit

from ndpsim.sim.kernels_mac import (
    FLOAT_DOT_MIN_ROWS,
    _mac_float_axpy,
    _mac_float_dot,
    _mac_int,
)

# (rows, pixels, columns): ResNet-50-sized tiles, then shorter ones, then a depthwise 3x3
SHAPES = [
    (256, 28, 64),
    (256, 32, 64),
    (147, 32, 64),
    (128, 28, 64),
    (64, 32, 64),
    (48, 32, 64),
    (32, 32, 64),
    (24, 32, 64),
    (16, 32, 64),
    (9, 32, 64),
]
TARGET_MACS = 2e8


@njit(cache=False)
def _loop_int(reps, w, kt, nc, x, n, acc):
    for _ in range(reps):
        _mac_int(w, 0, kt, nc, kt, x, n, acc, 0, n, -(2**31), 2**31 - 1, True)


@njit(cache=False)
def _loop_float_dot(reps, w, kt, nc, x, n, acc):
    for _ in range(reps):
        _mac_float_dot(w, 0, kt, nc, kt, x, n, acc, 0, n)


@njit(cache=False)
def _loop_float_axpy(reps, w, kt, nc, x, n, sblk, acc):
    for _ in range(reps):
        _mac_float_axpy(w, 0, kt, nc, kt, x, n, sblk, acc, 0, n)


def gmacs(run, macs: float, repeats: int) -> float:
    """GMAC/s of the median of `repeats` timed calls of run(), after a warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return macs / statistics.median(times) / 1e9


def row(kt: int, n: int, nc: int, repeats: int, rng: np.random.Generator) -> str:
    """One table row: the three kernels on a rows x pixels x columns tile."""
    reps = max(1, int(TARGET_MACS // (kt * n * nc)))
    macs = float(reps * kt * n * nc)
    wi = rng.integers(-127, 128, kt * nc).astype(np.int32)
    xi = rng.integers(-127, 128, kt * n).astype(np.int32)
    wf = rng.standard_normal(kt * nc).astype(np.float32)
    xf = rng.standard_normal(kt * n).astype(np.float32)
    acc_i = np.zeros(nc * n, np.int64)
    acc_f = np.zeros(nc * n, np.float32)
    sblk = np.zeros((4, n), np.float32)
    r_int = gmacs(lambda: _loop_int(reps, wi, kt, nc, xi, n, acc_i), macs, repeats)
    r_dot = gmacs(lambda: _loop_float_dot(reps, wf, kt, nc, xf, n, acc_f), macs, repeats)
    r_axpy = gmacs(lambda: _loop_float_axpy(reps, wf, kt, nc, xf, n, sblk, acc_f), macs, repeats)
    used = "dot" if kt >= FLOAT_DOT_MIN_ROWS else "axpy"
    return f"{kt:5d} {n:6d} {nc:5d} | {r_int:8.1f} {r_dot:9.1f} {r_axpy:10.1f} | {used}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per figure, >= 3")
    args = parser.parse_args()
    if args.repeats < 3:
        parser.error("--repeats must be >= 3")
    rng = np.random.default_rng(0)
    print(f"{'rows':>5} {'pixels':>6} {'cols':>5} | {'int dot':>8} {'float dot':>9} "
          f"{'float axpy':>10} | float path used")  # fmt: skip
    for kt, n, nc in SHAPES:
        print(row(kt, n, nc, args.repeats, rng))
    print(f"GMAC/s, median of {args.repeats}; FLOAT_DOT_MIN_ROWS = {FLOAT_DOT_MIN_ROWS}")


if __name__ == "__main__":
    main()
