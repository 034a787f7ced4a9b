"""Quantized ONNX in: QDQ (QuantizeLinear / DequantizeLinear around float ops) and operator
form (QLinearConv, QLinearMatMul, com.microsoft QGemm / QLinearAdd / QLinearConcat /
QLinearGlobalAveragePool / QLinearAveragePool / QLinearSoftmax).

`split_quantized` rewrites such a model into the float graph the rest of the frontend reads
(Conv, Gemm, Add, ...) plus a `ModelQuant`: every activation's own scale and zero point, the
integer weights and biases. The integer datapath then runs with exactly those numbers
(`sim/model_plan.py`), never re-quantizing them. Forms the machine cannot run exactly are
refused by name (block-quantized, float8, 4/16-bit, dynamic quantization)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ndpsim.errors import UnsupportedOpError
from ndpsim.frontend.messages import quote

MS_DOMAIN = "com.microsoft"
QOPERATOR_OPS = frozenset(
    {"QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd", "QLinearConcat",
     "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearSoftmax"}
)  # fmt: skip
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
# Quantization forms ndpsim recognizes and refuses, with the reason.
REFUSED = {
    "DynamicQuantizeLinear": "dynamic quantization computes scales at run time",
    "DynamicQuantizeMatMul": "dynamic quantization computes scales at run time",
    "MatMulIntegerToFloat": "dynamic quantization computes scales at run time",
    "ConvInteger": "its int32 output has no scale the integer datapath can requantize to",
    "MatMulInteger": "its int32 output has no scale the integer datapath can requantize to",
    "MatMulNBits": "block-quantized weights are not supported",
    "QLinearMul": "not implemented",
    "QLinearLeakyRelu": "not implemented",
    "QLinearSigmoid": "not implemented",
    "QLinearReduceMean": "not implemented",
    "QLinearWhere": "not implemented",
    "QAttention": "not implemented",
}
_INT_TYPES = {TensorProto.UINT8: "uint8", TensorProto.INT8: "int8"}
_RANGE = {"uint8": (0, 255), "int8": (-128, 127)}


@dataclass(frozen=True)
class TensorQ:
    """An activation's quantization as the model states it (scale exactly its float32)."""

    scale: float
    zero_point: int
    dtype: str  # "uint8" or "int8"

    @property
    def qmin(self) -> int:
        return _RANGE[self.dtype][0]

    @property
    def qmax(self) -> int:
        return _RANGE[self.dtype][1]


@dataclass(frozen=True)
class WeightQ:
    """An integer constant: values minus zero point, and float32 scale per channel (or one)."""

    q: np.ndarray  # int64, zero point already subtracted
    scale: np.ndarray  # float32, shape (1,) or (channels,)
    axis: int
    bits: int


@dataclass
class ModelQuant:
    """What a quantized model fixes: activation qparams, integer weights, int32 biases."""

    fmt: str  # "qdq" or "qoperator"
    tensors: dict[str, TensorQ] = field(default_factory=dict)
    weights: dict[str, WeightQ] = field(default_factory=dict)
    biases: dict[str, np.ndarray] = field(default_factory=dict)


def is_quantized(model: onnx.ModelProto) -> bool:
    ops = {n.op_type for n in model.graph.node}
    return bool(ops & (QDQ_OPS | QOPERATOR_OPS | set(REFUSED)))


def _name(node: onnx.NodeProto, i: int) -> str:
    return node.name or f"{node.op_type}_{i}"


def _refuse(node: onnx.NodeProto, i: int, why: str) -> UnsupportedOpError:
    return UnsupportedOpError(
        f"unsupported quantization: {quote(node.op_type)} (node {quote(_name(node, i))}): {why}"
    )


