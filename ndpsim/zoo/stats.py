"""Parameter and MAC counts of an ONNX model, using only onnx (independent of ndpsim's IR).

MAC rules (the MLPerf Tiny tables' convention): Conv = N*outC*outH*outW*kh*kw*cin_per_group,
i.e. output elements times the elements of one filter; Gemm = M*N*K; MatMul = output
elements times K. Everything else (adds, pools, activations, softmax) counts zero.
"""

from __future__ import annotations

import math

import onnx
from onnx import helper

MAC_OPS = ("Conv", "Gemm", "MatMul")


def count_params(model: onnx.ModelProto) -> int:
    """Sum of the element counts of all graph initializers (weights, biases, constants)."""
    return sum(math.prod(init.dims) for init in model.graph.initializer)


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Static shapes of every value after onnx shape inference (unknown dims are dropped)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    shapes: dict[str, tuple[int, ...]] = {i.name: tuple(i.dims) for i in graph.initializer}
    for info in (*graph.input, *graph.value_info, *graph.output):
        dims = info.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[info.name] = tuple(d.dim_value for d in dims)
    return shapes


def _known(shapes: dict[str, tuple[int, ...]], node: onnx.NodeProto, name: str) -> tuple[int, ...]:
    if name not in shapes:
        raise ValueError(
            f"count_macs: shape of {name!r} (input of {node.op_type} "
            f"node {node.name!r}) is unknown after shape inference"
        )
    return shapes[name]


def node_macs(node: onnx.NodeProto, shapes: dict[str, tuple[int, ...]]) -> int:
    """MACs of one Conv / Gemm / MatMul node given the value shapes; 0 for any other op."""
    if node.op_type == "Conv":
        # Weight is (outC, cin_per_group, *kernel): one output element costs one filter.
        weight = _known(shapes, node, node.input[1])
        return math.prod(_known(shapes, node, node.output[0])) * math.prod(weight[1:])
    if node.op_type == "Gemm":
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        a = _known(shapes, node, node.input[0])
        b = _known(shapes, node, node.input[1])
        m, k = (a[1], a[0]) if attrs.get("transA", 0) else a
        n = b[0] if attrs.get("transB", 0) else b[1]
        return m * n * k
    if node.op_type == "MatMul":
        a = _known(shapes, node, node.input[0])
        return math.prod(_known(shapes, node, node.output[0])) * a[-1]
    return 0


def count_macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates of one inference, summed over Conv, Gemm and MatMul nodes."""
    shapes = _shapes(model)
    return sum(node_macs(node, shapes) for node in model.graph.node if node.op_type in MAC_OPS)
