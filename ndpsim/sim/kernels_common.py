"""Scalar helpers every functional kernel shares: the fused activation and the quantizing
store (round half to even, zero point, saturation). KERNELS_DIGEST: see ndpsim/isa_gen.py.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ndpsim.sim.constants import *  # noqa: F403 - ints numba compiles into the kernels

KERNELS_DIGEST = "dd8666560c8ec52d"


@njit(inline="always")
def _act_params(act, p0, p1, fparams):
    """The activation's float parameters (CLIP: lo, hi; LEAKY: slope, unused), read once per
    kernel call: _activate takes scalars, since an array argument would cost reference
    counting on every element."""
    if act == ACT_CLIP:
        return fparams[p0], fparams[p1]
    if act == ACT_LEAKY_RELU:
        return fparams[p0], np.float32(0)
    return np.float32(0), np.float32(0)


@njit(inline="always")
def _activate(f, act, a0, a1):
    """The fused activation of f, with its parameters (a0, a1) from _act_params."""
    if act == ACT_RELU:
        if f < 0:
            f = f * np.float32(0.0)
    elif act == ACT_CLIP:
        if f < a0:
            f = a0
        if f > a1:
            f = a1
    elif act == ACT_LEAKY_RELU:
        if f < 0:
            f = f * a0
    return f


@njit(inline="always")
def _quantized(f, zp, qmin, qmax):
    """f rounded half to even, plus the zero point, saturated to [qmin, qmax]."""
    # saturate before converting: a huge f must not overflow the integer conversion
    if f < qmin - zp:
        return qmin
    if f > qmax - zp:
        return qmax
    return int(np.rint(f)) + zp


@njit(inline="always")
def _store(mem, addr, f, zp, qmin, qmax, float_mode):
    """Quantize (round half to even, add zero point, saturate) and store; floats as they are."""
    if float_mode:
        mem[addr] = f
    else:
        mem[addr] = _quantized(f, zp, qmin, qmax)


@njit(inline="always")
def divide(fa, fb, float_mode):
    """fa / fb in float32; at fb = 0: +-inf (the signs of fa and fb), and 0 / 0 is NaN on the
    float datapath, 0 on the integer one (where a NaN has no integer)."""
    if fb == np.float32(0.0):
        if fa == np.float32(0.0) or fa != fa:
            return np.float32(np.nan) if float_mode else np.float32(0.0)
        return np.float32(math.copysign(np.inf, fa) * math.copysign(1.0, fb))
    return fa / fb


@njit(inline="always")
def unravel4(e, d1, d2, d3):
    """The 4-D index (i0, i1, i2, i3) of flat element e of a (., d1, d2, d3) box."""
    i3 = e % d3
    t = e // d3
    i2 = t % d2
    t = t // d2
    return t // d1, t % d1, i2, i3