class _Rewriter:
    def __init__(self, model: onnx.ModelProto):
        self.model = model
        g = model.graph
        self.inits = {t.name: t for t in g.initializer}
        self.consts: dict[str, np.ndarray] = {}
        self.alias: dict[str, str] = {}  # quantized/dequantized name -> canonical value name
        self.quant = ModelQuant("qdq")
        self.new_inits: dict[str, np.ndarray] = {}
        self.nodes: list[onnx.NodeProto] = []
        self.used_inits: set[str] = set()
        self.graph_inputs = {i.name for i in g.input} - set(self.inits)
        self.graph_outputs = [o.name for o in g.output]

    def const(self, name: str) -> np.ndarray | None:
        if name in self.consts:
            return self.consts[name]
        t = self.inits.get(name)
        if t is None:
            return None
        if t.data_location == TensorProto.EXTERNAL:
            raise UnsupportedOpError(
                f"quantized model with external data ({quote(name)}) is not supported"
            )
        arr = numpy_helper.to_array(t)
        self.consts[name] = arr
        return arr

    def canon(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def scalar(self, node, i, name: str, what: str) -> np.ndarray:
        arr = self.const(name) if name else None
        if arr is None:
            raise _refuse(node, i, f"{what} must be a constant initializer")
        return arr

    def qparams(self, node, i, scale_name: str, zp_name: str) -> TensorQ:
        s = self.scalar(node, i, scale_name, "the scale")
        if s.dtype != np.float32:
            raise _refuse(node, i, f"scale of type {s.dtype} (float32 is supported)")
        if s.size != 1:
            raise _refuse(node, i, "per-channel activation scales are not supported")
        if zp_name:
            zp = self.scalar(node, i, zp_name, "the zero point")
            dtype = zp.dtype.name
            zpv = int(zp.reshape(-1)[0])
        else:
            dtype, zpv = "uint8", 0
        if dtype not in _RANGE:
            raise _refuse(node, i, f"{dtype} activations (uint8 and int8 are supported)")
        return TensorQ(float(s.reshape(-1)[0]), zpv, dtype)

    def weight(self, node, i, q_name, s_name, zp_name, axis: int, bias: bool = False) -> str:
        """A quantized constant -> a float initializer (its dequantized values) + WeightQ."""
        q = self.scalar(node, i, q_name, "the quantized weight")
        s = self.scalar(node, i, s_name, "the weight scale").astype(np.float32).reshape(-1)
        zp = (
            self.scalar(node, i, zp_name, "the weight zero point").reshape(-1)
            if zp_name
            else np.zeros(1, np.int64)
        )
        if bias:
            if q.dtype != np.int32:
                raise _refuse(node, i, f"bias of type {q.dtype} (int32 is supported)")
        elif q.dtype.name not in _RANGE:
            raise _refuse(node, i, f"{q.dtype} weights (int8 and uint8 are supported)")
        ax = axis if axis >= 0 else axis + max(q.ndim, 1)
        shape = [1] * q.ndim
        if s.size > 1:
            if q.ndim == 0 or q.shape[ax] != s.size:
                raise _refuse(node, i, "weight scale does not match the channel axis")
            shape[ax] = s.size
        qi = q.astype(np.int64) - zp.astype(np.int64).reshape(
            shape if zp.size > 1 else [1] * q.ndim
        )
        real = (qi.astype(np.float32) * s.reshape(shape if s.size > 1 else [1] * q.ndim)).astype(
            np.float32
        )
        name = f"{q_name}__dq"
        self.new_inits[name] = real
        if bias:
            self.quant.biases[name] = qi.reshape(-1)
        else:
            self.quant.weights[name] = WeightQ(qi, s, ax, 8)
        return name

    def set_q(self, name: str, tq: TensorQ, node, i) -> None:
        old = self.quant.tensors.get(name)
        if old is not None and old != tq:
            raise _refuse(
                node, i, f"value {quote(name)} is quantized twice with different parameters"
            )
        self.quant.tensors[name] = tq

    def emit(self, op, inputs, outputs, name, **attrs) -> None:
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))


