"""The vector unit's REQUANT and ELTWISE, a row at a time. Called from kernels_vector.py's
run_requant / run_eltwise. KERNELS_DIGEST: see ndpsim/isa_gen.py.

Each op's per-element formula lives in one row function that reads and writes contiguous
views (numba then drops its negative-index checks and LLVM vectorizes the loop). When the
operands are contiguous in memory (the common case: NCHW outputs, same-shape residual adds)
the views are the memory itself; otherwise the operands are gathered into a small buffer,
the row function runs on it and the results are scattered back, so the arithmetic is the
same code either way. Semantics: ndpsim/sim/reference.py, bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ndpsim.sim.constants import *  # noqa: F403 - ints numba compiles into the kernels
from ndpsim.sim.kernels_common import _act_params, _activate, _quantized, divide, unravel4
from ndpsim.sim.kernels_ort import eltwise_qadd

u64 = np.uint64  # unsigned indices: no negative-wraparound check, so LLVM vectorizes

KERNELS_DIGEST = "dd8666560c8ec52d"


@njit(cache=True)
def _requant_rows(acc, a0, npix, dst, y0, y_cs, c0, nc, n, weights, bb, fparams, sb, pmax, pre_r,
                  act, ap0, ap1, zp, qmin, qmax, float_mode):  # fmt: skip
    """For channel c0 + i, pixel q: dst[y0 + i * y_cs + q] =
    store(activate(pre(float32(acc[a0 + i * npix + q] + bias) * scale))), clearing the
    accumulators. One call per instruction: array arguments cost reference counting."""
    for i in range(nc):
        c = c0 + i
        scale = fparams[sb + c]
        bias = weights[bb + c] if bb >= 0 else weights[0] * 0
        ai = a0 + i * npix
        yi = y0 + i * y_cs
        for q in range(n):
            v = acc[u64(ai + q)]
            acc[u64(ai + q)] = 0
            if bb >= 0:
                v += bias
            f = np.float32(v) * scale
            if pmax > 0 and not float_mode:  # pre-activation stage (NDP120: 16 bits)
                t = min(max(np.rint(f), -pmax - 1), pmax)
                f = np.float32(t) * pre_r
            f = _activate(f, act, ap0, ap1)
            if float_mode:
                dst[u64(yi + q)] = f
            else:
                dst[u64(yi + q)] = _quantized(f, zp, qmin, qmax)


@njit(cache=True)
def requant(d, c0, nc, p0, n, mem, weights, acc, fparams, float_mode):
    """Channels c0..c0+nc, pixels p0..p0+n: accumulator -> output value (and clear it)."""
    # descriptor fields in locals: stores to mem/acc may alias d as far as numba knows, so
    # reading d[...] inside the loop would reload it for every element
    ow = d[CONV_OW]
    npix = d[CONV_OH] * ow
    ab, bb, out, sb = d[CONV_ACC_BASE], d[CONV_BIAS_BASE], d[CONV_OUT_BASE], d[CONV_SCALE_BASE]
    osc, osy, osx = d[CONV_OUT_SC], d[CONV_OUT_SY], d[CONV_OUT_SX]
    act = d[CONV_ACT]
    ap0, ap1 = _act_params(act, d[CONV_ACT_P0], d[CONV_ACT_P1], fparams)
    zp, qmin, qmax = d[CONV_OUT_ZP], d[CONV_QMIN], d[CONV_QMAX]
    pmax = d[CONV_PRE_MAX]
    pre_r = fparams[d[CONV_PRE_R]] if pmax > 0 and not float_mode else np.float32(1)
    oy0 = p0 // ow
    ox0 = p0 - oy0 * ow
    a0 = ab + c0 * npix + p0
    if osx == 1 and (osy == ow or ox0 + n <= ow):  # each channel's pixels are consecutive
        y0 = out + c0 * osc + oy0 * osy + ox0
        _requant_rows(acc, a0, npix, mem, y0, osc, c0, nc, n, weights, bb, fparams, sb, pmax,
                      pre_r, act, ap0, ap1, zp, qmin, qmax, float_mode)  # fmt: skip
        return
    buf = np.empty(nc * n, mem.dtype)
    _requant_rows(acc, a0, npix, buf, np.int64(0), np.int64(n), c0, nc, n, weights, bb, fparams,
                  sb, pmax, pre_r, act, ap0, ap1, zp, qmin, qmax, float_mode)  # fmt: skip
    for i in range(nc):
        oy, ox = oy0, ox0
        for q in range(n):
            mem[out + (c0 + i) * osc + oy * osy + ox * osx] = buf[i * n + q]
            ox += 1
            if ox == ow:
                ox = 0
                oy += 1


@njit(cache=True)
def _eltwise_row(mem, a0, b0, y, y0, n, is_mul, za, zb, ra, rb, act, ap0, ap1, zy, qmin,
                 qmax, float_mode):  # fmt: skip
    """y[y0 + e] = store(activate(a op b)) of a = mem[a0 + e], b = mem[b0 + e], with the
    operands' zero points and scales."""
    for e in range(n):
        a = mem[u64(a0 + e)]
        b = mem[u64(b0 + e)]
        if is_mul:
            f = np.float32(a - za) * np.float32(b - zb) * ra
        else:
            f = np.float32(a - za) * ra + np.float32(b - zb) * rb
        f = _activate(f, act, ap0, ap1)
        if float_mode:
            y[u64(y0 + e)] = f
        else:
            y[u64(y0 + e)] = _quantized(f, zy, qmin, qmax)


