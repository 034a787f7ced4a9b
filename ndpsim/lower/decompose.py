"""Rewrites of ops the machine runs as a few of its others: LayerNormalization (two window
means, a power and element-wise ops) and Div by a constant (a Mul by its reciprocal; a Div
of two activations stays, for the vector unit's DIV)."""

from __future__ import annotations

import numpy as np

from ndpsim.errors import UnsupportedOpError
from ndpsim.ir import Graph, Node
from ndpsim.lower.rewrite import NodeEmitter


def _mean(
    e: NodeEmitter, g: Graph, x: str, axes: list[int], shape: tuple[int, ...], out: str = ""
) -> str:
    """ReduceMean over `axes` keeping them (axes an attribute before opset 18, else an input)."""
    if g.opset >= 18:
        return e.op("ReduceMean", [x, e.const(f"axes{e.n}", np.array(axes, np.int64))], shape,
                    out=out, keepdims=1, noop_with_empty_axes=0)  # fmt: skip
    return e.op("ReduceMean", [x], shape, out=out, axes=tuple(axes), keepdims=1)


def _layer_norm(g: Graph, node: Node, e: NodeEmitter) -> None:
    """y = (x - mean) * (var + eps)^-1/2 * scale + bias over the axes from `axis` on."""
    x = node.inputs[0]
    shape = g.tensors[x].shape
    outs = [*node.outputs, "", ""]  # Y, and the optional Mean and InvStdDev
    axis = int(node.attrs.get("axis", -1))
    axis = axis + len(shape) if axis < 0 else axis
    axes = list(range(axis, len(shape)))
    reduced = tuple(1 if i in axes else d for i, d in enumerate(shape))
    mean = _mean(e, g, x, axes, reduced, out=outs[1])
    d = e.op("Sub", [x, mean], shape)
    var = _mean(e, g, e.op("Mul", [d, d], shape), axes, reduced)
    half = e.const("minus_half", np.array(-0.5, np.float32))
    eps = float(node.attrs.get("epsilon", 1e-5))
    rstd = e.op("Pow", [var, half], reduced, out=outs[2], pow_scale=1.0,
                pow_offset=eps)  # fmt: skip
    bias = node.inputs[2] if len(node.inputs) > 2 else ""
    y = e.op("Mul", [d, rstd], shape)
    z = e.op("Mul", [y, node.inputs[1]], shape, out="" if bias else node.outputs[0])
    if bias:
        e.op("Add", [z, bias], shape, out=node.outputs[0])


def _div(g: Graph, node: Node, e: NodeEmitter) -> None:
    """a / c with a constant c: a * (1 / c); with an activation c the node is kept."""
    a, c = node.inputs
    if np.dtype(g.tensors[node.outputs[0]].dtype).kind != "f":
        raise UnsupportedOpError(f"Div {node.name!r}: integer division (it truncates; the "
                                 "machine multiplies by a reciprocal)")  # fmt: skip
    if c not in g.constants:  # a quotient of two activations: ELTWISE DIV
        e.nodes.append(node)
        return
    with np.errstate(divide="ignore"):
        inv = (1.0 / np.asarray(g.constants[c], np.float64)).astype(np.float32)
    e.op("Mul", [a, e.const("reciprocal", inv)], g.tensors[node.outputs[0]].shape,
         out=node.outputs[0])  # fmt: skip


_RULES = {"LayerNormalization": _layer_norm, "Div": _div}


def decompose_ops(g: Graph) -> Graph:
    """LayerNormalization and Div rewritten into the machine's ops (module docstring)."""
    if not any(n.op_type in _RULES for n in g.nodes):
        return g
    nodes: list[Node] = []
    tensors, consts = dict(g.tensors), dict(g.constants)
    for node in g.nodes:
        rule = _RULES.get(node.op_type)
        if rule is None:
            nodes.append(node)
            continue
        e = NodeEmitter(g.with_(tensors=tensors, constants=consts), node.name)
        rule(g.with_(tensors=tensors, constants=consts), node, e)
        nodes += e.nodes
        tensors.update(e.tensors)
        consts.update(e.consts)
    return g.with_(nodes=tuple(nodes), tensors=tensors, constants=consts)
