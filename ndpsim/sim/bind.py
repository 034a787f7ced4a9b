"""Fill a Program's parameters: weights, biases, requantization scales, zero points and
constants — either as floats (the float datapath: calibration, op-level checks) or as
integers for a QuantPlan (the integer datapath the machine runs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from ndpsim.isa import DESC_FIELDS, Act
from ndpsim.lower.passes import activation_of
from ndpsim.lower.program import Program
from ndpsim.lower.tiling import bias_vector, geometry, weight_matrix
from ndpsim.lower.vector_ops import LUTS, func_params, lut_values
from ndpsim.sim.ort_bind import OrtBinder


@dataclass(frozen=True)
class QParams:
    """Affine quantization of one tensor: real = scale * (q - zero_point), q in [qmin, qmax]."""

    scale: float
    zero_point: int
    qmin: int
    qmax: int

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """float32 x / scale, round half to even, + zero point, saturate (as QuantizeLinear)."""
        with np.errstate(over="ignore", invalid="ignore"):
            f = np.asarray(x, np.float32) / np.float32(self.scale)
        f = np.clip(np.nan_to_num(f), self.qmin - self.zero_point, self.qmax - self.zero_point)
        return (np.rint(f).astype(np.int64) + self.zero_point).astype(np.int64)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """float32 (q - zero point) * scale (as DequantizeLinear)."""
        qq = np.asarray(q, np.int64) - self.zero_point
        return qq.astype(np.float32) * np.float32(self.scale)


@dataclass
class QuantPlan:
    tensors: dict[str, QParams]  # every value the program stores (aliases share their source)
    # weights are quantized at their layer's w_bits (Program.layers), per output channel or
    # with one scale per tensor
    per_channel_weights: bool = True
    # MAC sums are first requantized to this many bits (at the output's range, with
    # preactivation_bits - a_bits more fractional bits), then activated and requantized to
    # the output (NDP120's 16-bit pre-activation); 0, or >= the output's bits: one step
    preactivation_bits: int = 0
    # the quantized model's own weights and biases (frontend.quantized.ModelQuant): bind uses
    # them as they are and reproduces onnxruntime's quantized kernels (sim/ort_bind.py)
    model: Any = None


@dataclass
class Params:
    desc: np.ndarray
    fparams: np.ndarray  # float32
    weights: np.ndarray  # int32 (integer datapath) or float32
    mem: np.ndarray  # initial arena: constants written; int32 or float32
    float_mode: bool
    const_spans: tuple[tuple[int, int], ...] = ()  # where mem holds constants (zeros elsewhere)

    def fresh_arena(self) -> np.ndarray:
        """A copy of the initial arena, cheaper than mem.copy() on a large model: fresh zero
        pages plus the constants, not a read and write of every activation's region."""
        if not self.const_spans:
            return self.mem.copy()
        arena = np.zeros(self.mem.shape, self.mem.dtype)  # calloc: pages zeroed on first use
        for a, b in self.const_spans:
            arena[a:b] = self.mem[a:b]
        return arena


def _set(desc: np.ndarray, row: int, kind: str, **values: int) -> None:
    cols = DESC_FIELDS[kind]
    for k, v in values.items():
        desc[row, cols[k]] = v


def _act_params(program: Program, kind: str, row: int, node_attrs, fparams, sy: float) -> None:
    act = node_attrs.get("fused_act")
    d = program.desc[row]
    code = int(d[DESC_FIELDS[kind]["act"]])
    if code == Act.NONE:
        return
    p0, p1 = int(d[DESC_FIELDS[kind]["act_p0"]]), int(d[DESC_FIELDS[kind]["act_p1"]])
    if code == Act.CLIP:
        fparams[p0], fparams[p1] = act[1] / sy, act[2] / sy
    elif code == Act.LEAKY_RELU:
        fparams[p0] = act[1]


