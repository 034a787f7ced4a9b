"""The reference semantics of the kinds that reproduce onnxruntime's quantized CPU kernels
bit for bit (isa/isa.toml; integer datapath only): QLinearAdd's fused multiply-adds, the
quantized average pools and QLinearSoftmax's exp table. Part of the specification
(sim/reference.py); the numba side is sim/kernels_ort.py."""

from __future__ import annotations

import math

import numpy as np

from ndpsim.isa import PoolKind

_F32 = np.float32


def fma_f32(a, b, c):
    """float32 a*b + c with one rounding (the exact sum, rounded to odd in float64, then to
    float32)."""
    p, cc = float(a) * float(b), float(c)
    s = p + cc
    bb = s - p
    err = (p - (s - bb)) + (cc - bb)
    if err != 0.0 and s != 0.0:
        m, e = math.frexp(s)
        if (m * 2.0**53) % 2.0 == 0.0:
            s += math.copysign(math.ldexp(1.0, e - 53), err)
    return _F32(s)


def pool_ort(g, p0, n, mem, fparams, store):
    """AVG_SCALED (QLinearGlobalAveragePool) and AVG_DQ (QLinearAveragePool) windows; `g` the
    pool descriptor as a dict, `store` the quantizing store."""
    r = fparams[g["r"]]
    for p in range(p0, p0 + n):
        c, t = divmod(p, g["oh"] * g["ow"])
        oy, ox = divmod(t, g["ow"])
        s, sf, count = 0, _F32(0.0), 0
        for ky in range(g["kh"]):
            iy = oy * g["stride_h"] - g["pad_top"] + ky * g["dil_h"]
            for kx in range(g["kw"]):
                ix = ox * g["stride_w"] - g["pad_left"] + kx * g["dil_w"]
                if 0 <= iy < g["h"] and 0 <= ix < g["w"]:
                    x = int(mem[g["in_base"] + c * g["in_sc"] + iy * g["in_sy"] + ix * g["in_sx"]])
                    s += x - g["zx"]
                    sf = _F32(sf + _F32(x - g["zx"]) * r)
                    count += 1
        if g["count_include_pad"]:
            count = g["kh"] * g["kw"]
        y = g["out_base"] + c * g["out_sc"] + oy * g["out_sy"] + ox * g["out_sx"]
        if g["kind"] == PoolKind.AVG_SCALED:
            store(mem, y, _F32(s) * r, g["zy"], g["qmin"], g["qmax"], False)
        else:
            f = _F32(_F32(sf / _F32(count)) / fparams[g["r2"]]) + _F32(g["zy"])
            store(mem, y, f, 0, g["qmin"], g["qmax"], False)


def softmax_lut(g, r0, n, mem, fparams):
    """QLinearSoftmax: the uint8 (mode 1) or int8 (mode 2) exp table at fparams[lut..lut+256)."""
    sy, lut, signed = fparams[g["sy"]], g["lut"], g["mode"] == 2
    for row in range(r0, r0 + n):
        o, i = divmod(row, g["inner"])
        addrs = [o * g["length"] * g["inner"] + i + j * g["inner"] for j in range(g["length"])]
        xs = [int(mem[g["x_base"] + a]) for a in addrs]
        off = (127 if signed else 255) - max(xs)
        total = _F32(0.0)
        for x in xs:
            total = _F32(total + fparams[lut + ((x + off) & 255)])
        for a, x in zip(addrs, xs, strict=True):
            v = int(np.rint(_F32(_F32(fparams[lut + ((x + off) & 255)] * sy) / total))) + g["zy"]
            top = 127 if signed else 255
            mem[g["y_base"] + a] = min(max(v, top - 255), top)
