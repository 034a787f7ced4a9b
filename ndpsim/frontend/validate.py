"""Structural checks on a ModelProto before anything large is built from it: versions,
domains, op names, declared sizes and dtypes, input shapes, graph wiring and order."""

from __future__ import annotations

import heapq
import warnings
from collections.abc import Mapping, Sequence

import onnx
import onnx.defs

from ndpsim.errors import (
    InputShapesError,
    InputShapeWarning,
    ModelError,
    UnsupportedOpError,
)
from ndpsim.frontend.fold import FOLDABLE_OPS
from ndpsim.frontend.messages import quote
from ndpsim.frontend.tensors import (
    check_element_count,
    check_tensor_proto,
    numpy_dtype,
    value_dims,
)

# Default-domain opsets the frontend accepts: 7 is the oldest with today's broadcasting
# and BatchNormalization semantics; 25 is the newest the lowering was checked against
# (opsets 24 and 25 only widened the types of the ops it lowers; onnx itself may know
# newer ones, see onnx.defs.onnx_opset_version()).
MIN_OPSET = 7
MAX_OPSET = min(25, onnx.defs.onnx_opset_version())
MIN_IR_VERSION = 3  # IR 3 is the first with opset_import (ONNX 1.0)
MAX_IR_VERSION = onnx.IR_VERSION
_DEFAULT_DOMAINS = ("", "ai.onnx")
# Domains onnx defines; an opset import of anything else (a future or vendor domain) is refused.
_KNOWN_DOMAINS = frozenset({*_DEFAULT_DOMAINS, "ai.onnx.ml", "ai.onnx.preview.training",
                            "ai.onnx.training", "ai.onnx.preview"})  # fmt: skip


def check_header(model: onnx.ModelProto) -> int:
    """Check IR version and opset imports; returns the default-domain opset."""
    if not MIN_IR_VERSION <= model.ir_version <= MAX_IR_VERSION:
        raise ModelError(
            f"IR version {model.ir_version} is not supported "
            f"(supported: {MIN_IR_VERSION}..{MAX_IR_VERSION})"
        )
    opset = None
    for entry in model.opset_import:
        if entry.domain not in _KNOWN_DOMAINS:
            raise ModelError(
                f"unknown opset domain {quote(entry.domain)}: ndpsim reads the default ONNX "
                f"domain only"
            )
        if entry.domain in _DEFAULT_DOMAINS:
            opset = entry.version
    if opset is None:
        raise ModelError("the model imports no default-domain ONNX opset")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ModelError(f"opset {opset} is not supported (supported: {MIN_OPSET}..{MAX_OPSET})")
    return opset


def unsupported_op(
    node: onnx.NodeProto, index: int, supported: frozenset[str] | None = None
) -> UnsupportedOpError:
    """The error for a node the simulator cannot run, naming op, node and the supported set."""
    op = node.op_type if node.domain in _DEFAULT_DOMAINS else f"{node.domain}::{node.op_type}"
    name = node.name or f"{node.op_type}_{index}"
    known = f"; ndpsim supports: {', '.join(sorted(supported))}" if supported else ""
    return UnsupportedOpError(f"unsupported op {quote(op)} (node {quote(name)}){known}")


def check_ops(model: onnx.ModelProto, opset: int, supported: frozenset[str] | None) -> None:
    """Refuse ops of other domains, ops outside `supported` that cannot be folded either
    (no such check when it is None), and op names unknown to the opset."""
    for i, node in enumerate(model.graph.node):
        if node.domain not in _DEFAULT_DOMAINS:
            raise unsupported_op(node, i, supported)
        # If is resolved at import when its condition is static (frontend/control.py)
        if supported is not None and node.op_type not in supported | FOLDABLE_OPS | {"If"}:
            raise unsupported_op(node, i, supported)
        try:
            onnx.defs.get_schema(node.op_type, opset, "")
        except onnx.defs.SchemaError:
            raise ModelError(
                f"op {quote(node.op_type)} (node {quote(node.name)}) does not exist in "
                f"opset {opset}"
            ) from None


def _check_value(value: onnx.ValueInfoProto, max_elements: int, kind: str) -> None:
    what = f"{kind} {quote(value.name)}"
    if value.type.WhichOneof("value") != "tensor_type":
        raise ModelError(
            f"{what} is not a tensor (sequences, maps and optionals are not supported)"
        )
    numpy_dtype(value.type.tensor_type.elem_type, what)
    dims = value_dims(value) or []
    known = [d for d in dims if isinstance(d, int)]
    check_element_count(known, max_elements, what, allow_zero=False)


def check_declarations(model: onnx.ModelProto, max_elements: int) -> None:
    """Refuse bad dtypes, non-positive dims and oversize tensors from declarations alone."""
    graph = model.graph
    if graph.sparse_initializer:
        raise ModelError(f"sparse initializer {quote(graph.sparse_initializer[0].values.name)} "
                         "is not supported")  # fmt: skip
    for t in graph.initializer:
        check_tensor_proto(t, max_elements, f"initializer {quote(t.name)}")
    for node in graph.node:
        for attr in node.attribute:
            what = f"tensor attribute {quote(attr.name)} of node {quote(node.name)}"
            if attr.HasField("t"):
                check_tensor_proto(attr.t, max_elements, what)
            if attr.HasField("sparse_tensor") or attr.tensors or attr.sparse_tensors:
                raise ModelError(f"{what}: sparse or repeated tensor attributes are not supported")
    for kind, values in (("input", graph.input), ("output", graph.output),
                         ("value", graph.value_info)):  # fmt: skip
        for value in values:
            _check_value(value, max_elements, kind)


