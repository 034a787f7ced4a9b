"""Parameters of an imported quantized model, chosen so that the machine's integer datapath
reproduces onnxruntime's CPU kernels bit for bit (docs/quantization.md):

- MAC layers (QLinearConv, QGemm, QLinearMatMul): the model's integer weights and int32
  biases; requantization scale per channel `f32(f32(x_scale * w_scale) / y_scale)`, applied
  to `f32(acc + bias)`, rounded half to even, plus the zero point, saturated (MLAS).
- Add (QLinearAdd): `fma(a, sa/sc, fma(b, sb/sc, zc - (sa/sc·za + sb/sc·zb)))` (MLAS AVX2).
- Average pools: integer sum times `sx / (sy · count)` when the window is the whole
  image (onnxruntime's global-pool fallback), else float32 dequantize, sum, divide, quantize.
- Softmax: onnxruntime's 256-entry float32 exp table (QLinearSoftmax).
- Copies between different scales (QLinearConcat): dequantize, then quantize.

Every float below is computed in float32, operation by operation, in onnxruntime's order."""

from __future__ import annotations

import math

import numpy as np

from ndpsim.errors import UnsupportedOpError
from ndpsim.isa import DESC_FIELDS, EltwiseKind, PoolKind
from ndpsim.lower.bindings import CopyBinding
from ndpsim.lower.tiling import weight_matrix

_F32 = np.float32
_FLT_MAX = float(np.finfo(np.float32).max)


def softmax_table(x_scale: float, length: int, signed: bool) -> np.ndarray:
    """onnxruntime's QlinearBuildLookupTableUint32 (float entries): exp((i - 255 + shift) * s)
    in double, shift = max(0, log(FLT_MAX / length) - 5) / s; int8 tables are indexed by
    uint8(i - 128)."""
    bit_shift = math.log(float(_F32(_FLT_MAX) / _F32(length)))
    bit_shift = max(0.0, bit_shift - 5.0) / float(_F32(x_scale))
    table = np.zeros(256, np.float32)
    for i in range(256):
        v = math.exp((float(i) - 255.0 + bit_shift) * float(_F32(x_scale)))
        table[(i - 128) & 255 if signed else i] = _F32(v)
    return table


class OrtBinder:
    """Fills descriptors and parameters of one program for an imported quantized model."""

    def __init__(self, program, plan, desc: np.ndarray):
        self.program = program
        self.plan = plan
        self.model = plan.model
        self.desc = desc
        self.extra: list[float] = []  # float32 slots appended after the program's own

    def slot(self, value) -> int:
        self.extra.append(float(_F32(value)))
        return self.program.fparam_size + len(self.extra) - 1

    def set(self, desc_kind: str, row: int, /, **values: int) -> None:
        for k, v in values.items():
            self.desc[row, DESC_FIELDS[desc_kind][k]] = v

    def conv(self, bd, node, geom, x, y, weights, fparams) -> None:
        wq = self.model.weights.get(geom.weight)
        if wq is None:
            raise UnsupportedOpError(
                f"node {node.name!r}: its weights are not quantized in the model"
            )
        g = self.program.graph
        gi = g.with_(constants={**g.constants, geom.weight: wq.q.astype(np.float64)})
        w = weight_matrix(gi, node, geom)
        sw = np.broadcast_to(wq.scale.astype(np.float32), (geom.cout,))
        s = bd.slots
        weights[s["w_base"] : s["w_base"] + w.size] = w.reshape(-1)
        if geom.bias:
            b = self.model.biases.get(geom.bias)
            if b is None:  # a float bias: at x_scale * w_scale, as the quantizer would
                fb = np.asarray(g.constants[geom.bias], np.float32).reshape(-1)
                b = np.rint(fb / (_F32(x.scale) * sw)).astype(np.int64)
            weights[s["bias_base"] : s["bias_base"] + geom.cout] = np.broadcast_to(b, geom.cout)
        scale = (_F32(x.scale) * sw).astype(np.float32) / _F32(y.scale)
        fparams[s["scale_base"] : s["scale_base"] + geom.cout] = scale

    def add(self, bd, a, b, y, fparams) -> None:
        ra = _F32(a.scale) / _F32(y.scale)
        rb = _F32(b.scale) / _F32(y.scale)
        fixed = _F32(y.zero_point) - (ra * _F32(a.zero_point) + rb * _F32(b.zero_point))
        fparams[bd.slots["ra"]] = ra
        fparams[bd.slots["rb"]] = rb
        self.set("eltwise", bd.desc, kind=int(EltwiseKind.QADD), rc=self.slot(fixed))

    def pool_or_copy(self, bd, x, y, fparams) -> None:
        d = self.program.desc[bd.desc]
        if isinstance(bd, CopyBinding):
            if x.scale != y.scale:
                fparams[bd.slots["r"]] = _F32(x.scale)
                self.set("copy", bd.desc, mode=1, r2=self.slot(y.scale))
            else:
                fparams[bd.slots["r"]] = 1.0
            return
        f = DESC_FIELDS["pool"]
        if int(d[f["kind"]]) != int(PoolKind.AVG):
            return
        kh, kw, h, w = (int(d[f[k]]) for k in ("kh", "kw", "h", "w"))
        whole = (kh, kw) == (h, w) and int(d[f["oh"]]) == int(d[f["ow"]]) == 1
        whole = whole and int(d[f["pad_top"]]) == int(d[f["pad_left"]]) == 0
        if whole:  # onnxruntime falls back to its global average pool
            r = _F32(x.scale) / (_F32(y.scale) * _F32(kh * kw))
            fparams[bd.slots["r"]] = r
            self.set("pool", bd.desc, kind=int(PoolKind.AVG_SCALED))
        else:
            fparams[bd.slots["r"]] = _F32(x.scale)
            self.set("pool", bd.desc, kind=int(PoolKind.AVG_DQ), r2=self.slot(y.scale))

    def softmax(self, bd, x, y, fparams) -> None:
        d = self.program.desc[bd.desc]
        length = int(d[DESC_FIELDS["softmax"]["length"]])
        signed = x.qmin < 0
        if (y.qmin < 0) != signed:
            raise UnsupportedOpError("QLinearSoftmax with different input and output types")
        base = len(self.extra)
        for v in softmax_table(x.scale, length, signed):
            self.slot(v)
        fparams[bd.slots["sy"]] = np.floor(_F32(1.0) / _F32(y.scale))
        self.set("softmax", bd.desc, mode=2 if signed else 1, lut=self.program.fparam_size + base)