def _check_qdq(rw: _Rewriter, node, i) -> None:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("block_size", 0):
        raise _refuse(node, i, "block-quantized (block_size) QuantizeLinear/DequantizeLinear")
    zp_name = node.input[2] if len(node.input) > 2 else ""
    if node.op_type == "QuantizeLinear" and len(node.output) and "output_dtype" in attrs:
        if attrs["output_dtype"] not in (0, TensorProto.UINT8, TensorProto.INT8):
            raise _refuse(
                node, i, f"output type {TensorProto.DataType.Name(attrs['output_dtype'])}"
            )
    if zp_name:
        t = rw.inits.get(zp_name)
        if t is not None and t.data_type not in (*_INT_TYPES, TensorProto.INT32):
            raise _refuse(
                node, i,
                f"{TensorProto.DataType.Name(t.data_type)} quantization "
                "(uint8 and int8 are supported)",
            )  # fmt: skip
    if node.op_type == "DequantizeLinear":
        t = rw.inits.get(node.input[0])
        if t is not None and t.data_type not in (*_INT_TYPES, TensorProto.INT32):
            raise _refuse(
                node, i, f"{TensorProto.DataType.Name(t.data_type)} quantization "
                "(uint8 and int8 are supported)",
            )  # fmt: skip


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def split_quantized(model: onnx.ModelProto) -> tuple[onnx.ModelProto, ModelQuant | None]:
    """The float model the frontend reads, and the model's quantization (None if float)."""
    if not is_quantized(model):
        return model, None
    rw = _Rewriter(model)
    g = model.graph
    consumers: dict[str, int] = {}
    for n in g.node:
        for x in n.input:
            consumers[x] = consumers.get(x, 0) + 1
    producer_of = {o: n for n in g.node for o in n.output}
    qop = any(n.op_type in QOPERATOR_OPS for n in g.node)
    rw.quant.fmt = "qoperator" if qop else "qdq"
    for i, node in enumerate(g.node):
        op = node.op_type
        if op in REFUSED:
            raise _refuse(node, i, REFUSED[op])
        if node.domain not in ("", "ai.onnx", MS_DOMAIN):
            continue
        if node.domain == MS_DOMAIN and op not in QOPERATOR_OPS:
            raise _refuse(node, i, "not implemented")
        ins = [rw.canon(x) if x else "" for x in node.input]
        nm = _name(node, i)
        if op in QDQ_OPS:
            _check_qdq(rw, node, i)
            axis = int(_attrs(node).get("axis", 1))
            zp = node.input[2] if len(node.input) > 2 else ""
            if op == "DequantizeLinear" and rw.const(node.input[0]) is not None:
                is_bias = rw.const(node.input[0]).dtype == np.int32
                rw.alias[node.output[0]] = rw.weight(
                    node, i, node.input[0], node.input[1], zp, axis, bias=is_bias
                )
                continue
            if op == "QuantizeLinear" and rw.const(node.input[0]) is not None:
                raise _refuse(node, i, "QuantizeLinear of a constant (quantize it offline)")
            tq = rw.qparams(node, i, node.input[1], zp)
            src = ins[0]
            if op == "QuantizeLinear":
                if src in rw.quant.tensors and rw.quant.tensors[src] != tq:
                    raise _refuse(node, i, "requantizing a quantized value (DQ -> Q chain)")
                prod = producer_of.get(node.input[0])
                if prod is not None and prod.op_type == "DequantizeLinear":
                    pass  # DQ -> Q of the same parameters: one value
                rw.set_q(src, tq, node, i)
            else:
                if src in rw.quant.tensors and rw.quant.tensors[src] != tq:
                    raise _refuse(node, i, "dequantized with parameters other than its own")
                rw.set_q(src, tq, node, i)
            rw.alias[node.output[0]] = src
            continue
        if op in QOPERATOR_OPS:
            _qoperator(rw, node, i, ins, nm)
            continue
        new = onnx.NodeProto()
        new.CopyFrom(node)
        del new.input[:]
        new.input.extend(ins)
        rw.nodes.append(new)
    return _assemble(rw), rw.quant


def _qoperator(rw: _Rewriter, node, i, ins, nm) -> None:
    op = node.op_type
    a = _attrs(node)
    out = node.output[0]
    if op in ("QLinearConv", "QLinearMatMul", "QGemm"):
        x, xs, xz, w, ws, wz = ins[:6]
        rw.set_q(x, rw.qparams(node, i, xs, xz), node, i)
        if op == "QGemm":
            if len(ins) < 9 or not ins[7]:
                raise _refuse(node, i, "QGemm with a float output (no y_scale)")
            if float(a.get("alpha", 1.0)) != 1.0 or int(a.get("transA", 0)):
                raise _refuse(node, i, "QGemm with alpha != 1 or transA")
            trans_b = int(a.get("transB", 0))
            wname = rw.weight(node, i, w, ws, wz, 0 if trans_b else 1)
            bname = rw.weight(node, i, ins[6], xs, "", 0, bias=True) if ins[6] else ""
            _bias_scale(rw, node, i, bname, xs, ws)
            rw.set_q(out, rw.qparams(node, i, ins[7], ins[8] if len(ins) > 8 else ""), node, i)
            rw.emit("Gemm", [x, wname] + ([bname] if bname else []), [out], nm, transB=trans_b)
        elif op == "QLinearMatMul":
            if rw.const(w) is None:  # two activations (attention): the vector unit's MATMUL
                _input_q(rw, node, i, w, ws, wz)
                wname = w
            else:
                wname = rw.weight(node, i, w, ws, wz, -1)
            rw.set_q(out, rw.qparams(node, i, ins[6], ins[7]), node, i)
            rw.emit("MatMul", [x, wname], [out], nm)
        else:
            wname = rw.weight(node, i, w, ws, wz, 0)
            bname = (
                rw.weight(node, i, ins[8], xs, "", 0, bias=True) if len(ins) > 8 and ins[8] else ""
            )
            _bias_scale(rw, node, i, bname, xs, ws)
            rw.set_q(out, rw.qparams(node, i, ins[6], ins[7]), node, i)
            conv_attrs = {k: v for k, v in a.items() if k != "channels_last"}
            rw.emit("Conv", [x, wname] + ([bname] if bname else []), [out], nm, **conv_attrs)
        return
    if a.get("channels_last", 0):
        raise _refuse(node, i, "channels_last layout")
    if op == "QLinearAdd":
        for x, s, z in ((ins[0], ins[1], ins[2]), (ins[3], ins[4], ins[5])):
            _input_q(rw, node, i, x, s, z)
        rw.set_q(out, rw.qparams(node, i, ins[6], ins[7] if len(ins) > 7 else ""), node, i)
        rw.emit("Add", [ins[0], ins[3]], [out], nm)
    elif op == "QLinearConcat":
        rw.set_q(out, rw.qparams(node, i, ins[0], ins[1]), node, i)
        xs = []
        for k in range(2, len(ins), 3):
            _input_q(rw, node, i, ins[k], ins[k + 1], ins[k + 2])
            xs.append(ins[k])
        rw.emit("Concat", xs, [out], nm, axis=int(a["axis"]))
    elif op in ("QLinearGlobalAveragePool", "QLinearAveragePool"):
        _input_q(rw, node, i, ins[0], ins[1], ins[2])
        rw.set_q(out, rw.qparams(node, i, ins[3], ins[4] if len(ins) > 4 else ""), node, i)
        if op == "QLinearGlobalAveragePool":
            rw.emit("GlobalAveragePool", [ins[0]], [out], nm)
        else:
            rw.emit("AveragePool", [ins[0]], [out], nm, **a)
    elif op == "QLinearSoftmax":
        _input_q(rw, node, i, ins[0], ins[1], ins[2])
        rw.set_q(out, rw.qparams(node, i, ins[3], ins[4] if len(ins) > 4 else ""), node, i)
        opset = int(a.get("opset", 13))
        axis = int(a.get("axis", -1 if opset >= 13 else 1))
        if opset < 13:
            raise _refuse(node, i, "opset < 13 softmax semantics (flattening axis)")
        rw.emit("Softmax", [ins[0]], [out], nm, axis=axis)


