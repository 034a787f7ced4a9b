"""Scalar helpers every functional kernel shares: the fused activation and the quantizing
store (round half to even, zero point, saturation). Stamped into core.py's KERNELS_DIGEST.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ndpsim.sim.constants import *  # noqa: F403 - ints numba compiles into the kernels

ISA_DIGEST = "dda3867cb26692b4"


@njit(cache=True)
def _activate(f, act, p0, p1, fparams):
    if act == A_RELU:
        if f < 0:
            f = f * np.float32(0.0)
    elif act == A_CLIP:
        lo = fparams[p0]
        hi = fparams[p1]
        if f < lo:
            f = lo
        if f > hi:
            f = hi
    elif act == A_LEAKY:
        if f < 0:
            f = f * fparams[p0]
    return f


@njit(cache=True)
def _store(mem, addr, f, zp, qmin, qmax, float_mode):
    """Quantize (round half to even, add zero point, saturate) and store; floats as they are."""
    if float_mode:
        mem[addr] = f
    else:
        # saturate before converting: a huge f must not overflow the integer conversion
        if f < qmin - zp:
            mem[addr] = qmin
        elif f > qmax - zp:
            mem[addr] = qmax
        else:
            mem[addr] = int(np.rint(f)) + zp


@njit(cache=True)
def unravel4(e, d1, d2, d3):
    """The 4-D index (i0, i1, i2, i3) of flat element e of a (., d1, d2, d3) box."""
    i3 = e % d3
    t = e // d3
    i2 = t % d2
    t = t // d2
    return t // d1, t % d1, i2, i3
