"""The macro's functional kernel: one MVM instruction, acc[tile outputs, pixels] += W . x.

Called only from ndpsim/sim/core.py's run_program. numba's cache does not see edits in other
files, so core.py carries KERNELS_DIGEST, a hash of this file (`python -m ndpsim.isa --write`
restamps it; tests/test_isa.py fails when it is stale).

The semantics are the reference interpreter's (ndpsim/sim/reference.py): every (channel,
pixel) sums its products over k in order, from zero, then adds the sum to the accumulator,
which saturates. The layouts below only choose which independent sums run side by side:
- integers: the input block is gathered transposed (one contiguous input vector per pixel)
  and four output channels are dot products over it at once; when no partial sum can exceed
  int32 the sums run in int32 lanes (wrapping is then impossible, so the result is exact).
- floats: the block is gathered as rows of pixels and four channels run an axpy over the
  pixels at once, so each (channel, pixel) still adds its products in k order (no
  reassociation, no fused multiply-add: bit-exact with the reference).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ndpsim.sim.constants import *  # noqa: F403 - ints numba compiles into the kernels

ISA_DIGEST = "dda3867cb26692b4"

_INT32_MAX = 2147483647
CHANNEL_BLOCK = 4  # output channels computed side by side


@njit(cache=True)
def gather(d, g, k0, kt, p0, n, mem, xblk, transposed, float_mode):
    """im2col of pixels p0..p0+n, rows k0..k0+kt of group g, minus the input zero point, into
    xblk[j, q] (or xblk[q, j] when `transposed`); returns max |x| (0 for floats). The
    descriptor's fields are read into locals first: the stores below could alias `d` as far
    as the compiler knows, so it would otherwise reload them for every element."""
    kh, kw, ow = d[CV_KH], d[CV_KW], d[CV_OW]
    h, w, dh, dw = d[CV_H], d[CV_W], d[CV_DH], d[CV_DW]
    sth, stw, pt, pl = d[CV_STH], d[CV_STW], d[CV_PT], d[CV_PL]
    sc, sy, sx = d[CV_SC], d[CV_SY], d[CV_SX]
    khw = kh * kw
    base = d[CV_IN] + g * (d[CV_CIN] // d[CV_G]) * sc
    in_zp = d[CV_IZ]
    ci0 = k0 // khw
    r0 = k0 - ci0 * khw
    xmax = 0
    for q in range(n):
        p = p0 + q
        oy = p // ow
        ox = p - oy * ow
        base_y = oy * sth - pt
        base_x = ox * stw - pl
        ci = ci0
        ky = r0 // kw
        kx = r0 - ky * kw
        for j in range(kt):
            iy = base_y + ky * dh
            ix = base_x + kx * dw
            v = 0
            if iy >= 0 and iy < h and ix >= 0 and ix < w:
                v = mem[base + ci * sc + iy * sy + ix * sx] - in_zp
                if not float_mode and abs(v) > xmax:
                    xmax = abs(v)
            if transposed:
                xblk[q, j] = v
            else:
                xblk[j, q] = v
            kx += 1
            if kx == kw:
                kx = 0
                ky += 1
                if ky == kh:
                    ky = 0
                    ci += 1
    return xmax


@njit(cache=True)
def _accumulate(acc, ai0, sblk, n, d, float_mode):
    """acc[ai0 + q] += sblk[q], saturating integer accumulators."""
    dst = acc[ai0 : ai0 + n]
    for q in range(n):
        v = dst[q] + sblk[q]
        if not float_mode:
            if v < d[CV_AMIN]:
                v = d[CV_AMIN]
            if v > d[CV_AMAX]:
                v = d[CV_AMAX]
        dst[q] = v


@njit(cache=True)
def _weight_max(weights, wb, stride, m, kt):
    wmax = 0
    for r in range(m):
        row = weights[wb + r * stride : wb + r * stride + kt]
        for j in range(kt):
            if abs(row[j]) > wmax:
                wmax = abs(row[j])
    return wmax


@njit(cache=True)
def _rows(weights, wb, stride, m, kt):
    """Views of the weight rows of m <= 4 channels (the last repeated to fill four). Loops
    index views from zero: computed flat indices would make numba check each for negative
    wraparound, which stops LLVM from vectorizing them."""
    w1 = wb + stride * min(1, m - 1)
    w2 = wb + stride * min(2, m - 1)
    w3 = wb + stride * min(3, m - 1)
    return (
        weights[wb : wb + kt],
        weights[w1 : w1 + kt],
        weights[w2 : w2 + kt],
        weights[w3 : w3 + kt],
    )


@njit(cache=True)
def _dots_int32(weights, wb, stride, m, kt, xt, n, sblk):
    """sblk[r, q] = sum_j w[r, j] x[q, j] for m <= 4 channels, in int32 lanes (the caller has
    proven no partial sum overflows)."""
    i32 = np.int32
    a0, a1, a2, a3 = _rows(weights, wb, stride, m, kt)
    for q in range(n):
        xr = xt[q, :kt]
        s0 = i32(0)
        s1 = i32(0)
        s2 = i32(0)
        s3 = i32(0)
        for j in range(kt):
            x = i32(xr[j])
            s0 = i32(s0 + i32(a0[j] * x))
            s1 = i32(s1 + i32(a1[j] * x))
            s2 = i32(s2 + i32(a2[j] * x))
            s3 = i32(s3 + i32(a3[j] * x))
        sblk[0, q] = s0
        sblk[1, q] = s1
        sblk[2, q] = s2
        sblk[3, q] = s3


@njit(cache=True)
def _dots_int64(weights, wb, stride, m, kt, xt, n, sblk):
    """As _dots_int32 with int64 sums, for blocks whose sums may not fit in 32 bits."""
    a0, a1, a2, a3 = _rows(weights, wb, stride, m, kt)
    for q in range(n):
        xr = xt[q, :kt]
        s0 = np.int64(0)
        s1 = np.int64(0)
        s2 = np.int64(0)
        s3 = np.int64(0)
        for j in range(kt):
            x = np.int64(xr[j])
            s0 += a0[j] * x
            s1 += a1[j] * x
            s2 += a2[j] * x
            s3 += a3[j] * x
        sblk[0, q] = s0
        sblk[1, q] = s1
        sblk[2, q] = s2
        sblk[3, q] = s3


@njit(cache=True)
def _axpys_float(weights, wb, stride, m, kt, xblk, n, sblk):
    """sblk[r, q] = sum_j w[r, j] x[j, q] for m <= 4 channels, each sum in k order."""
    r0, r1, r2, r3 = _rows(weights, wb, stride, m, kt)
    s0, s1, s2, s3 = sblk[0], sblk[1], sblk[2], sblk[3]
    for q in range(n):
        s0[q] = 0
        s1[q] = 0
        s2[q] = 0
        s3[q] = 0
    for j in range(kt):
        a0 = r0[j]
        a1 = r1[j]
        a2 = r2[j]
        a3 = r3[j]
        xr = xblk[j]
        for q in range(n):
            x = xr[q]
            s0[q] += a0 * x
            s1[q] += a1 * x
            s2[q] += a2 * x
            s3[q] += a3 * x


@njit(cache=True)
def mvm(d, tile, p0, n, mem, weights, acc, xblk, sblk, xmax_state, reuse, float_mode):
    """acc[tile outputs, pixels p0..p0+n] += W_tile . im2col(x). `reuse`: xblk already holds
    this block (the previous MVM read the same input vectors; xmax_state[0] is its max |x|).
    xblk is [k, pixel] for floats and [pixel, k] for integers; sblk is [block, CHANNEL_BLOCK,
    pixel], one slab per block of output channels. (Sharing the blocks out over threads with
    prange was tried: a parallel launch per MVM cost more than it saved.)"""
    groups = d[CV_G]
    cout_g = d[CV_COUT] // groups
    k_g = (d[CV_CIN] // groups) * d[CV_KH] * d[CV_KW]
    g0, g1, k0, k1, c0, c1 = tile[0], tile[1], tile[2], tile[3], tile[4], tile[5]
    kt = k1 - k0
    npix = d[CV_OH] * d[CV_OW]
    n_blocks = (c1 - c0 + CHANNEL_BLOCK - 1) // CHANNEL_BLOCK
    for g in range(g0, g1):
        if reuse:
            xmax = xmax_state[0]
        else:
            xmax = gather(d, g, k0, kt, p0, n, mem, xblk, not float_mode, float_mode)
            xmax_state[0] = xmax
        for b in range(n_blocks):
            cb = c0 + b * CHANNEL_BLOCK
            m = min(CHANNEL_BLOCK, c1 - cb)
            oc = g * cout_g + cb
            wb = d[CV_WB] + oc * k_g + k0
            s = sblk[b]
            if float_mode:
                _axpys_float(weights, wb, k_g, m, kt, xblk, n, s)
            else:
                wmax = _weight_max(weights, wb, k_g, m, kt)
                if np.int64(wmax) * np.int64(xmax) * np.int64(kt) <= _INT32_MAX:
                    _dots_int32(weights, wb, k_g, m, kt, xblk, n, s)
                else:
                    _dots_int64(weights, wb, k_g, m, kt, xblk, n, s)
            for r in range(m):
                _accumulate(acc, d[CV_AB] + (oc + r) * npix + p0, s[r], n, d, float_mode)
