"""Parameter and MAC counts of an ONNX model, using only onnx (independent of ndpsim's IR).

MAC rules (the MLPerf Tiny tables' convention): Conv = N*outC*outH*outW*kh*kw*cin_per_group,
i.e. output elements times the elements of one filter; Gemm = M*N*K; MatMul = output
elements times K; LSTM / GRU = steps * batch * directions * gates * hidden * (input + hidden),
every gate's input and recurrent dot products. Everything else (adds, pools, activations,
softmax, the gates' element-wise products) counts zero.
"""

from __future__ import annotations

import math

import onnx
from onnx import helper

MAC_OPS = ("Conv", "Gemm", "MatMul", "LSTM", "GRU")
# Inputs of the MAC ops that are learned parameters: weights and biases (LSTM / GRU: W, R, B).
WEIGHT_INPUTS = {
    "Conv": (1, 2),
    "Gemm": (1, 2),
    "MatMul": (1,),
    "LSTM": (1, 2, 3),
    "GRU": (1, 2, 3),
}
_GATES = {"LSTM": 4, "GRU": 3}


def count_params(model: onnx.ModelProto) -> int:
    """Sum of the element counts of all graph initializers (weights, biases, constants)."""
    return sum(math.prod(init.dims) for init in model.graph.initializer)


def count_weights(model: onnx.ModelProto) -> int:
    """Elements of the initializers a MAC op reads as weights or biases: the learned
    parameters, without shape constants or activation bounds."""
    sizes = {init.name: math.prod(init.dims) for init in model.graph.initializer}
    names = {
        node.input[i]
        for node in model.graph.node
        for i in WEIGHT_INPUTS.get(node.op_type, ())
        if i < len(node.input)
    }
    return sum(sizes[n] for n in names if n in sizes)


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
    """MACs of one Conv / Gemm / MatMul / LSTM / GRU node given the value shapes; 0 for any
    other op."""
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
    if node.op_type in _GATES:
        x = _known(shapes, node, node.input[0])  # [seq, batch, input] (either layout)
        w = _known(shapes, node, node.input[1])  # [directions, gates * hidden, input]
        hidden = w[1] // _GATES[node.op_type]
        return x[0] * x[1] * w[0] * w[1] * (w[2] + hidden)
    return 0


def count_macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates of one inference, summed over Conv, Gemm, MatMul, LSTM, GRU."""
    shapes = _shapes(model)
    return sum(node_macs(node, shapes) for node in model.graph.node if node.op_type in MAC_OPS)
