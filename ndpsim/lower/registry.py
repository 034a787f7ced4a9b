"""The op registry: one entry per ONNX op ndpsim accepts, and the only list of them.

An entry says how the machine runs the op — on the macros, on the vector unit, as an alias
of its input's buffer, or rewritten into other ops by a graph pass before lowering — and
holds everything op-specific the pipeline needs: the emitter the lowering calls, which inputs
are activations, the estimator's kernel type, the quantization rule of its output, whether a
following activation can join its output stage, and the inputs the ONNX backend binds as
parameters. `lower()` is a lookup here; the frontend, the precision rules, the passes, the
quantizer and the ONNX backend read the same table.

Adding an op whose machine form already exists (an element-wise op, a copy, a function-unit
function) is one entry here plus its test; docs/architecture.md, "How to add an ONNX op".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ndpsim.errors import UnsupportedOpError
from ndpsim.ir import Graph, Node
from ndpsim.isa import FuncKind
from ndpsim.lower import funcs as F
from ndpsim.lower import vector as V
from ndpsim.lower import vector_logic as VL
from ndpsim.lower import vector_ops as VO
from ndpsim.lower.activations import activation_of
from ndpsim.lower.bindings import Binding, FillBinding
from ndpsim.lower.context import NodeContext
from ndpsim.lower.mac_layer import emit_mac_node
from ndpsim.lower.matmul import emit_matmul

Emitter = Callable[[NodeContext], list[Binding]]


def first_input(g: Graph, node: Node) -> list[str]:
    """The op reads its first input as an activation (the others are constants: weights,
    shapes, bounds, indices)."""
    return [node.inputs[0]]


def every_input(g: Graph, node: Node) -> list[str]:
    """The op reads all its (given) inputs as activations."""
    return [i for i in node.inputs if i]


@dataclass(frozen=True)
class OpEntry:
    """How one ONNX op runs on the machine (module docstring)."""

    unit: str  # "macro" | "vector" | "alias" (shares its input's buffer) | "rewrite" (a pass)
    emit: Emitter | None = None  # the lowering rule ("macro" and "vector" ops)
    reads: Callable[[Graph, Node], list[str]] = first_input
    kernel_type: str = "copy"  # the estimator's kernel type ("macro" ops: by geometry)
    # quantization of the output when the model does not state it: "calibrated" (its own
    # range), "unit" (a probability: [0, 1]), "input" (the input's values moved: the
    # input's scale and zero point), "bool" (0 / 1 at scale 1)
    output_range: str = "calibrated"
    fuses_activation: bool = False  # a following Relu / Clip / LeakyRelu joins its output stage
    param_inputs: tuple[int, ...] = ()  # inputs taken as parameters (weights, shapes, ...)
    rewrite: str = ""  # "rewrite" ops: the pass that replaces them (lower/passes.py)
    # the op's form when an operand is computed at run time, where this entry needs a
    # constant (`constant_inputs`): MatMul of two activations runs on the vector unit
    dynamic: OpEntry | None = None
    constant_inputs: tuple[int, ...] = ()
    func: F.Func | None = None  # function-unit ops: the function (lower/funcs.py)


def _eltwise(ctx: NodeContext) -> list[Binding]:
    """Add / Sub / Mul / Div / Sum / Max / Min: a chain of two-operand ops into the output
    buffer (Sum, Max, Min of one input are a copy)."""
    node, out = ctx.node, []
    if len(ctx.ins) == 1:
        return [V.emit_unary(ctx.vec, node, ctx.x, ctx.y, ctx.in_names[0], ctx.act)]
    acc_name, acc = ctx.in_names[0], ctx.x
    for j in range(1, len(ctx.ins)):
        last = j == len(ctx.ins) - 1
        out.append(V.emit_eltwise(ctx.vec, node, acc, ctx.ins[j], ctx.y, acc_name,
                                  ctx.in_names[j], ctx.act if last else None))  # fmt: skip
        acc_name, acc = node.outputs[0], ctx.y
    return out


def _activation(ctx: NodeContext) -> list[Binding]:
    """A Relu / Clip / LeakyRelu that did not fuse into its producer: a copy through the
    output stage."""
    act = activation_of(ctx.g, ctx.node)
    if act is None:
        raise UnsupportedOpError(f"{ctx.node.op_type} {ctx.node.name!r}: bounds must be constants")
    return [V.emit_unary(ctx.vec, ctx.node, ctx.x, ctx.y, ctx.node.inputs[0], act)]


def _pad_value(g: Graph, node: Node) -> float:
    if g.opset >= 11:
        name = node.inputs[2] if len(node.inputs) > 2 else ""
        return float(np.asarray(g.constants[name]).reshape(-1)[0]) if name else 0.0
    return float(node.attrs.get("value", 0.0) or 0.0)


def _pad(ctx: NodeContext) -> list[Binding]:
    """Constant Pad: fill the output with the pad value, copy the input into its centre;
    reflect / edge: mirror copies."""
    g, node = ctx.g, ctx.node
    if node.attrs.get("mode") in ("reflect", "edge"):
        return VO.emit_pad_mirror(ctx.vec, g, node, ctx.x, ctx.y)
    fill_name = f"{node.name}.pad_value"
    fill = ctx.scratch(fill_name, (1,), ctx.y.bits)
    value = FillBinding(-1, node.name, (fill_name,), node.outputs[0], value=_pad_value(g, node))
    return [value, *V.emit_pad(ctx.vec, g, node, ctx.x, ctx.y, (fill_name, fill))]


def _split(ctx: NodeContext) -> list[Binding]:
    outs = [(o, ctx.place(o)) for o in ctx.node.outputs if o]
    return VO.emit_split(ctx.vec, ctx.node, ctx.x, outs)


def _with_graph(emitter) -> Emitter:
    """An emitter of the form f(vec, g, node, x, y), returning one binding or a list."""

    def emit(ctx: NodeContext) -> list[Binding]:
        out = emitter(ctx.vec, ctx.g, ctx.node, ctx.x, ctx.y)
        return out if isinstance(out, list) else [out]

    return emit


def _pool(ctx: NodeContext) -> list[Binding]:
    return [V.emit_pool(ctx.vec, ctx.g, ctx.node, ctx.x, ctx.y, ctx.act)]


def _transpose(ctx: NodeContext) -> list[Binding]:
    return V.emit_transpose(ctx.vec, ctx.node, ctx.x, ctx.y, ctx.act)


def _concat(ctx: NodeContext) -> list[Binding]:
    return V.emit_concat(ctx.vec, ctx.node, list(zip(ctx.in_names, ctx.ins, strict=True)), ctx.y)


_MAC = {"unit": "macro", "emit": emit_mac_node, "fuses_activation": True}
_ELTWISE = {"unit": "vector", "emit": _eltwise, "reads": every_input}
_ACT = {"unit": "vector", "emit": _activation}


def _func(func: F.Func, **fields) -> OpEntry:
    """A function-unit op: y = F(x) element-wise (lower/funcs.py)."""
    return OpEntry("vector", lambda ctx: F.emit_func(ctx, func), func=func, **fields)


def _table(f, lo: float, hi: float, entries: int, slopes=(0.0, 0.0)) -> OpEntry:
    """A function-unit op by table: `entries` samples of the float64 function `f` over
    [lo, hi], continued beyond with `slopes` (lower/funcs.py `Table`)."""
    return _func(F.table_func(F.Table(f, lo, hi, entries, slopes)))


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


# Tables: interpolation error h^2/8 * max|f''| (docs/machine_model.md, "Function unit"), the
# function beyond the range within 2.3e-7 of the end sample (or of y = x for GELU's upper
# tail: slope 1).
_GELU = F.Table(_gelu, -6.0, 6.0, 1025, (0.0, 1.0))
_GELU_TANH = F.Table(_gelu_tanh, -6.0, 6.0, 1025, (0.0, 1.0))
_ALIAS = {"unit": "alias", "output_range": "input"}
_LOGIC = {"unit": "vector", "emit": VL.emit_logic, "reads": every_input, "kernel_type": "add",
          "output_range": "bool"}  # fmt: skip
_MATMUL_OF_ACTIVATIONS = OpEntry("vector", emit_matmul, reads=every_input, kernel_type="matmul",
                                 fuses_activation=True)  # fmt: skip

OPS: dict[str, OpEntry] = {
    # MAC layers: weights stationary on the macros
    "Conv": OpEntry(**_MAC, param_inputs=(1, 2)),
    "Gemm": OpEntry(**_MAC, param_inputs=(1, 2)),
    # a constant right-hand side: weights on the macros; two activations: the vector unit
    "MatMul": OpEntry(**_MAC, constant_inputs=(1,), dynamic=_MATMUL_OF_ACTIVATIONS),
    # the vector unit: element-wise, activations, functions, pooling, softmax, data movement
    "Add": OpEntry(**_ELTWISE, kernel_type="add", fuses_activation=True),
    "Sub": OpEntry(**_ELTWISE, kernel_type="add", fuses_activation=True),
    "Mul": OpEntry(**_ELTWISE, kernel_type="mul", fuses_activation=True),
    "Sum": OpEntry(**_ELTWISE, kernel_type="add"),
    "Greater": OpEntry(**_LOGIC),
    "Less": OpEntry(**_LOGIC),
    "Equal": OpEntry(**_LOGIC),
    "GreaterOrEqual": OpEntry(**_LOGIC),
    "LessOrEqual": OpEntry(**_LOGIC),
    "And": OpEntry(**_LOGIC),
    "Or": OpEntry(**_LOGIC),
    "Not": OpEntry(**_LOGIC),
    "Where": OpEntry("vector", VL.emit_where, reads=every_input, kernel_type="add"),
    "Max": OpEntry(**_ELTWISE, kernel_type="add"),
    "Min": OpEntry(**_ELTWISE, kernel_type="add"),
    # a constant divisor is a Mul by its reciprocal (decompose_ops); else ELTWISE DIV
    "Div": OpEntry(**_ELTWISE, kernel_type="mul", rewrite="decompose_ops"),
    "Relu": OpEntry(**_ACT),
    "Clip": OpEntry(**_ACT, param_inputs=(1, 2)),
    "LeakyRelu": OpEntry(**_ACT),
    "Sigmoid": _table(lambda x: 1.0 / (1.0 + np.exp(-x)), -16.0, 16.0, 2049),
    "Tanh": _table(np.tanh, -8.0, 8.0, 2049),
    "Erf": _table(_erf, -4.0, 4.0, 1025),
    "Gelu": _func(F.table_func(attr="approximate", none=_GELU, tanh=_GELU_TANH)),
    "HardSigmoid": _func(F.Func(FuncKind.HARD_SIGMOID, 2, F.hard_sigmoid_params)),
    "HardSwish": _func(F.Func(FuncKind.HARD_SWISH, 3, F.hard_swish_params)),
    "Sqrt": _func(F.Func(FuncKind.SQRT, 4)),
    "Pow": _func(F.Func(FuncKind.POW, 6, F.pow_params), param_inputs=(1,)),
    "Exp": _func(F.Func(FuncKind.EXP, 4)),
    "Log": _func(F.Func(FuncKind.LOG, 4)),
    "Reciprocal": _func(F.Func(FuncKind.RECIPROCAL, 4)),
    "Abs": _func(F.Func(FuncKind.ABS, 1)),
    "Neg": _func(F.Func(FuncKind.NEG, 1)),
    "MaxPool": OpEntry(
        "vector", _pool, kernel_type="pool", output_range="input", fuses_activation=True
    ),  # fmt: skip
    "AveragePool": OpEntry("vector", _pool, kernel_type="pool", fuses_activation=True),
    "GlobalAveragePool": OpEntry("vector", _pool, kernel_type="gap", fuses_activation=True),
    "ReduceMean": OpEntry("vector", _with_graph(VO.emit_reduce), param_inputs=(1,)),
    "ReduceSum": OpEntry("vector", _with_graph(VO.emit_reduce), param_inputs=(1,)),
    "ReduceMax": OpEntry("vector", _with_graph(VO.emit_reduce), output_range="input",
                         param_inputs=(1,)),  # fmt: skip
    "Softmax": OpEntry(
        "vector", _with_graph(V.emit_softmax), kernel_type="softmax", output_range="unit"
    ),  # fmt: skip
    "Transpose": OpEntry("vector", _transpose, output_range="input", fuses_activation=True),
    "Concat": OpEntry("vector", _concat, reads=every_input),
    "Pad": OpEntry("vector", _pad, param_inputs=(1, 2, 3)),
    "Slice": OpEntry("vector", _with_graph(VO.emit_slice), param_inputs=(1, 2, 3, 4)),
    "Split": OpEntry("vector", _split, param_inputs=(1,)),
    "Gather": OpEntry("vector", _with_graph(VO.emit_gather), param_inputs=(1,)),
    "Resize": OpEntry("vector", _with_graph(VO.emit_resize), param_inputs=(1, 2, 3)),
    # views of their input's buffer
    "Reshape": OpEntry(**_ALIAS, param_inputs=(1,)),
    "Flatten": OpEntry(**_ALIAS),
    "Squeeze": OpEntry(**_ALIAS, param_inputs=(1,)),
    "Unsqueeze": OpEntry(**_ALIAS, param_inputs=(1,)),
    # forwarded (a graph output keeps one as an alias), or rewritten into the ops above
    "Identity": OpEntry(**_ALIAS, rewrite="remove_identities"),
    "Dropout": OpEntry(**_ALIAS, param_inputs=(1, 2), rewrite="remove_identities"),
    "BatchNormalization": OpEntry("rewrite", param_inputs=(1, 2, 3, 4), rewrite="fold_batchnorm"),
    "LSTM": OpEntry("rewrite", param_inputs=(1, 2, 3, 4, 7), rewrite="decompose_recurrent"),
    "GRU": OpEntry("rewrite", param_inputs=(1, 2, 3, 4), rewrite="decompose_recurrent"),
    "LRN": OpEntry("rewrite", rewrite="decompose_normalization"),
    "LayerNormalization": OpEntry("rewrite", param_inputs=(1, 2), rewrite="decompose_ops"),
    "Cast": OpEntry("rewrite", rewrite="casts_to_identity"),
}

SUPPORTED_OPS: frozenset[str] = frozenset(OPS)
# ops with a form on the macros (MatMul also has one on the vector unit: `entry`)
MAC_OPS: frozenset[str] = frozenset(op for op, e in OPS.items() if e.unit == "macro")
ALIAS_OPS: frozenset[str] = frozenset(op for op, e in OPS.items() if e.unit == "alias")


def supported_ops_text() -> str:
    """The supported set as one sorted, comma-separated line (for error messages)."""
    return ", ".join(sorted(SUPPORTED_OPS))


def entry(node: Node, g: Graph) -> OpEntry:
    """The node's entry in graph `g` (an op with two forms, MatMul, is told apart by whether
    its `constant_inputs` are constants of `g`); an op outside the registry is refused by
    name."""
    found = OPS.get(node.op_type)
    if found is None:
        raise UnsupportedOpError(f"unsupported op {node.op_type!r} (node {node.name!r}); "
                                 f"ndpsim supports: {supported_ops_text()}")  # fmt: skip
    if found.dynamic is not None and any(
        node.inputs[i] not in g.constants for i in found.constant_inputs if i < len(node.inputs)
    ):
        return found.dynamic
    return found
