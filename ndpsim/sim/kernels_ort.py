"""Vector-unit kernels that reproduce onnxruntime's quantized CPU kernels bit for bit (eltwise
QADD, pool AVG_SCALED / AVG_DQ, the softmax exp table; docs/quantization.md). Called from
the vector unit's ELTWISE / POOL / SOFTMAX kernels, as `eltwise_qadd`, `pool_ort` and
`softmax_lut`: these run on the integer datapath only (isa/isa.toml), and numba resolves them
per arena dtype when it compiles the caller, so the float datapath compiles none of them.
KERNELS_DIGEST: see ndpsim/isa_gen.py.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from ndpsim.sim.constants import *  # noqa: F403 - ints numba compiles into the kernels
from ndpsim.sim.kernels_common import _store, unravel4

KERNELS_DIGEST = "dd8666560c8ec52d"


@njit(inline="always")
def _fma_f32(a, b, c):
    """float32 fused multiply-add, one rounding (as AVX2's vfmadd): the float64 product of two
    float32 is exact; TwoSum gives the sum's error, and rounding the float64 sum to odd when
    it is inexact makes the final rounding to float32 correct (53 >= 24 + 2 bits)."""
    p = np.float64(a) * np.float64(b)
    cc = np.float64(c)
    s = p + cc
    bb = s - p
    err = (p - (s - bb)) + (cc - bb)
    if err != 0.0 and s != 0.0:
        m, e = math.frexp(s)
        if (m * 9007199254740992.0) % 2.0 == 0.0:
            s += math.copysign(math.ldexp(1.0, e - 53), err)
    return np.float32(s)


def _eltwise_qadd(d, first, n, mem, fparams):
    """onnxruntime's QLinearAdd (MLAS AVX2): fma(a, ra, fma(b, rb, rc)), round to even,
    saturate; the output zero point is folded into rc."""
    d1, d2, d3 = d[ELTWISE_D1], d[ELTWISE_D2], d[ELTWISE_D3]
    ra, rb, rc = fparams[d[ELTWISE_RA]], fparams[d[ELTWISE_RB]], fparams[d[ELTWISE_RC]]
    for e in range(first, first + n):
        i0, i1, i2, i3 = unravel4(e, d1, d2, d3)
        a = mem[
            d[ELTWISE_A_BASE]
            + i0 * d[ELTWISE_A_S0]
            + i1 * d[ELTWISE_A_S1]
            + i2 * d[ELTWISE_A_S2]
            + i3 * d[ELTWISE_A_S3]
        ]
        b = mem[
            d[ELTWISE_B_BASE]
            + i0 * d[ELTWISE_B_S0]
            + i1 * d[ELTWISE_B_S1]
            + i2 * d[ELTWISE_B_S2]
            + i3 * d[ELTWISE_B_S3]
        ]
        f = _fma_f32(np.float32(a), ra, _fma_f32(np.float32(b), rb, rc))
        y = (
            d[ELTWISE_Y_BASE]
            + i0 * d[ELTWISE_Y_S0]
            + i1 * d[ELTWISE_Y_S1]
            + i2 * d[ELTWISE_Y_S2]
            + i3 * d[ELTWISE_Y_S3]
        )
        _store(mem, y, f, 0, d[ELTWISE_QMIN], d[ELTWISE_QMAX], False)


def _pool_ort(d, first, n, mem, fparams):
    """onnxruntime's quantized average pools. AVG_SCALED (QLinearGlobalAveragePool): the
    integer sum times r = sx / (sy * count). AVG_DQ (QLinearAveragePool): a float32 sum of
    dequantized inputs in window order, divided by the count, quantized with sy = r2."""
    oh, ow, kh, kw = d[POOL_OH], d[POOL_OW], d[POOL_KH], d[POOL_KW]
    h, w, zx = d[POOL_H], d[POOL_W], d[POOL_ZX]
    r = fparams[d[POOL_R]]
    scaled = d[POOL_KIND] == POOL_KIND_AVG_SCALED
    for p in range(first, first + n):
        c = p // (oh * ow)
        t = p - c * oh * ow
        oy = t // ow
        ox = t - oy * ow
        s = np.int64(0)
        sf = np.float32(0.0)
        count = 0
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
                    xi = np.int64(mem[a]) - zx
                    s += xi
                    sf = sf + np.float32(xi) * r
                    count += 1
        if d[POOL_COUNT_INCLUDE_PAD] != 0:
            count = kh * kw
        y = d[POOL_OUT_BASE] + c * d[POOL_OUT_SC] + oy * d[POOL_OUT_SY] + ox * d[POOL_OUT_SX]
        if scaled:
            _store(mem, y, np.float32(s) * r, d[POOL_ZY], d[POOL_QMIN], d[POOL_QMAX], False)
        else:
            f = sf / np.float32(count) / fparams[d[POOL_R2]] + np.float32(d[POOL_ZY])
            _store(mem, y, f, 0, d[POOL_QMIN], d[POOL_QMAX], False)


def _softmax_lut(d, first, n, mem, fparams):
    """onnxruntime's QLinearSoftmax: a 256-entry float32 exp table indexed by x - max(x),
    float32 row sum, y = sat(rne(table * sy / sum) + zy); mode 1 uint8, mode 2 int8
    (saturated, as onnxruntime's int8 kernel does today; older releases wrapped above 127)."""
    length, inner = d[SOFTMAX_LENGTH], d[SOFTMAX_INNER]
    sy, zy, lut = fparams[d[SOFTMAX_SY]], d[SOFTMAX_ZY], d[SOFTMAX_LUT]
    signed = d[SOFTMAX_MODE] == 2
    for row in range(first, first + n):
        o = row // inner
        i = row - o * inner
        base = o * length * inner + i
        xmax = np.int64(mem[d[SOFTMAX_X_BASE] + base])
        for j in range(length):
            xmax = max(xmax, np.int64(mem[d[SOFTMAX_X_BASE] + base + j * inner]))
        off = (127 - xmax) if signed else (255 - xmax)
        total = np.float32(0.0)
        for j in range(length):
            x = np.int64(mem[d[SOFTMAX_X_BASE] + base + j * inner])
            total = total + fparams[lut + ((x + off) & 255)]
        for j in range(length):
            x = np.int64(mem[d[SOFTMAX_X_BASE] + base + j * inner])
            vt = fparams[lut + ((x + off) & 255)]
            v = np.int64(np.rint(vt * sy / total)) + zy
            top = 127 if signed else 255
            mem[d[SOFTMAX_Y_BASE] + base + j * inner] = min(max(v, top - 255), top)


def _integer_datapath_only(kernel):
    """A function for compiled code with `kernel`'s arguments (d, first, n, mem, fparams):
    `kernel`, compiled into the caller, when the arena `mem` is integer; on the float
    datapath, an error."""

    def stub(d, first, n, mem, fparams):
        raise NotImplementedError(f"{kernel.__name__} runs inside numba kernels only")

    @overload(stub)
    def _of_datapath(d, first, n, mem, fparams):
        return kernel if isinstance(mem.dtype, types.Integer) else _refuse

    return stub


def _refuse(d, first, n, mem, fparams):
    raise ValueError("onnxruntime's quantized kinds run on the integer datapath only")


eltwise_qadd = _integer_datapath_only(_eltwise_qadd)
pool_ort = _integer_datapath_only(_pool_ort)
softmax_lut = _integer_datapath_only(_softmax_lut)
