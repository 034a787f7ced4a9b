"""Numba kernels of the vector unit's function unit (opcode FUNC): look-up tables with linear
interpolation (sigmoid, tanh), piecewise-linear functions (hard sigmoid, hard swish), sqrt
and a power of a positive base (LRN's normalizer, Pow).

core.run_program calls `func` (numba compiles it into run_program's cache entry, which is
keyed on core.py alone: `python -m ndpsim.isa --write` stamps this file's hash into core.py
as KERNELS_DIGEST so an edit here invalidates that cache). Semantics are specified by
ndpsim/sim/reference.py (`_func`), which this must match bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ndpsim.sim.constants import *  # noqa: F403 - ints numba compiles into the kernels

ISA_DIGEST = "a1607d4aa61826c5"


@njit(cache=True)
def evaluate(kind, v, fparams, d):
    """F(v) in float32: the function unit's arithmetic for one element."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    if kind == F_SIGMOID or kind == F_TANH:
        # table of lut_size samples from lut_lo, step 1/inv_step; clamped at both ends
        base, size = d[FN_LUT_BASE], d[FN_LUT_SIZE]
        t = (v - fparams[d[FN_LUT_LO]]) * fparams[d[FN_LUT_INV_STEP]]
        if not t > zero:  # also NaN: the table's first entry
            return fparams[base]
        if t >= np.float32(size - 1):
            return fparams[base + size - 1]
        i = np.int64(t)
        frac = t - np.float32(i)
        lo = fparams[base + i]
        return lo + frac * (fparams[base + i + 1] - lo)
    if kind == F_HSIG or kind == F_HSWISH:
        h = fparams[d[FN_P0]] * v + fparams[d[FN_P1]]
        if h < zero:
            h = zero
        if h > one:
            h = one
        return h if kind == F_HSIG else v * h
    if kind == F_POW:  # (p1 + p0 v)^p2 in float64 (libm pow), for a positive base only
        u = fparams[d[FN_P1]] + fparams[d[FN_P0]] * v
        if not u > zero:
            return zero
        return np.float32(math.pow(np.float64(u), np.float64(fparams[d[FN_P2]])))
    # F_SQRT: negative inputs (ONNX: NaN) give 0 on the machine
    return np.float32(np.sqrt(v)) if v > zero else zero


@njit(cache=True)
def func(d, e0, n, mem, fparams, float_mode):
    """y[e] = sat(rne(F(f32(x[e] - zx) * sx) * ry) + zy) for e in e0..e0+n."""
    sx, ry, zx, zy = fparams[d[FN_SX]], fparams[d[FN_RY]], d[FN_ZX], d[FN_ZY]
    qmin, qmax = d[FN_QMIN], d[FN_QMAX]
    kind = d[FN_KIND]
    for e in range(e0, e0 + n):
        v = np.float32(mem[d[FN_X_BASE] + e] - zx) * sx
        f = evaluate(kind, v, fparams, d) * ry
        addr = d[FN_Y_BASE] + e
        if float_mode:
            mem[addr] = f
        elif f < qmin - zy:  # saturate before converting, as kernels_common._store does
            mem[addr] = qmin
        elif f > qmax - zy:
            mem[addr] = qmax
        else:
            mem[addr] = int(np.rint(f)) + zy
