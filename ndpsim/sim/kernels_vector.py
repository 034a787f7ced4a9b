"""The vector unit's kernels: one entry point per opcode (`run_<opcode>`), each executing
the instructions of that opcode in instrs[i0:i1] (core.execute_program hands it a run of
them; instructions of other opcodes in the range do no arithmetic and are skipped). So a
model compiles only the kernels of the opcodes its program uses, once per datapath.

REQUANT and ELTWISE run a row at a time (kernels_rows.py); POOL, SOFTMAX, COPY, the function
unit (FUNC: look-up tables with linear interpolation, piecewise-linear functions, exp, log,
reciprocal, sqrt, abs, neg and a power of a positive base) and the product of two
activations (MATMUL) are here; onnxruntime's quantized variants are in kernels_ort.py.
Semantics are specified by ndpsim/sim/reference.py, which these must match bit for bit.
KERNELS_DIGEST: see ndpsim/isa_gen.py.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ndpsim.sim import kernels_rows
from ndpsim.sim.constants import *  # noqa: F403 - ints numba compiles into the kernels
from ndpsim.sim.kernels_common import _act_params, _activate, _store, unravel4
from ndpsim.sim.kernels_ort import pool_ort, softmax_lut

KERNELS_DIGEST = "dd8666560c8ec52d"


@njit(cache=True)
def run_requant(instrs, i0, i1, desc, fparams, weights, mem, acc, float_mode):
    """The REQUANTs among instrs[i0:i1]."""
    for i in range(i0, i1):
        ins = instrs[i]
        if ins["op"] == OP_REQUANT:
            kernels_rows.requant(desc[ins["desc"]], ins["a0"], ins["rows"], ins["a1"], ins["a2"],
                                 mem, weights, acc, fparams, float_mode)  # fmt: skip


@njit(cache=True)
def run_eltwise(instrs, i0, i1, desc, fparams, weights, mem, acc, float_mode):
    """The ELTWISEs among instrs[i0:i1]."""
    for i in range(i0, i1):
        ins = instrs[i]
        if ins["op"] == OP_ELTWISE:
            kernels_rows.eltwise(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, float_mode)


@njit(cache=True)
def run_pool(instrs, i0, i1, desc, fparams, weights, mem, acc, float_mode):
    """The POOLs among instrs[i0:i1]."""
    for i in range(i0, i1):
        ins = instrs[i]
        if ins["op"] == OP_POOL:
            _pool(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, float_mode)


@njit(cache=True)
def run_softmax(instrs, i0, i1, desc, fparams, weights, mem, acc, float_mode):
    """The SOFTMAXes among instrs[i0:i1]."""
    for i in range(i0, i1):
        ins = instrs[i]
        if ins["op"] == OP_SOFTMAX:
            _softmax(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, float_mode)


@njit(cache=True)
def run_copy(instrs, i0, i1, desc, fparams, weights, mem, acc, float_mode):
    """The COPYs among instrs[i0:i1]."""
    for i in range(i0, i1):
        ins = instrs[i]
        if ins["op"] == OP_COPY:
            _copy(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, float_mode)


@njit(cache=True)
def run_func(instrs, i0, i1, desc, fparams, weights, mem, acc, float_mode):
    """The FUNCs among instrs[i0:i1]."""
    for i in range(i0, i1):
        ins = instrs[i]
        if ins["op"] == OP_FUNC:
            func(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, float_mode)


@njit(cache=True)
def _pool(d, p0, n, mem, fparams, float_mode):
    if d[POOL_KIND] == POOL_KIND_AVG_SCALED or d[POOL_KIND] == POOL_KIND_AVG_DQ:
        pool_ort(d, p0, n, mem, fparams)
        return
    oh, ow, kh, kw = d[POOL_OH], d[POOL_OW], d[POOL_KH], d[POOL_KW]
    h, w, zx = d[POOL_H], d[POOL_W], d[POOL_ZX]
    is_max = d[POOL_KIND] == POOL_KIND_MAX
    is_sum = d[POOL_KIND] == POOL_KIND_SUM
    r = fparams[d[POOL_R]]
    a0, a1 = _act_params(d[POOL_ACT], d[POOL_ACT_P0], d[POOL_ACT_P1], fparams)
    for p in range(p0, p0 + n):
        c = p // (oh * ow)
        t = p - c * oh * ow
        oy = t // ow
        ox = t - oy * ow
        m = np.int64(0)  # numba widens these to float64 on the float datapath (x = mem - zx)
        s = np.int64(0)
        count = 0
        first = True
        for ky in range(kh):
            iy = oy * d[POOL_STRIDE_H] - d[POOL_PAD_TOP] + ky * d[POOL_DIL_H]
            for kx in range(kw):
                ix = ox * d[POOL_STRIDE_W] - d[POOL_PAD_LEFT] + kx * d[POOL_DIL_W]
                if iy >= 0 and iy < h and ix >= 0 and ix < w:
                    a = (
                        d[POOL_IN_BASE]
                        + c * d[POOL_IN_SC]
                        + iy * d[POOL_IN_SY]
                        + ix * d[POOL_IN_SX]
                    )
                    x = mem[a] - zx
                    if first or x > m:
                        m = x
                    first = False
                    s += x
                    count += 1
        if d[POOL_COUNT_INCLUDE_PAD] != 0:
            count = kh * kw
        if is_max:
            f = np.float32(m) * r
        elif is_sum:
            f = np.float32(s) * r
        else:
            f = np.float32(s) / np.float32(count) * r
        f = _activate(f, d[POOL_ACT], a0, a1)
        y = d[POOL_OUT_BASE] + c * d[POOL_OUT_SC] + oy * d[POOL_OUT_SY] + ox * d[POOL_OUT_SX]
        _store(mem, y, f, d[POOL_ZY], d[POOL_QMIN], d[POOL_QMAX], float_mode)


@njit(cache=True)
def _softmax(d, r0, n, mem, fparams, float_mode):
    if d[SOFTMAX_MODE] != 0:
        softmax_lut(d, r0, n, mem, fparams)
        return
    length, inner = d[SOFTMAX_LENGTH], d[SOFTMAX_INNER]
    sx, sy, zx = fparams[d[SOFTMAX_SX]], fparams[d[SOFTMAX_SY]], d[SOFTMAX_ZX]
    for row in range(r0, r0 + n):
        o = row // inner
        i = row - o * inner
        base = o * length * inner + i
        m = -np.inf
        for j in range(length):
            v = np.float64(np.float32(mem[d[SOFTMAX_X_BASE] + base + j * inner] - zx) * sx)
            if v > m:
                m = v
        total = 0.0
        for j in range(length):
            v = np.float64(np.float32(mem[d[SOFTMAX_X_BASE] + base + j * inner] - zx) * sx)
            total += np.exp(v - m)
        for j in range(length):
            v = np.float64(np.float32(mem[d[SOFTMAX_X_BASE] + base + j * inner] - zx) * sx)
            f = np.float32(np.exp(v - m) / total) / sy
            _store(
                mem,
                d[SOFTMAX_Y_BASE] + base + j * inner,
                f,
                d[SOFTMAX_ZY],
                d[SOFTMAX_QMIN],
                d[SOFTMAX_QMAX],
                float_mode,
            )


@njit(cache=True)
def _copy(d, e0, n, mem, fparams, float_mode):
    d1, d2, d3 = d[COPY_D1], d[COPY_D2], d[COPY_D3]
    r, zx = fparams[d[COPY_R]], d[COPY_ZX]
    a0, a1 = _act_params(d[COPY_ACT], d[COPY_ACT_P0], d[COPY_ACT_P1], fparams)
    for e in range(e0, e0 + n):
        i0, i1, i2, i3 = unravel4(e, d1, d2, d3)
        x = mem[
            d[COPY_X_BASE]
            + i0 * d[COPY_X_S0]
            + i1 * d[COPY_X_S1]
            + i2 * d[COPY_X_S2]
            + i3 * d[COPY_X_S3]
        ]
        f = np.float32(x - zx) * r
        if d[COPY_MODE] == 1:  # dequantize, then quantize (onnxruntime's QLinearConcat table)
            f = f / fparams[d[COPY_R2]]
        f = _activate(f, d[COPY_ACT], a0, a1)
        y = (
            d[COPY_Y_BASE]
            + i0 * d[COPY_Y_S0]
            + i1 * d[COPY_Y_S1]
            + i2 * d[COPY_Y_S2]
            + i3 * d[COPY_Y_S3]
        )
        _store(mem, y, f, d[COPY_ZY], d[COPY_QMIN], d[COPY_QMAX], float_mode)


_LN_FLT_MAX = 88.72283905206835  # exp of more than this is beyond float32: inf


@njit(cache=True)
def _table(v, fparams, d):
    """A table of lut_size samples from lut_lo, step 1/inv_step, linearly interpolated; beyond
    it the end sample continued with slope p0 (below) or p1 (above the last sample, at p2)."""
    base, size = d[FUNC_LUT_BASE], d[FUNC_LUT_SIZE]
    t = (v - fparams[d[FUNC_LUT_LO]]) * fparams[d[FUNC_LUT_INV_STEP]]
    if not t > np.float32(0.0):  # also NaN: the table's first entry
        slope = fparams[d[FUNC_P0]]
        if slope == np.float32(0.0):
            return fparams[base]
        return fparams[base] + slope * (v - fparams[d[FUNC_LUT_LO]])
    if t >= np.float32(size - 1):
        slope = fparams[d[FUNC_P1]]
        if slope == np.float32(0.0):
            return fparams[base + size - 1]
        return fparams[base + size - 1] + slope * (v - fparams[d[FUNC_P2]])
    i = np.int64(t)
    frac = t - np.float32(i)
    lo = fparams[base + i]
    return lo + frac * (fparams[base + i + 1] - lo)


@njit(cache=True)
def evaluate(kind, v, fparams, d):
    """F(v) in float32: the function unit's arithmetic for one element."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    if kind == FUNC_KIND_TABLE:
        return _table(v, fparams, d)
    if kind == FUNC_KIND_HARD_SIGMOID or kind == FUNC_KIND_HARD_SWISH:
        h = fparams[d[FUNC_P0]] * v + fparams[d[FUNC_P1]]
        if h < zero:
            h = zero
        if h > one:
            h = one
        return h if kind == FUNC_KIND_HARD_SIGMOID else v * h
    if kind == FUNC_KIND_POW:  # (p1 + p0 v)^p2 in float64 (libm pow), for a positive base only
        u = fparams[d[FUNC_P1]] + fparams[d[FUNC_P0]] * v
        if not u > zero:
            return zero
        return np.float32(math.pow(np.float64(u), np.float64(fparams[d[FUNC_P2]])))
    if kind == FUNC_KIND_EXP:  # libm exp in float64, rounded to float32
        if np.float64(v) > _LN_FLT_MAX:
            return np.float32(np.inf)
        return np.float32(math.exp(np.float64(v)))
    if kind == FUNC_KIND_LOG:  # libm log; zero, negative and NaN inputs give -inf
        if v > zero:
            return np.float32(math.log(np.float64(v)))
        return np.float32(-np.inf)
    if kind == FUNC_KIND_RECIPROCAL:  # IEEE float32 division; 1/(+-0) is +-inf
        if v == zero:
            return np.float32(math.copysign(np.inf, np.float64(v)))
        return one / v
    if kind == FUNC_KIND_ABS:
        return abs(v)
    if kind == FUNC_KIND_NEG:
        return -v
    # FUNC_KIND_SQRT: negative inputs (ONNX: NaN) give 0 on the machine
    return np.float32(np.sqrt(v)) if v > zero else zero


