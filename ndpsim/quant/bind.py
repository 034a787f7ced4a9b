"""Fill a Program's parameters: weights, biases, requantization scales, zero points and
constants — either as floats (the float datapath: calibration, op-level checks) or as
integers for a QuantPlan (the integer datapath the machine runs)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ndpsim.isa import DESC_FIELDS, Act
from ndpsim.lower.bindings import (
    Binding,
    ConstBinding,
    ConvBinding,
    CopyBinding,
    EltwiseBinding,
    FillBinding,
    FuncBinding,
    MatmulBinding,
    PoolBinding,
    SoftmaxBinding,
    TableBinding,
)
from ndpsim.lower.program import Program
from ndpsim.lower.tiling import bias_vector, weight_matrix
from ndpsim.quant.ort_bind import OrtBinder
from ndpsim.quant.params import QParams, QuantPlan


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


def _quantize_weights(w: np.ndarray, bits: int, per_channel: bool, out: np.ndarray) -> np.ndarray:
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
    if not per_channel:
        whole = 0.0
        for r in range(rows):
            whole = max(whole, amax[r])
        amax[:] = whole
    scale = np.ones(rows)
    for r in range(rows):
        if amax[r] > 0:
            scale[r] = amax[r] / qmax
    for r in range(rows):
        s = scale[r]
        for c in range(cols):
            q = np.rint(np.float64(w[r, c]) / s)
            out[r * cols + c] = min(max(q, -qmax), qmax)
    return scale


@dataclass
class _Binder:
    """The arrays being filled and what every binding reads: the program, the plan (None:
    float datapath) and onnxruntime's kernels for an imported quantized model."""

    program: Program
    plan: QuantPlan | None
    desc: np.ndarray
    fparams: np.ndarray
    weights: np.ndarray
    mem: np.ndarray
    ort: OrtBinder | None
    spans: list[tuple[int, int]]  # where the arena holds constants

    def __post_init__(self) -> None:
        self.nodes = {n.name: n for n in self.program.graph.nodes}
        self.layer_w_bits = {ly.name: ly.w_bits for ly in self.program.layers if ly.kind == "mac"}

    @property
    def float_mode(self) -> bool:
        return self.plan is None

    def q(self, name: str) -> QParams:
        return QParams(1.0, 0, 0, 0) if self.plan is None else self.plan.tensors[name]

    def quant_fields(self, bd: Binding, kind: str, x: QParams, y: QParams) -> None:
        """Zero points and the output's saturation bounds (descriptors with zx / zy)."""
        _set(self.desc, bd.desc, kind, zx=x.zero_point, zy=y.zero_point, qmin=y.qmin,
             qmax=y.qmax)  # fmt: skip

    def act(self, bd: Binding, kind: str, y: QParams) -> None:
        """A fused activation's parameters, in the output's quantized domain."""
        d = self.program.desc[bd.desc]
        code = int(d[DESC_FIELDS[kind]["act"]])
        if code == Act.NONE:
            return
        p0, p1 = int(d[DESC_FIELDS[kind]["act_p0"]]), int(d[DESC_FIELDS[kind]["act_p1"]])
        if code == Act.CLIP:
            self.fparams[p0], self.fparams[p1] = bd.act[1] / y.scale, bd.act[2] / y.scale
        elif code == Act.LEAKY_RELU:
            self.fparams[p0] = bd.act[1]


def _table(b: _Binder, bd: TableBinding) -> None:
    """A function-unit table: samples, first sample, 1/step."""
    base, size = bd.slots["base"], bd.values.size
    b.fparams[base : base + size] = bd.values
    b.fparams[base + size] = bd.lo
    b.fparams[base + size + 1] = (size - 1) / (bd.hi - bd.lo)