@njit(cache=True)
def _eltwise_row_other(mem, a0, b0, y, y0, n, kind, za, zb, ra, rb, act, ap0, ap1, zy, qmin,
                       qmax, float_mode):  # fmt: skip
    """As _eltwise_row for MAX and MIN (of a * ra and b * rb; NaN wins) and DIV
    ((a / b) * ra; reference.divide's rules at b = 0)."""
    for e in range(n):
        fa = np.float32(mem[u64(a0 + e)] - za)
        fb = np.float32(mem[u64(b0 + e)] - zb)
        if kind == ELTWISE_KIND_DIV:
            f = divide(fa, fb, float_mode) * ra
        else:
            va = fa * ra
            vb = fb * rb
            if kind == ELTWISE_KIND_MAX:
                f = va if va >= vb or va != va else vb
            else:
                f = va if va <= vb or va != va else vb
        f = _activate(f, act, ap0, ap1)
        if float_mode:
            y[u64(y0 + e)] = f
        else:
            y[u64(y0 + e)] = _quantized(f, zy, qmin, qmax)


@njit(inline="always")
def _row(mem, a0, b0, y, y0, n, kind, za, zb, ra, rb, act, ap0, ap1, zy, qmin, qmax,
         float_mode):  # fmt: skip
    if kind == ELTWISE_KIND_ADD or kind == ELTWISE_KIND_MUL:
        _eltwise_row(mem, a0, b0, y, y0, n, kind == ELTWISE_KIND_MUL, za, zb, ra, rb, act, ap0,
                     ap1, zy, qmin, qmax, float_mode)  # fmt: skip
    else:
        _eltwise_row_other(mem, a0, b0, y, y0, n, kind, za, zb, ra, rb, act, ap0, ap1, zy, qmin,
                           qmax, float_mode)  # fmt: skip


