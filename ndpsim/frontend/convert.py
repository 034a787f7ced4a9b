"""ModelProto (checked, shape-inferred) -> Graph: constants, folding, op check, names,
attributes and a static TensorInfo for every value."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from ndpsim.errors import ModelError
from ndpsim.frontend.attributes import node_attributes
from ndpsim.frontend.fold import Shapes, fold_constants
from ndpsim.frontend.infer import infer, value_types
from ndpsim.frontend.messages import quote
from ndpsim.frontend.tensors import array_to_tensor, check_element_count, tensor_to_array
from ndpsim.frontend.validate import real_inputs, unsupported_op
from ndpsim.ir.graph import Graph, Node, TensorInfo


def _reinfer(model: onnx.ModelProto, nodes: list[onnx.NodeProto],
             constants: dict[str, np.ndarray], max_elements: int) -> Shapes:  # fmt: skip
    """Shape inference again on the folded graph: folding can make shapes static that
    data propagation could not see through (e.g. a Reshape fed by a folded Expand)."""
    used = {n for node in nodes for n in node.input} | {o.name for o in model.graph.output}
    graph = helper.make_graph(
        nodes,
        model.graph.name or "folded",
        real_inputs(model),
        list(model.graph.output),
        [array_to_tensor(a, name) for name, a in constants.items() if name in used],
    )
    folded = helper.make_model(graph, opset_imports=list(model.opset_import),
                               ir_version=max(model.ir_version, 4))  # fmt: skip
    return value_types(infer(folded), max_elements)


def _drop_unknown_unused_outputs(
    nodes: list[onnx.NodeProto], shapes: Shapes, graph_outputs: set[str]
) -> list[onnx.NodeProto]:
    """Blank ('' = omitted) outputs that nothing reads and whose shape onnx does not infer,
    such as Dropout's mask in old opsets: they need no TensorInfo and cost nothing."""
    read = {n for node in nodes for n in node.input} | graph_outputs
    result = []
    for node in nodes:
        unknown = [
            o for o in node.output if o and o not in read and shapes.get(o, (None,))[0] is None
        ]
        if unknown:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            for i, out in enumerate(copy.output):
                if out in unknown:
                    copy.output[i] = ""
            node = copy
        result.append(node)
    return result


def _unique_names(nodes: list[onnx.NodeProto]) -> list[str]:
    """The ONNX names, `<op_type>_<index>` for empty ones, suffixed `_<n>` when repeated."""
    taken: set[str] = set()
    names = []
    for i, node in enumerate(nodes):
        base = node.name or f"{node.op_type}_{i}"
        name, n = base, 1
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name)
        names.append(name)
    return names


def to_graph(model: onnx.ModelProto, opset: int, max_elements: int,
             supported: frozenset[str] | None = None) -> Graph:  # fmt: skip
    """Build the IR from a checked, inferred model; a node left after folding whose op is
    outside `supported` is refused (None: kept, for the lowering to refuse)."""
    graph = model.graph
    constants = {t.name: tensor_to_array(t, max_elements, f"initializer {quote(t.name)}")
                 for t in graph.initializer}  # fmt: skip
    shapes = value_types(model, max_elements)
    nodes = fold_constants(list(graph.node), constants, shapes, opset, max_elements)
    produced = [o for node in nodes for o in node.output if o]
    if any(shapes.get(o, (None, None))[0] is None for o in produced):
        shapes = _reinfer(model, nodes, constants, max_elements)
    nodes = _drop_unknown_unused_outputs(nodes, shapes, {o.name for o in graph.output})
    produced = [o for node in nodes for o in node.output if o]
    if supported is not None:
        for i, node in enumerate(nodes):
            if node.op_type not in supported:
                raise unsupported_op(node, i, supported)

    tensors: dict[str, TensorInfo] = {}
    for name in [v.name for v in real_inputs(model)] + produced:
        shape, dtype = shapes.get(name, (None, None))
        if shape is None:
            raise ModelError(f"cannot infer a static shape for value {quote(name)}")
        check_element_count(shape, max_elements, f"value {quote(name)}", allow_zero=False)
        tensors[name] = TensorInfo(name, shape, dtype.name)
    used = {n for node in nodes for n in node.input if n} | {o.name for o in graph.output}
    kept_constants = {n: a for n, a in constants.items() if n in used}
    for name, array in kept_constants.items():
        tensors[name] = TensorInfo(name, tuple(int(d) for d in array.shape), array.dtype.name)
    for out in graph.output:
        if out.name not in tensors:
            raise ModelError(f"graph output {quote(out.name)} has no known shape")

    ir_nodes = tuple(
        Node(name=name, op_type=node.op_type, inputs=tuple(node.input),
             outputs=tuple(node.output), attrs=node_attributes(node, opset, max_elements))
        for name, node in zip(_unique_names(nodes), nodes, strict=True)
    )  # fmt: skip
    return Graph(
        name=graph.name,
        nodes=ir_nodes,
        inputs=tuple(v.name for v in real_inputs(model)),
        outputs=tuple(o.name for o in graph.output),
        tensors=tensors,
        constants=kept_constants,
        opset=opset,
    )