def _quantize_weights(
    w: np.ndarray, bits: int, per_channel: bool, out: np.ndarray
) -> np.ndarray:
    """Symmetric quantization of w [cout, K] with one scale per output channel (row) or one for
    the whole tensor, written into `out` (flat, integer); returns the scale per row. One bit
    is binary: sign(w) x mean|w| (the two levels a 1-bit cell holds)."""
    if bits == 1:
        w = np.asarray(w, np.float64)
        scale = np.broadcast_to(np.abs(w).mean(axis=1 if per_channel else None), (w.shape[0],))
        out[:] = np.where(w >= 0, 1, -1).reshape(-1)
        return np.where(scale > 0, scale, 1.0)
    return _quantize_rows(np.ascontiguousarray(w), (1 << (bits - 1)) - 1, per_channel, out)


@njit(cache=True)
def _quantize_rows(w, qmax, per_channel, out):
    """out[r * K + c] = clip(rint(w[r, c] / scale[r]), -qmax, qmax), scale = max|w| / qmax per
    row (or of the whole tensor), in float64 whatever w's float type: two passes over the
    weights and no temporaries, where numpy would make several tensor-sized copies."""
    rows, cols = w.shape
    amax = np.zeros(rows)
    for r in range(rows):
        m = 0.0
        for c in range(cols):
            m = max(m, abs(np.float64(w[r, c])))
        amax[r] = m
    if not per_channel and rows:
        amax[:] = amax.max()
    scale = np.where(amax > 0, amax / qmax, 1.0)
    for r in range(rows):
        s = scale[r]
        for c in range(cols):
            q = np.rint(np.float64(w[r, c]) / s)
            out[r * cols + c] = min(max(q, -qmax), qmax)
    return scale


