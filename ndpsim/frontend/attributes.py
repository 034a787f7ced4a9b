"""Node attributes as plain Python, every attribute of the op's schema present.

Defaults come from the schema's `default_value` (never re-typed here). An attribute whose
schema has no default (e.g. Conv's `strides`, `pads`, `kernel_shape`, `dilations`: the
spec computes them from the inputs) and that the node does not set is stored as None, so
`attrs` always holds the schema's full set of keys and the lowering decides what None means."""

from __future__ import annotations

from typing import Any

import onnx
import onnx.defs
from onnx import AttributeProto

from ndpsim.errors import ModelError
from ndpsim.frontend.messages import quote
from ndpsim.frontend.tensors import tensor_to_array


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelError(f"{what} is not valid UTF-8") from None


def attribute_value(attr: AttributeProto, max_elements: int, what: str) -> Any:
    """One AttributeProto as int, float, str, tuple of those, or a numpy array."""
    kind = attr.type
    if kind == AttributeProto.INT:
        return int(attr.i)
    if kind == AttributeProto.FLOAT:
        return float(attr.f)
    if kind == AttributeProto.STRING:
        return _text(attr.s, what)
    if kind == AttributeProto.INTS:
        return tuple(int(v) for v in attr.ints)
    if kind == AttributeProto.FLOATS:
        return tuple(float(v) for v in attr.floats)
    if kind == AttributeProto.STRINGS:
        return tuple(_text(v, what) for v in attr.strings)
    if kind == AttributeProto.TENSOR:
        return tensor_to_array(attr.t, max_elements, what)
    raise ModelError(f"{what} has type {AttributeProto.AttributeType.Name(kind)}, "
                     "which ndpsim does not read")  # fmt: skip


def _schema(node: onnx.NodeProto, opset: int) -> onnx.defs.OpSchema:
    try:
        return onnx.defs.get_schema(node.op_type, opset, "")
    except onnx.defs.SchemaError:
        raise ModelError(f"op {quote(node.op_type)} does not exist in opset {opset}") from None


def check_attributes(node: onnx.NodeProto, opset: int) -> None:
    """Refuse attributes the schema does not know, of the wrong type, or given twice."""
    schema = _schema(node, opset)
    seen: set[str] = set()
    for attr in node.attribute:
        where = f"attribute {quote(attr.name)} of node {quote(node.name)} ({node.op_type})"
        if attr.name not in schema.attributes:
            known = ", ".join(sorted(schema.attributes)) or "none"
            raise ModelError(f"unknown {where}; the schema knows: {known}")
        if attr.name in seen:
            raise ModelError(f"{where} is given twice")
        seen.add(attr.name)
        if attr.ref_attr_name:
            raise ModelError(f"{where} refers to a function attribute, which is not supported")
        expected = schema.attributes[attr.name].type
        if attr.type != expected:
            got = AttributeProto.AttributeType.Name(attr.type) if attr.type in \
                AttributeProto.AttributeType.values() else str(attr.type)  # fmt: skip
            raise ModelError(f"wrong type for {where}: {got}, the schema says "
                             f"{AttributeProto.AttributeType.Name(int(expected))}")  # fmt: skip


def node_attributes(node: onnx.NodeProto, opset: int, max_elements: int) -> dict[str, Any]:
    """Every schema attribute of `node`: its own value, the schema default, or None."""
    check_attributes(node, opset)
    schema = _schema(node, opset)
    given = {a.name: a for a in node.attribute}
    attrs: dict[str, Any] = {}
    for name, spec in sorted(schema.attributes.items()):
        what = f"attribute {quote(name)} of node {quote(node.name)} ({node.op_type})"
        if name in given:
            attrs[name] = attribute_value(given[name], max_elements, what)
        elif spec.default_value.type != AttributeProto.UNDEFINED:
            attrs[name] = attribute_value(spec.default_value, max_elements, what)
        else:
            attrs[name] = None
    return attrs
