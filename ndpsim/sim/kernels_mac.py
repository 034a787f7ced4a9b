"""The macro's functional kernel: one MVM instruction, acc[tile outputs, pixels] += W . x.

Called from the macro unit's kernels (kernels_macro.py). KERNELS_DIGEST: see
ndpsim/isa_gen.py.

The semantics are the reference interpreter's (ndpsim/sim/reference.py): every (channel,
pixel) sums its products over k, from zero, then adds the sum to the accumulator (which
saturates, for integers). The layouts below only choose which independent sums run side by
side; the input block xblk is flat, packed either pixel-major (xblk[q * kt + j]) or k-major
(xblk[j * n + q]):
- integers: pixel-major, and four output channels are dot products over one input vector at
  once; when no partial sum can exceed int32 the sums run in int32 lanes (wrapping is then
  impossible, so the result is exact). Integer sums are exact in any order: bit-exact.
- floats, k >= FLOAT_DOT_MIN_ROWS rows: pixel-major dot products like the integers', which
  the compiler may reassociate into SIMD partial sums (fastmath "reassoc" only: no fused
  multiply-add, no NaN/inf assumptions). The float datapath (calibration, op checks) then
  agrees with the reference to float32 rounding, not to the bit: summing in k order (an axpy
  per row, store-bound) ran at under half the speed, and was most of a float run.
- floats, fewer rows: k-major, four channels run an axpy over the pixels at once, so each
  sum is in k order (bit-exact with the reference); the short dots above are slower there.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from ndpsim.sim.constants import *  # noqa: F403 - ints numba compiles into the kernels

KERNELS_DIGEST = "dd8666560c8ec52d"

_INT32_MAX = 2147483647
# Hot loops index with unsigned integers: numba checks a signed index for negative
# wraparound, which stops LLVM vectorizing the loop, and a view instead would cost two
# reference-count updates (atomic, out of line) each time it is made.
u64 = np.uint64
CHANNEL_BLOCK = 4  # output channels computed side by side
# Float tiles with at least this many rows use the (reassociating) dot products: below it
# the k-order axpy was as fast or faster on this 2-core machine (benchmarks/mac_kernels.py).
FLOAT_DOT_MIN_ROWS = 48


@njit(cache=True)
def offsets(d, p0, n, off):
    """off[q, r]: where kernel position r (ky * kw + kx) of output pixel p0 + q reads, as an
    offset from its channel's first element, or -1 where it falls in the padding. Shared by
    every group and k-fold of the block, so the gathers below test no bounds per element."""
    kh, kw, ow = d[CONV_KH], d[CONV_KW], d[CONV_OW]
    h, w, dh, dw = d[CONV_H], d[CONV_W], d[CONV_DIL_H], d[CONV_DIL_W]
    sth, stw, pt, pl = d[CONV_STRIDE_H], d[CONV_STRIDE_W], d[CONV_PAD_TOP], d[CONV_PAD_LEFT]
    sy, sx = d[CONV_IN_SY], d[CONV_IN_SX]
    for q in range(n):
        p = p0 + q
        oy = p // ow
        ox = p - oy * ow
        for ky in range(kh):
            iy = oy * sth - pt + ky * dh
            for kx in range(kw):
                ix = ox * stw - pl + kx * dw
                inside = iy >= 0 and iy < h and ix >= 0 and ix < w
                off[q, ky * kw + kx] = iy * sy + ix * sx if inside else -1


@njit(inline="always")
def _channels(k0, kt, r, khw):
    """The channels ci whose row ci * khw + r lies in [k0, k0 + kt), as a range."""
    lo = max(0, -((r - k0) // khw))  # ceil((k0 - r) / khw)
    hi = -((r - k0 - kt) // khw)  # ceil((k0 + kt - r) / khw)
    return lo, hi


@njit(cache=True)
def gather_pixel_major(d, g, k0, kt, n, mem, off, xblk):
    """xblk[q * kt + j] = x[row k0 + j of group g, pixel p0 + q] - input zero point (0 in the
    padding): one contiguous input vector per pixel; returns max |x|. The descriptor's
    fields are read into locals first: the stores below could alias `d` as far as the
    compiler knows, so it would otherwise reload them for every element."""
    khw = d[CONV_KH] * d[CONV_KW]
    sc = d[CONV_IN_SC]
    base = d[CONV_IN_BASE] + g * (d[CONV_CIN] // d[CONV_GROUPS]) * sc
    in_zp = d[CONV_IN_ZP]
    xmax = 0
    for q in range(n):
        row = q * kt
        for r in range(khw):
            o = off[q, r]
            lo, hi = _channels(k0, kt, r, khw)
            j = row + lo * khw + r - k0
            src = base + lo * sc + max(o, 0)
            for _ in range(lo, hi):
                v = mem[src] - in_zp if o >= 0 else 0
                xmax = max(xmax, abs(v))
                xblk[j] = v
                src += sc
                j += khw
    return xmax


@njit(cache=True)
def gather_k_major(d, g, k0, kt, n, mem, off, xblk):
    """xblk[j * n + q] = x[row k0 + j of group g, pixel p0 + q] (0 in the padding): rows of
    pixels, as the float axpys read them."""
    khw = d[CONV_KH] * d[CONV_KW]
    sc = d[CONV_IN_SC]
    base = d[CONV_IN_BASE] + g * (d[CONV_CIN] // d[CONV_GROUPS]) * sc
    in_zp = d[CONV_IN_ZP]
    for r in range(khw):
        lo, hi = _channels(k0, kt, r, khw)
        for ci in range(lo, hi):
            row = (ci * khw + r - k0) * n
            src = base + ci * sc
            for q in range(n):
                o = off[q, r]
                xblk[row + q] = mem[src + max(o, 0)] - in_zp if o >= 0 else 0


@njit(inline="always")
def _row_starts(wb, stride, m):
    """Where the weight rows of m <= 4 channels start (the last repeated to fill four)."""
    return (
        u64(wb),
        u64(wb + stride * min(1, m - 1)),
        u64(wb + stride * min(2, m - 1)),
        u64(wb + stride * min(3, m - 1)),
    )


@njit(inline="always")
def _saturate(v, lo, hi):
    return min(max(v, lo), hi)


@njit(cache=True)
def _mac_int(weights, wb, k_g, nc, kt, xt, n, acc, ai0, npix, amin, amax, narrow):
    """acc[ai0 + c * npix + q] += sum_j w[c, j] x[q * kt + j] (saturating) for nc channels whose
    weight rows start at wb, four channels at a time. `narrow`: the caller has proven no
    partial sum leaves int32, so the sums run in int32 lanes; int64 otherwise."""
    i32 = np.int32
    i64 = np.int64
    for b in range(0, nc, CHANNEL_BLOCK):
        m = min(CHANNEL_BLOCK, nc - b)
        w0, w1, w2, w3 = _row_starts(wb + b * k_g, k_g, m)
        a = ai0 + b * npix
        for q in range(n):
            xq = u64(q * kt)
            if narrow:
                t0 = i32(0)
                t1 = i32(0)
                t2 = i32(0)
                t3 = i32(0)
                for j in range(kt):
                    uj = u64(j)
                    x = i32(xt[xq + uj])
                    t0 = i32(t0 + i32(weights[w0 + uj] * x))
                    t1 = i32(t1 + i32(weights[w1 + uj] * x))
                    t2 = i32(t2 + i32(weights[w2 + uj] * x))
                    t3 = i32(t3 + i32(weights[w3 + uj] * x))
                s0, s1, s2, s3 = i64(t0), i64(t1), i64(t2), i64(t3)
            else:
                s0 = i64(0)
                s1 = i64(0)
                s2 = i64(0)
                s3 = i64(0)
                for j in range(kt):
                    uj = u64(j)
                    x = i64(xt[xq + uj])
                    s0 += weights[w0 + uj] * x
                    s1 += weights[w1 + uj] * x
                    s2 += weights[w2 + uj] * x
                    s3 += weights[w3 + uj] * x
            acc[a + q] = _saturate(acc[a + q] + s0, amin, amax)
            if m > 1:
                acc[a + npix + q] = _saturate(acc[a + npix + q] + s1, amin, amax)
            if m > 2:
                acc[a + 2 * npix + q] = _saturate(acc[a + 2 * npix + q] + s2, amin, amax)
            if m > 3:
                acc[a + 3 * npix + q] = _saturate(acc[a + 3 * npix + q] + s3, amin, amax)


@njit(cache=True, fastmath={"reassoc"})
def _mac_float_dot(weights, wb, k_g, nc, kt, xt, n, acc, ai0, npix):
    """acc[ai0 + c * npix + q] += sum_j w[c, j] x[q * kt + j] for nc channels, four channels
    by two pixels at a time (each weight load serves two pixels); the sums may reassociate."""
    f32 = np.float32
    for b in range(0, nc, CHANNEL_BLOCK):
        m = min(CHANNEL_BLOCK, nc - b)
        w0, w1, w2, w3 = _row_starts(wb + b * k_g, k_g, m)
        a = ai0 + b * npix
        for q in range(0, n, 2):
            q1 = min(q + 1, n - 1)  # an odd last pixel is computed twice, stored once
            xa = u64(q * kt)
            xb = u64(q1 * kt)
            s0, s1, s2, s3 = f32(0), f32(0), f32(0), f32(0)
            t0, t1, t2, t3 = f32(0), f32(0), f32(0), f32(0)
            for j in range(kt):
                uj = u64(j)
                x = xt[xa + uj]
                y = xt[xb + uj]
                v0 = weights[w0 + uj]
                v1 = weights[w1 + uj]
                v2 = weights[w2 + uj]
                v3 = weights[w3 + uj]
                s0 += v0 * x
                s1 += v1 * x
                s2 += v2 * x
                s3 += v3 * x
                t0 += v0 * y
                t1 += v1 * y
                t2 += v2 * y
                t3 += v3 * y
            _add4(acc, a + q, npix, m, s0, s1, s2, s3)
            if q1 > q:
                _add4(acc, a + q1, npix, m, t0, t1, t2, t3)


@njit(inline="always")
def _add4(acc, a, npix, m, s0, s1, s2, s3):
    """acc[a + r * npix] += s_r for the first m of four channel sums (float: no saturation)."""
    acc[a] += s0
    if m > 1:
        acc[a + npix] += s1
    if m > 2:
        acc[a + 2 * npix] += s2
    if m > 3:
        acc[a + 3 * npix] += s3


@njit(cache=True)
def _mac_float_axpy(weights, wb, k_g, nc, kt, xblk, n, sblk, acc, ai0, npix):
    """acc[ai0 + c * npix + q] += sum_j w[c, j] x[j * n + q] for nc channels, four at a time,
    each sum in k order in sblk[r, q] (an axpy over the pixels per row j)."""
    for b in range(0, nc, CHANNEL_BLOCK):
        m = min(CHANNEL_BLOCK, nc - b)
        w0, w1, w2, w3 = _row_starts(wb + b * k_g, k_g, m)
        for q in range(n):
            sblk[0, q] = 0
            sblk[1, q] = 0
            sblk[2, q] = 0
            sblk[3, q] = 0
        for j in range(kt):
            uj = u64(j)
            row = u64(j * n)
            a0 = weights[w0 + uj]
            a1 = weights[w1 + uj]
            a2 = weights[w2 + uj]
            a3 = weights[w3 + uj]
            for q in range(n):
                uq = u64(q)
                x = xblk[row + uq]
                sblk[0, uq] += a0 * x
                sblk[1, uq] += a1 * x
                sblk[2, uq] += a2 * x
                sblk[3, uq] += a3 * x
        for r in range(m):
            a = u64(ai0 + (b + r) * npix)
            for q in range(n):
                uq = u64(q)
                acc[a + uq] += sblk[r, uq]


@njit(cache=True)
def _tile_weight_max(d, tile, weights):
    """max |w| over a tile's weights (every group, channel and row of it)."""
    groups = d[CONV_GROUPS]
    cout_g = d[CONV_COUT] // groups
    k_g = (d[CONV_CIN] // groups) * d[CONV_KH] * d[CONV_KW]
    g0, g1, k0, k1, c0, c1 = tile[0], tile[1], tile[2], tile[3], tile[4], tile[5]
    wmax = 0
    for g in range(g0, g1):
        for oc in range(g * cout_g + c0, g * cout_g + c1):
            wb = u64(d[CONV_W_BASE] + oc * k_g + k0)
            for k in range(k1 - k0):
                wmax = max(wmax, abs(weights[wb + u64(k)]))
    return wmax


def mvm(d, tile, ti, p0, n, mem, weights, acc, xblk, sblk, off, xmax_state, wmax_tiles, reuse):
    """acc[tile outputs, pixels p0..p0+n] += W_tile . im2col(x) for tile number `ti`.
    `reuse`: xblk already holds this block (the previous MVM read the same input vectors;
    xmax_state[0] is its max |x|). xblk is the flat input block (pixel-major, or k-major for
    short float tiles); sblk is [CHANNEL_BLOCK, pixel], the float axpys' sums; off is the
    offsets table; wmax_tiles[ti] caches the tile's max |w| (-1: not yet known). Threads
    share out whole runs of MVMs, not one MVM (kernels_macro.run_mvm_parallel): a parallel
    launch per MVM cost more than it saved.

    Callable from compiled code only: numba picks the integer or the float datapath's MVM
    from the weights' dtype when it compiles the caller (the overload below), so a caller
    compiled for one datapath does not compile the other's kernels."""
    raise NotImplementedError("kernels_mac.mvm runs inside numba kernels only")


@overload(mvm)
def _mvm_of_datapath(d, tile, ti, p0, n, mem, weights, acc, xblk, sblk, off, xmax_state,
                     wmax_tiles, reuse):  # fmt: skip
    # the implementation is compiled into the caller: no extra layer of calls to optimize
    return _mvm_int if isinstance(weights.dtype, types.Integer) else _mvm_float


def _mvm_int(d, tile, ti, p0, n, mem, weights, acc, xblk, sblk, off, xmax_state, wmax_tiles,
             reuse):  # fmt: skip
    """mvm on the integer datapath (numba compiles it as mvm's implementation for integer
    weights): four-channel dot products over pixel-major input vectors, in int32 lanes when
    no partial sum can leave int32."""
    groups = d[CONV_GROUPS]
    cout_g = d[CONV_COUT] // groups
    k_g = (d[CONV_CIN] // groups) * d[CONV_KH] * d[CONV_KW]
    g0, g1, k0, k1, c0, c1 = tile[0], tile[1], tile[2], tile[3], tile[4], tile[5]
    kt = k1 - k0
    npix = d[CONV_OH] * d[CONV_OW]
    ab, amin, amax = d[CONV_ACC_BASE], d[CONV_ACC_MIN], d[CONV_ACC_MAX]
    if wmax_tiles[ti] < 0:
        wmax_tiles[ti] = _tile_weight_max(d, tile, weights)
    wmax = wmax_tiles[ti]
    if not reuse:
        offsets(d, p0, n, off)
    for g in range(g0, g1):
        if reuse:
            xmax = xmax_state[0]
        else:
            xmax = gather_pixel_major(d, g, k0, kt, n, mem, off, xblk)
            xmax_state[0] = xmax
        oc = g * cout_g + c0
        wb = d[CONV_W_BASE] + oc * k_g + k0
        ai0 = ab + oc * npix + p0
        # no partial sum can leave int32 when max|w| * max|x| * rows fits in it
        narrow = np.int64(wmax) * np.int64(xmax) * np.int64(kt) <= _INT32_MAX
        _mac_int(weights, wb, k_g, c1 - c0, kt, xblk, n, acc, ai0, npix, amin, amax, narrow)


def _mvm_float(d, tile, ti, p0, n, mem, weights, acc, xblk, sblk, off, xmax_state, wmax_tiles,
               reuse):  # fmt: skip
    """mvm on the float datapath (numba compiles it as mvm's implementation for float
    weights): dot products that may reassociate on tiles of FLOAT_DOT_MIN_ROWS rows or more,
    else axpys in k order. The float sums cannot overflow: no bound is needed."""
    groups = d[CONV_GROUPS]
    cout_g = d[CONV_COUT] // groups
    k_g = (d[CONV_CIN] // groups) * d[CONV_KH] * d[CONV_KW]
    g0, g1, k0, k1, c0, c1 = tile[0], tile[1], tile[2], tile[3], tile[4], tile[5]
    kt = k1 - k0
    npix = d[CONV_OH] * d[CONV_OW]
    dots = kt >= FLOAT_DOT_MIN_ROWS
    if not reuse:
        offsets(d, p0, n, off)
    for g in range(g0, g1):
        if not reuse:
            if dots:
                gather_pixel_major(d, g, k0, kt, n, mem, off, xblk)
            else:
                gather_k_major(d, g, k0, kt, n, mem, off, xblk)
        oc = g * cout_g + c0
        wb = d[CONV_W_BASE] + oc * k_g + k0
        ai0 = d[CONV_ACC_BASE] + oc * npix + p0
        if dots:
            _mac_float_dot(weights, wb, k_g, c1 - c0, kt, xblk, n, acc, ai0, npix)
        else:
            _mac_float_axpy(weights, wb, k_g, c1 - c0, kt, xblk, n, sblk, acc, ai0, npix)