def bind(program: Program, plan: QuantPlan | None) -> Params:
    """Parameters for the float datapath (`plan` None) or the integer one."""
    g = program.graph
    nodes = {n.name: n for n in g.nodes}
    float_mode = plan is None
    ftype = np.float32 if float_mode else np.int32
    desc = program.desc.copy()
    fparams = np.zeros(program.fparam_size, dtype=np.float32)
    ort = None if float_mode or plan.model is None else OrtBinder(program, plan, desc)
    weights = np.zeros(program.weight_size, dtype=ftype)
    mem = np.zeros(program.mem_size, dtype=ftype)
    w_bits = {lay.name: lay.w_bits for lay in program.layers if lay.kind == "mac"}
    spans: list[tuple[int, int]] = [(0, 0)]  # (0, 0): a model without constants is zeros

    def q(name: str) -> QParams:
        return QParams(1.0, 0, 0, 0) if float_mode else plan.tensors[name]

    for bd in program.bindings:
        if bd.kind == "lut":  # a function-unit table: samples, first sample, 1/step
            lo, hi, size = LUTS[bd.node]
            base = bd.slots["base"]
            fparams[base : base + size] = lut_values(bd.node)
            fparams[base + size] = lo
            fparams[base + size + 1] = (size - 1) / (hi - lo)
            continue
        if bd.kind in ("const", "pad_value"):
            if bd.kind == "const":
                values = np.asarray(g.constants[bd.output], np.float64).reshape(-1)
                qp = q(bd.output)
            else:
                node = nodes[bd.node]
                values = np.array([_pad_value(g, node)])
                qp = q(bd.output)
            p = program.placements[bd.inputs[0]]
            mem[p.addr : p.addr + values.size] = values if float_mode else qp.quantize(values)
            spans.append((p.addr, p.addr + values.size))
            continue
        node = nodes[bd.node]
        y = q(bd.output)
        if bd.kind == "conv":
            geom = geometry(g, node)
            w = weight_matrix(g, node, geom, None)  # its own float type: no float64 copy
            bias = bias_vector(g, node, geom)
            x = q(bd.inputs[0])
            s = bd.slots
            n = w.size
            if float_mode:
                weights[s["w_base"] : s["w_base"] + n] = w.reshape(-1)
                if bias is not None:
                    weights[s["bias_base"] : s["bias_base"] + geom.cout] = bias
                fparams[s["scale_base"] : s["scale_base"] + geom.cout] = 1.0
            elif ort is not None:
                ort.conv(bd, node, geom, x, y, weights, fparams)
            else:
                out = weights[s["w_base"] : s["w_base"] + n]
                sw = _quantize_weights(w, w_bits[node.name], plan.per_channel_weights, out)
                if bias is not None:
                    bq = np.clip(np.rint(bias / (x.scale * sw)), -(2**31), 2**31 - 1)
                    weights[s["bias_base"] : s["bias_base"] + geom.cout] = bq
                out_bits = program.placements[bd.output].bits
                pre = plan.preactivation_bits
                step = 2.0 ** (out_bits - pre) if pre > out_bits else 1.0  # s_pre / s_y
                fparams[s["scale_base"] : s["scale_base"] + geom.cout] = (
                    x.scale * sw / (y.scale * step)
                )
                if pre > out_bits:
                    fparams[program.desc[bd.desc, DESC_FIELDS["conv"]["pre_r"]]] = step
                    _set(desc, bd.desc, "conv", pre_max=(1 << (pre - 1)) - 1)
            _set(
                desc,
                bd.desc,
                "conv",
                in_zp=x.zero_point,
                out_zp=y.zero_point,
                qmin=y.qmin,
                qmax=y.qmax,
            )
            _act_params(program, "conv", bd.desc, node.attrs, fparams, y.scale)
        elif bd.kind == "eltwise":
            a, b = q(bd.inputs[0]), q(bd.inputs[1])
            if ort is not None and node.op_type != "Mul":
                ort.add(bd, a, b, y, fparams)
            elif node.op_type == "Mul":
                fparams[bd.slots["ra"]] = a.scale * b.scale / y.scale
            else:  # Sub is an Add of the negated second operand
                fparams[bd.slots["ra"]] = a.scale / y.scale
                sign = -1.0 if node.op_type == "Sub" else 1.0
                fparams[bd.slots["rb"]] = sign * b.scale / y.scale
            _set(
                desc,
                bd.desc,
                "eltwise",
                za=a.zero_point,
                zb=b.zero_point,
                zy=y.zero_point,
                qmin=y.qmin,
                qmax=y.qmax,
            )
            _act_params(program, "eltwise", bd.desc, node.attrs, fparams, y.scale)
        elif bd.kind in ("pool", "copy"):
            x = q(bd.inputs[0])
            fparams[bd.slots["r"]] = x.scale / y.scale
            if ort is not None:
                ort.pool_or_copy(bd, x, y, fparams)
            _set(
                desc,
                bd.desc,
                bd.kind,
                zx=x.zero_point,
                zy=y.zero_point,
                qmin=y.qmin,
                qmax=y.qmax,
            )
            attrs = node.attrs
            if bd.kind == "copy" and node.op_type in ("Relu", "Clip", "LeakyRelu"):
                attrs = {"fused_act": activation_of(g, node)}
            _act_params(program, bd.kind, bd.desc, attrs, fparams, y.scale)
        elif bd.kind == "func":
            x = q(bd.inputs[0])
            s = bd.slots
            fparams[s["sx"]], fparams[s["ry"]] = x.scale, 1.0 / y.scale
            fparams[s["p0"]], fparams[s["p1"]], fparams[s["p2"]] = func_params(g, node)
            _set(desc, bd.desc, "func", zx=x.zero_point, zy=y.zero_point, qmin=y.qmin, qmax=y.qmax)
        elif bd.kind == "softmax":
            x = q(bd.inputs[0])
            fparams[bd.slots["sx"]] = x.scale
            fparams[bd.slots["sy"]] = y.scale
            _set(
                desc, bd.desc, "softmax", zx=x.zero_point, zy=y.zero_point, qmin=y.qmin, qmax=y.qmax
            )
            if ort is not None:
                ort.softmax(bd, x, y, fparams)
    if ort is not None:
        fparams = np.concatenate([fparams, np.asarray(ort.extra, np.float32)])
    return Params(desc, fparams, weights, mem, float_mode, tuple(spans))


def _pad_value(g, node) -> float:
    if g.opset >= 11:
        name = node.inputs[2] if len(node.inputs) > 2 else ""
        return float(np.asarray(g.constants[name]).reshape(-1)[0]) if name else 0.0
    return float(node.attrs.get("value", 0.0) or 0.0)
