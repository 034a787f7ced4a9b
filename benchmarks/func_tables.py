"""Precision of the function unit's tables: every TABLE op of the registry, each of its
tables, evaluated by the simulator's FUNC kernel (float datapath) on evenly spaced float32
points over [-20, 20], against the table's own float64 function.

    python benchmarks/func_tables.py [--points N]

Columns: the op (and the attribute value selecting the table), range, entries, step h, the
interpolation bound h^2/8 * max|f''| (f'' by finite differences on a fine grid over the
range), the largest error beyond the range (the continuation with the table's slopes) and
the measured max |error| over all the points (a few seconds).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ndpsim.isa import DESC_FIELDS, DESC_WIDTH, FuncKind
from ndpsim.lower.funcs import Table
from ndpsim.lower.registry import OPS
from ndpsim.sim.kernels_vector import func


def evaluate(table: Table, x: np.ndarray) -> np.ndarray:
    """The FUNC kernel's output for float32 inputs x (float datapath, unit scales)."""
    values = table.values()
    n, size = x.size, values.size
    fparams = np.concatenate([values, [table.lo, (size - 1) / (table.hi - table.lo), 1.0, 1.0,
                                       *table.slopes, table.hi]]).astype(np.float32)  # fmt: skip
    d = np.zeros(DESC_WIDTH, np.int64)
    fields = dict(kind=int(FuncKind.TABLE), x_base=0, y_base=n, lut_base=0, lut_size=size,
                  lut_lo=size, lut_inv_step=size + 1, sx=size + 2, ry=size + 3, p0=size + 4,
                  p1=size + 5, p2=size + 6)  # fmt: skip
    for k, v in fields.items():
        d[DESC_FIELDS["func"][k]] = v
    mem = np.concatenate([x, np.zeros(n, np.float32)]).astype(np.float32)
    func(d, 0, n, mem, fparams, True)
    return mem[n:].astype(np.float64)


def bound(table: Table) -> float:
    """h^2/8 * max|f''| over the table's range."""
    h = (table.hi - table.lo) / (table.entries - 1)
    x = np.linspace(table.lo, table.hi, 200_001)
    f = np.asarray(table.f(x), np.float64)
    d2 = np.abs(np.diff(f, 2)) / (x[1] - x[0]) ** 2
    return h * h / 8 * float(d2.max())


def tables() -> list[tuple[str, Table]]:
    """(label, table) of every TABLE op in the registry."""
    out = []
    for op, entry in sorted(OPS.items()):
        if entry.func is not None and entry.func.kind == FuncKind.TABLE:
            for value, table in entry.func.tables:
                out.append((f"{op} {entry.func.attr}={value}" if value else op, table))
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2_000_000)
    args = parser.parse_args(argv)
    x = np.linspace(-20.0, 20.0, args.points).astype(np.float32)
    print("| op | range | entries | h | bound h²/8·max|f''| | max error beyond | max error |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, table in tables():
        err = np.abs(evaluate(table, x) - table.f(x.astype(np.float64)))
        beyond = (x < table.lo) | (x > table.hi)
        h = (table.hi - table.lo) / (table.entries - 1)
        print(f"| {label} | [{table.lo:g}, {table.hi:g}] | {table.entries} | {h:.3g} | "
              f"{bound(table):.2g} | {err[beyond].max():.2g} | {err.max():.2g} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