@njit(cache=True)
def func(d, e0, n, mem, fparams, float_mode):
    """y[e] = sat(rne(F(f32(x[e] - zx) * sx) * ry) + zy) for e in e0..e0+n."""
    sx, ry, zx, zy = fparams[d[FUNC_SX]], fparams[d[FUNC_RY]], d[FUNC_ZX], d[FUNC_ZY]
    qmin, qmax = d[FUNC_QMIN], d[FUNC_QMAX]
    kind = d[FUNC_KIND]
    for e in range(e0, e0 + n):
        v = np.float32(mem[d[FUNC_X_BASE] + e] - zx) * sx
        f = evaluate(kind, v, fparams, d) * ry
        addr = d[FUNC_Y_BASE] + e
        if float_mode:
            mem[addr] = f
        elif f < qmin - zy:  # saturate before converting, as kernels_common._store does
            mem[addr] = qmin
        elif f > qmax - zy:
            mem[addr] = qmax
        else:
            mem[addr] = int(np.rint(f)) + zy


@njit(cache=True)
def run_matmul(instrs, i0, i1, desc, fparams, weights, mem, acc, float_mode):
    """The MATMULs among instrs[i0:i1]."""
    for i in range(i0, i1):
        ins = instrs[i]
        if ins["op"] == OP_MATMUL:
            matmul(desc[ins["desc"]], ins["a1"], ins["a2"], mem, fparams, float_mode)


