"""The function unit's F (FUNC, isa/isa.toml `func_kind`) in plain Python: part of the
specification in ndpsim/sim/reference.py, which applies it element by element;
ndpsim/sim/kernels_vector.py `evaluate` must compute the same float32 values bit for bit."""

from __future__ import annotations

import math

import numpy as np

from ndpsim.isa import FuncKind

_F32 = np.float32


def _table(v, fparams: np.ndarray, g: dict):
    """Linear interpolation in the table; beyond it the end sample continued with slope p0
    (below lut_lo) or p1 (above the last sample, at p2)."""
    base, size = g["lut_base"], g["lut_size"]
    t = (v - fparams[g["lut_lo"]]) * fparams[g["lut_inv_step"]]
    if not t > 0:  # also NaN: the first entry
        slope = fparams[g["p0"]]
        if slope == 0:
            return fparams[base]
        return fparams[base] + slope * (v - fparams[g["lut_lo"]])
    if t >= _F32(size - 1):
        slope = fparams[g["p1"]]
        if slope == 0:
            return fparams[base + size - 1]
        return fparams[base + size - 1] + slope * (v - fparams[g["p2"]])
    i = int(t)
    frac = t - _F32(i)
    lo = fparams[base + i]
    return lo + frac * (fparams[base + i + 1] - lo)


_LN_FLT_MAX = 88.72283905206835  # exp of more than this is beyond float32: inf


def evaluate(kind: int, v, fparams: np.ndarray, g: dict):
    """F(v) in float32 (the function unit): a table with linear interpolation, piecewise
    linear, a power, exp / log / reciprocal / sqrt correctly rounded, abs or neg."""
    if kind == FuncKind.TABLE:
        return _table(v, fparams, g)
    if kind in (FuncKind.HARD_SIGMOID, FuncKind.HARD_SWISH):
        h = fparams[g["p0"]] * v + fparams[g["p1"]]
        h = min(max(h, _F32(0.0)), _F32(1.0))
        return h if kind == FuncKind.HARD_SIGMOID else v * h
    if kind == FuncKind.POW:  # (p1 + p0 v)^p2 in float64, positive bases only
        u = fparams[g["p1"]] + fparams[g["p0"]] * v
        if not u > 0:
            return _F32(0.0)
        return _F32(math.pow(float(u), float(fparams[g["p2"]])))
    if kind == FuncKind.EXP:  # libm exp in float64, rounded to float32
        return _F32(math.inf) if float(v) > _LN_FLT_MAX else _F32(math.exp(float(v)))
    if kind == FuncKind.LOG:  # zero, negative and NaN inputs give -inf
        return _F32(math.log(float(v))) if v > 0 else _F32(-math.inf)
    if kind == FuncKind.RECIPROCAL:  # 1/(+-0) is +-inf
        return _F32(math.copysign(math.inf, float(v))) if v == 0 else _F32(1.0) / v
    if kind == FuncKind.ABS:
        return abs(v)
    if kind == FuncKind.NEG:
        return -v
    return _F32(np.sqrt(v)) if v > 0 else _F32(0.0)  # SQRT; negative inputs give 0