def _input_q(rw, node, i, x, s, z) -> None:
    if rw.const(x) is not None:
        raise _refuse(node, i, "a constant quantized operand (not implemented)")
    rw.set_q(x, rw.qparams(node, i, s, z), node, i)


def _bias_scale(rw, node, i, bname, xs, ws) -> None:
    """A QLinear bias is int32 at scale x_scale * w_scale: re-derive its float value so."""
    if not bname:
        return
    sx = rw.scalar(node, i, xs, "the input scale").astype(np.float32).reshape(-1)[0]
    sw = rw.scalar(node, i, ws, "the weight scale").astype(np.float32).reshape(-1)
    q = rw.quant.biases[bname]
    rw.new_inits[bname] = (q.astype(np.float32) * (sx * sw)).astype(np.float32)


def _assemble(rw: _Rewriter) -> onnx.ModelProto:
    """The float model: rewritten nodes, graph inputs/outputs renamed to canonical values."""
    m = rw.model
    g = m.graph
    renames: dict[str, str] = {}
    for name in rw.graph_outputs:
        c = rw.canon(name)
        if c != name:
            if c in rw.graph_inputs or c in renames:
                raise UnsupportedOpError(
                    f"quantized model: output {quote(name)} aliases another value; not supported"
                )
            renames[c] = name
    for name in rw.graph_inputs:
        if rw.canon(name) != name:
            raise UnsupportedOpError(f"quantized model: input {quote(name)} is not a float tensor")

    def r(x: str) -> str:
        return renames.get(x, x)

    nodes = []
    for n in rw.nodes:
        new = onnx.NodeProto()
        new.CopyFrom(n)
        new.input[:] = [r(x) for x in n.input]
        new.output[:] = [r(x) for x in n.output]
        nodes.append(new)
    q = rw.quant
    q.tensors = {r(k): v for k, v in q.tensors.items()}
    used = {x for n in nodes for x in n.input}
    inits = [numpy_helper.from_array(v, k) for k, v in rw.new_inits.items() if k in used]
    inits += [t for t in g.initializer if t.name in used and t.name not in rw.new_inits]
    outputs = []
    for o in g.output:
        vi = onnx.ValueInfoProto()
        vi.CopyFrom(o)
        vi.type.tensor_type.elem_type = TensorProto.FLOAT
        outputs.append(vi)
    inputs = [i for i in g.input if i.name not in rw.inits or i.name in used]
    graph = helper.make_graph(nodes, g.name, inputs, outputs, inits)
    opsets = [o for o in m.opset_import if o.domain in ("", "ai.onnx")]
    out = helper.make_model(graph, opset_imports=opsets, ir_version=m.ir_version)
    return out