@njit(cache=True)
def matmul(d, r0, n, mem, fparams, float_mode):
    """Output rows r0..r0+n of the product of two activations (matmul descriptor): each
    output the k-order sum of (A - za)(B - zb), exact integers or float32, then requantized."""
    m, k, nn, d1 = d[MATMUL_M], d[MATMUL_K], d[MATMUL_N], d[MATMUL_D1]
    a_sk, b_sk, b_sn, y_sn = d[MATMUL_A_SK], d[MATMUL_B_SK], d[MATMUL_B_SN], d[MATMUL_Y_SN]
    za, zb, zy = d[MATMUL_ZA], d[MATMUL_ZB], d[MATMUL_ZY]
    qmin, qmax = d[MATMUL_QMIN], d[MATMUL_QMAX]
    r = fparams[d[MATMUL_R]]
    a0, a1 = _act_params(d[MATMUL_ACT], d[MATMUL_ACT_P0], d[MATMUL_ACT_P1], fparams)
    for t in range(r0, r0 + n):
        b0 = t // (d1 * m)
        rest = t - b0 * d1 * m
        b1 = rest // m
        row = rest - b1 * m
        a_row = d[MATMUL_A_BASE] + b0 * d[MATMUL_A_S0] + b1 * d[MATMUL_A_S1] + row * d[MATMUL_A_SM]
        b_mat = d[MATMUL_B_BASE] + b0 * d[MATMUL_B_S0] + b1 * d[MATMUL_B_S1]
        y_row = d[MATMUL_Y_BASE] + b0 * d[MATMUL_Y_S0] + b1 * d[MATMUL_Y_S1] + row * d[MATMUL_Y_SM]
        for j in range(nn):
            b_col = b_mat + j * b_sn
            if float_mode:  # float32 products summed in k order, as the reference
                s = np.float32(0.0)
                for kk in range(k):
                    x = np.float32(mem[a_row + kk * a_sk] - za)
                    s += x * np.float32(mem[b_col + kk * b_sk] - zb)
                f = s * r
            else:
                acc_i = np.int64(0)
                for kk in range(k):
                    x = np.int64(mem[a_row + kk * a_sk] - za)
                    acc_i += x * np.int64(mem[b_col + kk * b_sk] - zb)
                f = np.float32(acc_i) * r
            f = _activate(f, d[MATMUL_ACT], a0, a1)
            _store(mem, y_row + j * y_sn, f, zy, qmin, qmax, float_mode)
