"""The import pipeline: each stage is one named function, refusing early and cheaply
(declared sizes are checked before any data of that size exists)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ndpsim.frontend.attributes import check_attributes
from ndpsim.frontend.control import bind_input_values, inline_ifs
from ndpsim.frontend.convert import to_graph
from ndpsim.frontend.infer import check_and_infer
from ndpsim.frontend.quantized import split_quantized
from ndpsim.frontend.reader import ModelSource, load_external_data, read_model
from ndpsim.frontend.validate import (
    apply_input_shapes,
    check_declarations,
    check_header,
    check_ops,
    sort_nodes,
)
from ndpsim.ir.graph import Graph

DEFAULT_MAX_TENSOR_ELEMENTS = 2**28


def load_model(
    source: ModelSource,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    max_tensor_elements: int = DEFAULT_MAX_TENSOR_ELEMENTS,
    input_values: Mapping[str, Sequence] | None = None,
    supported: frozenset[str] | None = None,
    branches: Mapping[str, bool] | None = None,
) -> Graph:
    """Read an ONNX model (path, bytes or ModelProto) into a checked, folded `Graph`.

    `input_shapes` fixes the dims of dynamic inputs (name -> dims); `input_values` fixes
    inputs to constant values (name -> values), which resolves `If`s branching on them.
    `supported` is the op set the caller can run (a Session passes the op registry's,
    lower/registry.py): any other op is refused here, before the model's data is read; None
    accepts every op of the default domain and leaves the refusal to the lowering.
    `branches` picks the branch of each If on run-time data (If name -> True for then); an
    If without one raises `BranchNeeded` (frontend/control.py).
    Any problem with the model raises a `ModelError` (an `UnsupportedOpError` for ops,
    attributes or dtypes the simulator lacks) with a one-line message naming it; no tensor
    over `max_tensor_elements` elements is ever allocated."""
    if max_tensor_elements < 1:
        raise ValueError("max_tensor_elements must be positive")
    limit = max_tensor_elements
    model, folder = read_model(source)  # bounded read + protobuf decode
    model, quant = split_quantized(model)  # QDQ / QLinear ops -> float ops + their qparams
    opset = check_header(model)  # IR version, opset range, known domains
    check_ops(model, opset, supported)  # ops that can neither run nor fold, by name
    for node in model.graph.node:
        check_attributes(node, opset)  # names and types against the schema
    check_declarations(model, limit)  # dtypes, dims, sizes from declarations only
    bind_input_values(model, input_values)  # inputs fixed by the user become initializers
    apply_input_shapes(model, input_shapes, limit)  # overrides, then inputs must be static
    sort_nodes(model)  # missing values, duplicates, cycles; topological order
    load_external_data(model, folder, limit)  # confined to the model's folder, bounded
    taken = inline_ifs(model, opset, limit, branches)  # If -> its branch (static or chosen)
    inferred = check_and_infer(model)  # onnx checker + strict shape inference
    graph = to_graph(inferred, opset, limit, supported).with_(branches=taken)
    return graph if quant is None else graph.with_(quant=quant)
