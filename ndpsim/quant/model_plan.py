"""The QuantPlan of an imported quantized model: its own scales and zero points for every
value the program stores, no calibration."""

from __future__ import annotations

from ndpsim.errors import UnsupportedOpError
from ndpsim.lower.bindings import FillBinding
from ndpsim.lower.program import Program
from ndpsim.lower.registry import ALIAS_OPS, OPS
from ndpsim.quant.params import QParams, QuantPlan

# Ops whose output is their input's values moved (or a maximum of them): same parameters.
_SAME_PARAMS = frozenset(op for op, e in OPS.items() if e.output_range == "input")


def model_plan(program: Program) -> QuantPlan:
    """Activation parameters as the model states them. For QDQ models int8 activations are run
    as uint8 with zero point + 128, as onnxruntime does on x86 (its QDQ s8->u8 transform):
    the same real values, the same integer arithmetic for MAC layers, and the uint8 variants of
    the add, pool and softmax kernels."""
    g = program.graph
    q = g.quant
    shift = q.fmt == "qdq"
    producers = g.producers()

    def params(name: str) -> QParams | None:
        seen = 0
        while name not in q.tensors and seen < 64:
            node = producers.get(name)
            if node is None or node.op_type not in _SAME_PARAMS:
                return None
            name, seen = node.inputs[0], seen + 1
        tq = q.tensors.get(name)
        if tq is None:
            return None
        if shift and tq.dtype == "int8":
            return QParams(tq.scale, tq.zero_point + 128, 0, 255)
        return QParams(tq.scale, tq.zero_point, tq.qmin, tq.qmax)

    for node in g.nodes:  # an alias shares its input's buffer: it cannot requantize it
        if node.op_type in ALIAS_OPS and node.outputs[0] in q.tensors:
            src, out = params(node.inputs[0]), params(node.outputs[0])
            if src is not None and src != out:
                raise UnsupportedOpError(
                    f"{node.op_type} {node.name!r} changes its input's scale or zero point "
                    "(a requantizing reshape); quantize its input and output alike"
                )
    tensors: dict[str, QParams] = {}
    pad_fill = {bd.inputs[0]: bd.output for bd in program.bindings if isinstance(bd, FillBinding)}
    for name in program.placements:
        if name in pad_fill:
            continue
        p = params(name)
        if p is None:
            raise UnsupportedOpError(
                f"value {name!r} has no quantization parameters in the model (a float value "
                "between quantized ones); quantize it or simulate the float model"
            )
        tensors[name] = p
    for fill, out in pad_fill.items():
        tensors[fill] = tensors[out]
    return QuantPlan(tensors, model=q)