def _stored(b: _Binder, bd: Binding, values: np.ndarray) -> None:
    """Values placed in the arena before the run (constants, pad values)."""
    p = b.program.placements[bd.inputs[0]]
    qp = b.q(bd.inputs[0] if isinstance(bd, ConstBinding) else bd.output)
    b.mem[p.addr : p.addr + values.size] = values if b.float_mode else qp.quantize(values)
    b.spans.append((p.addr, p.addr + values.size))


def _const(b: _Binder, bd: ConstBinding) -> None:
    _stored(b, bd, np.asarray(b.program.graph.constants[bd.output], np.float64).reshape(-1))


def _fill(b: _Binder, bd: FillBinding) -> None:
    _stored(b, bd, np.array([bd.value]))


def _conv(b: _Binder, bd: ConvBinding) -> None:
    g, geom, s = b.program.graph, bd.geom, bd.slots
    node = b.nodes[bd.node]
    x, y = b.q(bd.inputs[0]), b.q(bd.output)
    w = weight_matrix(g, node, geom, None)  # its own float type: no float64 copy
    bias = bias_vector(g, node, geom)
    n = w.size
    if b.float_mode:
        b.weights[s["w_base"] : s["w_base"] + n] = w.reshape(-1)
        if bias is not None:
            b.weights[s["bias_base"] : s["bias_base"] + geom.cout] = bias
        b.fparams[s["scale_base"] : s["scale_base"] + geom.cout] = 1.0
    elif b.ort is not None:
        b.ort.conv(bd, node, geom, x, y, b.weights, b.fparams)
    else:
        out = b.weights[s["w_base"] : s["w_base"] + n]
        w_bits = b.layer_w_bits[bd.node]
        sw = _quantize_weights(w, w_bits, b.plan.per_channel_weights, out)
        if bias is not None:
            bq = np.clip(np.rint(bias / (x.scale * sw)), -(2**31), 2**31 - 1)
            b.weights[s["bias_base"] : s["bias_base"] + geom.cout] = bq
        out_bits = b.program.placements[bd.output].bits
        pre = b.plan.preactivation_bits
        step = 2.0 ** (out_bits - pre) if pre > out_bits else 1.0  # s_pre / s_y
        b.fparams[s["scale_base"] : s["scale_base"] + geom.cout] = x.scale * sw / (y.scale * step)
        if pre > out_bits:
            b.fparams[b.program.desc[bd.desc, DESC_FIELDS["conv"]["pre_r"]]] = step
            _set(b.desc, bd.desc, "conv", pre_max=(1 << (pre - 1)) - 1)
    _set(b.desc, bd.desc, "conv", in_zp=x.zero_point, out_zp=y.zero_point, qmin=y.qmin,
         qmax=y.qmax)  # fmt: skip
    b.act(bd, "conv", y)


def _eltwise(b: _Binder, bd: EltwiseBinding) -> None:
    a, c, y = b.q(bd.inputs[0]), b.q(bd.inputs[1]), b.q(bd.output)
    if bd.op in ("compare", "logic"):  # real values compared; a bool out (isa.toml)
        b.fparams[bd.slots["ra"]], b.fparams[bd.slots["rb"]] = a.scale, c.scale
    elif bd.op == "select":  # the then operand requantized to the output
        b.fparams[bd.slots["rb"]] = c.scale / y.scale
    elif b.ort is not None and bd.op in ("add", "sub"):
        b.ort.add(bd, a, c, y, b.fparams)
    elif bd.op == "mul":
        b.fparams[bd.slots["ra"]] = a.scale * c.scale / y.scale
    elif bd.op == "div":
        b.fparams[bd.slots["ra"]] = a.scale / (c.scale * y.scale)
    elif bd.op in ("max", "min"):  # both operands in the output's units, then compared
        b.fparams[bd.slots["ra"]] = a.scale / y.scale
        b.fparams[bd.slots["rb"]] = c.scale / y.scale
    else:  # Sub is an Add of the negated second operand
        b.fparams[bd.slots["ra"]] = a.scale / y.scale
        sign = -1.0 if bd.op == "sub" else 1.0
        b.fparams[bd.slots["rb"]] = sign * c.scale / y.scale
    _set(b.desc, bd.desc, "eltwise", za=a.zero_point, zb=c.zero_point, zy=y.zero_point,
         qmin=y.qmin, qmax=y.qmax)  # fmt: skip
    b.act(bd, "eltwise", y)