def real_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs that are not initializers (IR < 4 lists weights as inputs too)."""
    weights = {t.name for t in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in weights]


def apply_input_shapes(
    model: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]] | None, max_elements: int
) -> None:
    """Overwrite input dims from `input_shapes`, then require every input to be static: a
    symbolic leading (batch) dim of an input whose other dims are static becomes 1, with an
    `InputShapeWarning`; any other symbolic or unknown dim, of all inputs at once, is a
    ModelError naming each with the --input-shape flags that fix them."""
    inputs = {v.name: v for v in real_inputs(model)}
    for name, shape in (input_shapes or {}).items():
        if name not in inputs:
            valid = ", ".join(quote(n) for n in inputs) or "none"
            raise ModelError(f"input_shapes names {quote(name)}, not an input of the model "
                             f"(inputs: {valid})")  # fmt: skip
        try:
            dims = [int(d) for d in shape]
        except (TypeError, ValueError):
            raise ModelError(f"input_shapes[{quote(name)}] is not a sequence of ints") from None
        declared = value_dims(inputs[name])
        if declared is not None and declared and len(declared) != len(dims):
            raise ModelError(f"input_shapes[{quote(name)}] has rank {len(dims)} but the model "
                             f"declares rank {len(declared)}")  # fmt: skip
        check_element_count(dims, max_elements, f"input {quote(name)}", allow_zero=False)
        shape_proto = inputs[name].type.tensor_type.shape
        shape_proto.Clear()
        for d in dims:
            shape_proto.dim.add().dim_value = d
    missing = []
    for name, value in inputs.items():
        dims = value_dims(value)
        if dims is not None and len(dims) >= 2 and not _static(dims[0]) and _all_static(dims[1:]):
            # only the leading (batch) dim is free: simulate one sample, and say so
            value.type.tensor_type.shape.dim[0].dim_value = 1
            what = f"batch dim {dims[0]!r} is symbolic" if dims[0] else "batch dim is unknown"
            warnings.warn(
                f"input {quote(name)}: its {what}; simulating one sample (--input-shape "
                f"{name}={_hint([1, *dims[1:]])} sets it)",
                InputShapeWarning,
                stacklevel=2,
            )
        elif dims is None or not _all_static(dims):
            missing.append((name, dims))
    if missing:
        flags = " ".join(f"--input-shape {name}={_hint(dims)}" for name, dims in missing)
        raise InputShapesError(_missing_shapes(missing, flags), flags)


def _static(d) -> bool:
    return isinstance(d, int) and d > 0


def _all_static(dims) -> bool:
    return all(_static(d) for d in dims)


def _hint(dims) -> str:
    return "x".join(str(d) if _static(d) else "1" for d in dims or [1])


def _missing_shapes(missing: list[tuple[str, list | None]], flags: str) -> str:
    """One message for every input without a static shape, with the flags that fix them."""

    def shown(dims):
        if dims is None:
            return "no shape"
        return "shape [" + ", ".join(str(d) if _static(d) else str(d or "?") for d in dims) + "]"

    if len(missing) == 1:
        name, dims = missing[0]
        return (f"input {quote(name)} has a symbolic or unknown dim ({shown(dims)}); give a "
                f"static shape, e.g. {flags}")  # fmt: skip
    listed = ", ".join(f"{quote(name)} ({shown(dims)})" for name, dims in missing)
    return (f"{len(missing)} inputs have symbolic or unknown dims: {listed}; give static "
            f"shapes, e.g. {flags}")  # fmt: skip


def sort_nodes(model: onnx.ModelProto) -> None:
    """Put the nodes in topological order (keeping the file's order where it is free), after
    refusing values with no producer, values produced twice, and cycles."""
    graph = model.graph
    available = {v.name for v in graph.input} | {t.name for t in graph.initializer} | {""}
    producer: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        for out in node.output:
            if out and (out in producer or out in available):
                raise ModelError(f"value {quote(out)} is produced twice (node {quote(node.name)})")
            if out:
                producer[out] = i
    for node in graph.node:
        for name in node.input:
            if name not in available and name not in producer:
                raise ModelError(
                    f"missing initializer or input {quote(name)} (used by node {quote(node.name)})"
                )
    for out in graph.output:
        if out.name not in available and out.name not in producer:
            raise ModelError(f"graph output {quote(out.name)} is produced by no node")
    waiting = [len({producer[n] for n in node.input if n in producer}) for node in graph.node]
    readers: dict[int, set[int]] = {}
    for i, node in enumerate(graph.node):
        for src in {producer[n] for n in node.input if n in producer}:
            readers.setdefault(src, set()).add(i)
    ready = [i for i, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in readers.get(i, ()):
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    if len(order) != len(graph.node):
        stuck = [quote(graph.node[i].name or graph.node[i].op_type)
                 for i in range(len(graph.node)) if waiting[i] > 0][:5]  # fmt: skip
        raise ModelError(
            f"the graph has a cycle (nodes not topologically sortable): {', '.join(stuck)}"
        )
    if order != sorted(order):
        nodes = [graph.node[i] for i in order]
        copies = [onnx.NodeProto() for _ in nodes]
        for copy, node in zip(copies, nodes, strict=True):
            copy.CopyFrom(node)
        del graph.node[:]
        graph.node.extend(copies)