@njit(inline="always")
def _linear(base, s0, s1, s2, s3, d1, d2, d3, e0, n):
    """Where elements e0..e0+n of a (., d1, d2, d3) box with strides (s0..s3) start, when
    they lie at consecutive addresses; -1 when they do not. A dimension of extent 1 may have
    any stride (the lowering leaves broadcast strides on them)."""
    inner = d1 * d2 * d3
    dense = (d3 == 1 or s3 == 1) and (d2 == 1 or s2 == d3) and (d1 == 1 or s1 == d2 * d3)
    if not dense or (e0 // inner != (e0 + n - 1) // inner and s0 != inner):
        return -1
    i0, i1, i2, i3 = unravel4(e0, d1, d2, d3)
    return base + i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3


@njit(cache=True)
def eltwise(d, e0, n, mem, fparams, float_mode):
    """Elements e0..e0+n of the op's 4-D box: y = a + b, a * b, max, min or a / b,
    activation, store."""
    if d[ELTWISE_KIND] == ELTWISE_KIND_QADD:
        eltwise_qadd(d, e0, n, mem, fparams)
        return
    if _is_logic(d[ELTWISE_KIND]):
        eltwise_logic(d, e0, n, mem, fparams, float_mode)
        return
    d1, d2, d3 = d[ELTWISE_D1], d[ELTWISE_D2], d[ELTWISE_D3]
    ra, rb = fparams[d[ELTWISE_RA]], fparams[d[ELTWISE_RB]]
    za, zb = d[ELTWISE_ZA], d[ELTWISE_ZB]
    kind = d[ELTWISE_KIND]
    act = d[ELTWISE_ACT]
    ap0, ap1 = _act_params(act, d[ELTWISE_ACT_P0], d[ELTWISE_ACT_P1], fparams)
    zy, qmin, qmax = d[ELTWISE_ZY], d[ELTWISE_QMIN], d[ELTWISE_QMAX]
    sa = (d[ELTWISE_A_S0], d[ELTWISE_A_S1], d[ELTWISE_A_S2], d[ELTWISE_A_S3])
    sb = (d[ELTWISE_B_S0], d[ELTWISE_B_S1], d[ELTWISE_B_S2], d[ELTWISE_B_S3])
    sy = (d[ELTWISE_Y_S0], d[ELTWISE_Y_S1], d[ELTWISE_Y_S2], d[ELTWISE_Y_S3])
    abase, bbase, ybase = d[ELTWISE_A_BASE], d[ELTWISE_B_BASE], d[ELTWISE_Y_BASE]
    a0 = _linear(abase, sa[0], sa[1], sa[2], sa[3], d1, d2, d3, e0, n)
    b0 = _linear(bbase, sb[0], sb[1], sb[2], sb[3], d1, d2, d3, e0, n)
    y0 = _linear(ybase, sy[0], sy[1], sy[2], sy[3], d1, d2, d3, e0, n)
    if a0 >= 0 and b0 >= 0 and y0 >= 0:
        _row(mem, a0, b0, mem, y0, n, kind, za, zb, ra, rb, act, ap0, ap1, zy, qmin, qmax,
             float_mode)  # fmt: skip
        return
    # strided or broadcast operands: gather both, compute the row, scatter y. The 4-D index
    # advances like an odometer instead of being divided out of e for every element.
    ab = np.empty(2 * n, mem.dtype)
    y = np.empty(n, mem.dtype)
    i0, i1, i2, i3 = unravel4(e0, d1, d2, d3)
    for e in range(n):
        ab[e] = mem[abase + i0 * sa[0] + i1 * sa[1] + i2 * sa[2] + i3 * sa[3]]
        ab[n + e] = mem[bbase + i0 * sb[0] + i1 * sb[1] + i2 * sb[2] + i3 * sb[3]]
        i0, i1, i2, i3 = _next4(i0, i1, i2, i3, d1, d2, d3)
    _row(ab, 0, n, y, 0, n, kind, za, zb, ra, rb, act, ap0, ap1, zy, qmin, qmax, float_mode)
    i0, i1, i2, i3 = unravel4(e0, d1, d2, d3)
    for e in range(n):
        mem[ybase + i0 * sy[0] + i1 * sy[1] + i2 * sy[2] + i3 * sy[3]] = y[e]
        i0, i1, i2, i3 = _next4(i0, i1, i2, i3, d1, d2, d3)


@njit(inline="always")
def _is_logic(kind):
    """A comparison, logic or select kind (each named: other kinds may follow in the enum)."""
    return (kind == ELTWISE_KIND_GREATER or kind == ELTWISE_KIND_LESS
            or kind == ELTWISE_KIND_EQUAL or kind == ELTWISE_KIND_GREATER_EQUAL
            or kind == ELTWISE_KIND_LESS_EQUAL or kind == ELTWISE_KIND_AND
            or kind == ELTWISE_KIND_OR or kind == ELTWISE_KIND_NOT
            or kind == ELTWISE_KIND_SELECT)  # fmt: skip


@njit(cache=True)
def eltwise_logic(d, e0, n, mem, fparams, float_mode):
    """Elements e0..e0+n of a comparison, logic or select ELTWISE: bools stored as 0 / 1;
    SELECT stores the requantized b where a is true and leaves y elsewhere."""
    kind = d[ELTWISE_KIND]
    d1, d2, d3 = d[ELTWISE_D1], d[ELTWISE_D2], d[ELTWISE_D3]
    ra, rb = fparams[d[ELTWISE_RA]], fparams[d[ELTWISE_RB]]
    za, zb, zy, qmin, qmax = (d[ELTWISE_ZA], d[ELTWISE_ZB], d[ELTWISE_ZY], d[ELTWISE_QMIN],
                              d[ELTWISE_QMAX])  # fmt: skip
    sa = (d[ELTWISE_A_S0], d[ELTWISE_A_S1], d[ELTWISE_A_S2], d[ELTWISE_A_S3])
    sb = (d[ELTWISE_B_S0], d[ELTWISE_B_S1], d[ELTWISE_B_S2], d[ELTWISE_B_S3])
    sy = (d[ELTWISE_Y_S0], d[ELTWISE_Y_S1], d[ELTWISE_Y_S2], d[ELTWISE_Y_S3])
    abase, bbase, ybase = d[ELTWISE_A_BASE], d[ELTWISE_B_BASE], d[ELTWISE_Y_BASE]
    i0, i1, i2, i3 = unravel4(e0, d1, d2, d3)
    for _ in range(n):
        a = mem[abase + i0 * sa[0] + i1 * sa[1] + i2 * sa[2] + i3 * sa[3]] - za
        b = mem[bbase + i0 * sb[0] + i1 * sb[1] + i2 * sb[2] + i3 * sb[3]] - zb
        y = ybase + i0 * sy[0] + i1 * sy[1] + i2 * sy[2] + i3 * sy[3]
        i0, i1, i2, i3 = _next4(i0, i1, i2, i3, d1, d2, d3)
        if kind == ELTWISE_KIND_SELECT:
            if a != 0:
                f = np.float32(b) * rb
                if float_mode:
                    mem[y] = f
                else:
                    mem[y] = _quantized(f, zy, qmin, qmax)
            continue
        fa = np.float32(a) * ra
        fb = np.float32(b) * rb
        if kind == ELTWISE_KIND_GREATER:
            v = fa > fb
        elif kind == ELTWISE_KIND_LESS:
            v = fa < fb
        elif kind == ELTWISE_KIND_EQUAL:
            v = fa == fb
        elif kind == ELTWISE_KIND_GREATER_EQUAL:
            v = fa >= fb
        elif kind == ELTWISE_KIND_LESS_EQUAL:
            v = fa <= fb
        elif kind == ELTWISE_KIND_AND:
            v = a != 0 and b != 0
        elif kind == ELTWISE_KIND_OR:
            v = a != 0 or b != 0
        else:  # NOT
            v = a == 0
        mem[y] = 1 if v else 0


@njit(inline="always")
def _next4(i0, i1, i2, i3, d1, d2, d3):
    """The 4-D index after (i0, i1, i2, i3) in a (., d1, d2, d3) box, in row-major order."""
    i3 += 1
    if i3 == d3:
        i3 = 0
        i2 += 1
        if i2 == d2:
            i2 = 0
            i1 += 1
            if i1 == d1:
                i1 = 0
                i0 += 1
    return i0, i1, i2, i3