def _matmul(b: _Binder, bd: MatmulBinding) -> None:
    """y = (A - za)(B - zb) x sa sb / sy: QLinearMatMul's requantization."""
    a, c, y = b.q(bd.inputs[0]), b.q(bd.inputs[1]), b.q(bd.output)
    f32 = np.float32  # an imported model: onnxruntime's float32 f32(sa sb) / sy
    exact = f32(f32(a.scale) * f32(c.scale)) / f32(y.scale) if b.ort is not None else None
    b.fparams[bd.slots["r"]] = a.scale * c.scale / y.scale if exact is None else exact
    _set(b.desc, bd.desc, "matmul", za=a.zero_point, zb=c.zero_point, zy=y.zero_point,
         qmin=y.qmin, qmax=y.qmax)  # fmt: skip
    b.act(bd, "matmul", y)


def _rescale(b: _Binder, bd: PoolBinding | CopyBinding) -> None:
    kind = "pool" if isinstance(bd, PoolBinding) else "copy"
    x, y = b.q(bd.inputs[0]), b.q(bd.output)
    b.fparams[bd.slots["r"]] = x.scale / y.scale
    if b.ort is not None:
        b.ort.pool_or_copy(bd, x, y, b.fparams)
    b.quant_fields(bd, kind, x, y)
    b.act(bd, kind, y)


def _func(b: _Binder, bd: FuncBinding) -> None:
    x, y, s = b.q(bd.inputs[0]), b.q(bd.output), bd.slots
    b.fparams[s["sx"]], b.fparams[s["ry"]] = x.scale, 1.0 / y.scale
    b.fparams[s["p0"]], b.fparams[s["p1"]], b.fparams[s["p2"]] = bd.params
    b.quant_fields(bd, "func", x, y)


def _softmax(b: _Binder, bd: SoftmaxBinding) -> None:
    x, y = b.q(bd.inputs[0]), b.q(bd.output)
    b.fparams[bd.slots["sx"]] = x.scale
    b.fparams[bd.slots["sy"]] = y.scale
    b.quant_fields(bd, "softmax", x, y)
    if b.ort is not None:
        b.ort.softmax(bd, x, y, b.fparams)


_BINDERS = {
    TableBinding: _table,
    ConstBinding: _const,
    FillBinding: _fill,
    ConvBinding: _conv,
    EltwiseBinding: _eltwise,
    MatmulBinding: _matmul,
    PoolBinding: _rescale,
    CopyBinding: _rescale,
    FuncBinding: _func,
    SoftmaxBinding: _softmax,
}


def bind(program: Program, plan: QuantPlan | None) -> Params:
    """Parameters for the float datapath (`plan` None) or the integer one."""
    ftype = np.float32 if plan is None else np.int32
    desc = program.desc.copy()
    b = _Binder(
        program,
        plan,
        desc,
        np.zeros(program.fparam_size, dtype=np.float32),
        np.zeros(program.weight_size, dtype=ftype),
        np.zeros(program.mem_size, dtype=ftype),
        None if plan is None or plan.model is None else OrtBinder(program, plan, desc),
        [(0, 0)],  # (0, 0): a model without constants is zeros
    )
    for bd in program.bindings:
        _BINDERS[type(bd)](b, bd)
    fparams = b.fparams
    if b.ort is not None:
        fparams = np.concatenate([fparams, np.asarray(b.ort.extra, np.float32)])
    return Params(desc, fparams, b.weights, b.mem, plan is None, tuple(b.spans))
