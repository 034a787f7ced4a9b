"""Constant folding at import: Constant nodes, and FOLDABLE_OPS nodes whose inputs are all
constant (or, for Shape, whose input shape is static) become numpy constants.

Nodes are visited in topological order, so a single pass reaches the fixpoint that
"repeat until nothing changes" would: every producer is folded before its consumers."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import AttributeProto, helper

from ndpsim.errors import ModelError
from ndpsim.frontend.attributes import attribute_value, node_attributes
from ndpsim.frontend.messages import first_line, quote
from ndpsim.frontend.tensors import check_element_count, onnx_elem_type

# Ops evaluated at import when every input is a constant (shape arithmetic in PyTorch
# exports); a node of these with a non-constant input is left to the lowering.
FOLDABLE_OPS: frozenset[str] = frozenset(
    {
        "Constant", "Shape", "Gather", "Cast", "Concat", "Unsqueeze", "Squeeze",
        "Reshape", "Slice", "Add", "Sub", "Mul", "Div", "ConstantOfShape", "Range",
        "Identity", "Transpose", "Flatten", "ReduceProd", "Equal", "Where", "Expand",
        "Pow", "Sqrt", "Neg", "Reciprocal", "Exp", "Log", "Erf", "Max", "Min",
    }
)  # fmt: skip

Shapes = Mapping[str, tuple[tuple[int, ...] | None, np.dtype]]
_BROADCASTING = frozenset({"Add", "Sub", "Mul", "Div", "Equal", "Where"})


def _constant_value(node: onnx.NodeProto, max_elements: int) -> np.ndarray:
    """The value of a Constant node (one of its value_* attributes)."""
    if len(node.attribute) != 1:
        raise ModelError(f"Constant node {quote(node.name)} must have exactly one value attribute")
    attr = node.attribute[0]
    what = f"attribute {quote(attr.name)} of Constant node {quote(node.name)}"
    value = attribute_value(attr, max_elements, what)
    if attr.type == AttributeProto.TENSOR:
        return value
    if attr.type in (AttributeProto.FLOAT, AttributeProto.FLOATS):
        return np.asarray(value, dtype=np.float32)
    if attr.type in (AttributeProto.INT, AttributeProto.INTS):
        return np.asarray(value, dtype=np.int64)
    raise ModelError(f"{what}: string and sparse constants are not supported")


def _shape_of(node: onnx.NodeProto, shape: tuple[int, ...], opset: int) -> np.ndarray:
    """Shape (with opset-15 start/end, clamped like Python slicing per the spec)."""
    attrs = node_attributes(node, opset, 0)
    start = attrs.get("start") or 0
    end = attrs.get("end")
    return np.asarray(shape[start:end], dtype=np.int64)


def _ints(array: np.ndarray, what: str) -> list[int]:
    if array.size > 64 or array.dtype.kind not in "iu":
        raise ModelError(f"{what} is not a small integer shape vector")
    return [int(v) for v in array.ravel()]


def _elements_bound(node: onnx.NodeProto, inputs: list[np.ndarray | None], what: str) -> int:
    """An upper bound of the output elements, computed without allocating the output; used
    when shape inference left the output shape unknown."""
    op = node.op_type
    arrays = [a for a in inputs if a is not None]
    try:
        if op == "ConstantOfShape":
            return math.prod(_ints(arrays[0], f"shape input of {what}"))
        if op == "Expand":
            target = tuple(_ints(arrays[1], f"shape input of {what}"))
            return math.prod(np.broadcast_shapes(arrays[0].shape, target))
        if op == "Range":
            start, limit, delta = (float(a.reshape(-1)[0]) for a in arrays[:3])
            return max(math.ceil((limit - start) / delta), 0) if delta else 0
        if op == "Gather":
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            data, indices = arrays[0], arrays[1]
            rows = data.shape[axis] if data.ndim else 1
            return data.size // max(rows, 1) * indices.size
        if op in _BROADCASTING:
            return math.prod(np.broadcast_shapes(*(a.shape for a in arrays)))
    except (ValueError, IndexError, OverflowError, TypeError) as exc:
        raise ModelError(f"cannot fold {what}: {first_line(exc)}") from None
    return sum(a.size for a in arrays)


def _evaluate(node: onnx.NodeProto, inputs: list[np.ndarray | None], opset: int) -> list:
    """Run one node with onnx's reference evaluator (imported lazily: it is slow to import)."""
    from onnx.reference import ReferenceEvaluator

    names = [n for n in node.input if n]
    graph = helper.make_graph(
        [node], "fold",
        [helper.make_tensor_value_info(n, onnx_elem_type(a.dtype, quote(n)), a.shape)
         for n, a in zip(names, [a for a in inputs if a is not None], strict=True)],
        [helper.make_tensor_value_info(o, 0, None) for o in node.output if o],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    feeds = {n: a for n, a in zip(names, [a for a in inputs if a is not None], strict=True)}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return ReferenceEvaluator(model).run(None, feeds)


def fold_constants(
    nodes: list[onnx.NodeProto],
    constants: dict[str, np.ndarray],
    shapes: Shapes,
    opset: int,
    max_elements: int,
) -> list[onnx.NodeProto]:
    """Fold what can be folded into `constants` (updated in place); returns the other nodes."""
    kept: list[onnx.NodeProto] = []
    for node in nodes:
        what = f"node {quote(node.name)} ({node.op_type})"
        outputs = [o for o in node.output if o]
        if node.op_type not in FOLDABLE_OPS:
            kept.append(node)
            continue
        if node.op_type == "Constant":
            constants[node.output[0]] = _constant_value(node, max_elements)
            continue
        if node.op_type == "Shape":
            source = node.input[0]
            shape = constants[source].shape if source in constants else shapes.get(
                source, (None, None))[0]  # fmt: skip
            if shape is None:
                kept.append(node)
            else:
                constants[node.output[0]] = _shape_of(node, shape, opset)
            continue
        if not all(n == "" or n in constants for n in node.input):
            kept.append(node)
            continue
        inputs = [constants[n] if n else None for n in node.input]
        for out in outputs:
            shape = shapes.get(out, (None, None))[0]
            bound = math.prod(shape) if shape is not None else _elements_bound(node, inputs, what)
            check_element_count([bound], max_elements, f"output {quote(out)} of {what}")
        try:
            results = _evaluate(node, inputs, opset)
        except (ModelError, MemoryError):
            raise
        except Exception as exc:  # the reference evaluator raises many types on bad input
            raise ModelError(f"cannot fold {what}: {first_line(exc)}") from None
        for out, value in zip(outputs, results, strict=True):
            array = np.asarray(value)
            onnx_elem_type(array.dtype, f"output {quote(out)} of {what}")
            check_element_count(array.shape, max_elements, f"output {quote(out)} of {what}")
            constants[out] = array
    return kept
