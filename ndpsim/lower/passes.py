"""Graph -> Graph passes run before lowering. Each is a pure function; `PASSES` is the order."""

from __future__ import annotations

import numpy as np

from ndpsim.errors import UnsupportedOpError
from ndpsim.ir import Graph, Node, TensorInfo
from ndpsim.lower.activations import ACTIVATION_OPS, activation_of
from ndpsim.lower.decompose import decompose_ops
from ndpsim.lower.recurrent import (
    casts_to_identity,
    decompose_normalization,
    decompose_recurrent,
    split_batched_matmul,
)
from ndpsim.lower.registry import MAC_OPS, OPS

# Producers whose output passes through the vector unit's activation stage anyway.
_ACT_HOSTS = frozenset(op for op, e in OPS.items() if e.fuses_activation)


def _rename_inputs(nodes: list[Node], old: str, new: str) -> list[Node]:
    return [
        n.with_(inputs=tuple(new if i == old else i for i in n.inputs)) if old in n.inputs else n
        for n in nodes
    ]


def remove_identities(g: Graph) -> Graph:
    """Identity and Dropout (inference mode) forward their input; consumers read it directly."""
    nodes = list(g.nodes)
    outputs = list(g.outputs)
    for name in [n.name for n in nodes if n.op_type in ("Identity", "Dropout")]:
        # the current version of the node: a chain of Identities renames later ones' inputs
        node = next(n for n in nodes if n.name == name)
        if node.op_type == "Dropout":
            _check_inference_dropout(g, node)
        src, dst = node.inputs[0], node.outputs[0]
        if dst in outputs:  # keep the graph's output name: rename the producer side instead
            continue
        nodes.remove(node)
        nodes = _rename_inputs(nodes, dst, src)
    return g.with_(nodes=tuple(nodes), outputs=tuple(outputs))


def _check_inference_dropout(g: Graph, node: Node) -> None:
    if len(node.outputs) > 1 and node.outputs[1]:
        raise UnsupportedOpError(f"Dropout {node.name!r}: the mask output (training only)")
    mode = node.inputs[2] if len(node.inputs) > 2 else ""
    if mode and (mode not in g.constants or bool(np.asarray(g.constants[mode]).any())):
        raise UnsupportedOpError(f"Dropout {node.name!r}: training_mode must be constant false")


def _single_consumer(g: Graph, value: str) -> Node | None:
    users = g.consumers().get(value, [])
    return users[0] if len(users) == 1 and value not in g.outputs else None


def fold_batchnorm(g: Graph) -> Graph:
    """BatchNormalization after a Conv whose only consumer it is folds into the conv's
    weights and bias; any other BN becomes a per-channel Mul and Add (vector unit)."""
    consts = dict(g.constants)
    tensors = dict(g.tensors)
    producers = g.producers()
    nodes: list[Node] = []
    dropped: set[str] = set()
    for node in g.nodes:
        if node.op_type != "BatchNormalization":
            nodes.append(node)
            continue
        x, scale, bias, mean, var = node.inputs[:5]
        if int(node.attrs.get("training_mode", 0) or 0) or len([o for o in node.outputs if o]) > 1:
            raise UnsupportedOpError(
                f"BatchNormalization {node.name!r}: training mode (batch statistics)"
            )
        if not all(v in consts for v in (scale, bias, mean, var)):
            raise UnsupportedOpError(
                f"BatchNormalization {node.name!r}: scale, bias, mean and var must be constants"
            )
        eps = float(node.attrs.get("epsilon", 1e-5))
        mul = consts[scale].astype(np.float64) / np.sqrt(consts[var].astype(np.float64) + eps)
        add = consts[bias].astype(np.float64) - consts[mean].astype(np.float64) * mul
        conv = producers.get(x)
        if (
            conv is not None
            and conv.op_type == "Conv"
            and _single_consumer(g, x) is node
            and conv.inputs[1] in consts
        ):
            w = consts[conv.inputs[1]].astype(np.float64)
            b = consts[conv.inputs[2]] if len(conv.inputs) > 2 and conv.inputs[2] else 0.0
            shape = (-1,) + (1,) * (w.ndim - 1)
            w_name, b_name = f"{conv.name}.w_bn", f"{conv.name}.b_bn"
            consts[w_name] = (w * mul.reshape(shape)).astype(np.float32)
            consts[b_name] = (np.asarray(b, np.float64) * mul + add).astype(np.float32)
            for n_, arr in ((w_name, consts[w_name]), (b_name, consts[b_name])):
                tensors[n_] = TensorInfo(n_, arr.shape, "float32")
            folded = conv.with_(
                inputs=(conv.inputs[0], w_name, b_name), outputs=node.outputs, attrs={**conv.attrs}
            )
            idx = next(i for i, n in enumerate(nodes) if n.name == conv.name)
            nodes[idx] = folded
            dropped.add(x)
            continue
        rank = len(g.tensors[x].shape)
        cshape = (-1,) + (1,) * (rank - 2)
        m_name, a_name, mid = f"{node.name}.mul", f"{node.name}.add", f"{node.name}.scaled"
        consts[m_name] = mul.astype(np.float32).reshape(cshape)
        consts[a_name] = add.astype(np.float32).reshape(cshape)
        for n_ in (m_name, a_name):
            tensors[n_] = TensorInfo(n_, consts[n_].shape, "float32")
        tensors[mid] = TensorInfo(mid, g.tensors[x].shape, "float32")
        nodes.append(Node(f"{node.name}/mul", "Mul", (x, m_name), (mid,), {}))
        nodes.append(Node(f"{node.name}/add", "Add", (mid, a_name), node.outputs[:1], {}))
    for v in dropped:
        tensors.pop(v, None)
    return g.with_(nodes=tuple(nodes), constants=consts, tensors=tensors)


def _fusable_quantized(g: Graph, src: Node, act: Node) -> bool:
    """In an imported quantized model an activation joins its producer only where that is
    exact: no requantization between them (the value in between has the output's scale and
    zero point, or none), and a producer whose kernel applies activations (onnxruntime's
    QLinearAdd and average pools, which ndpsim reproduces, have no activation stage)."""
    if src.op_type not in MAC_OPS | {"MaxPool", "Transpose"}:
        return False
    mid = g.quant.tensors.get(act.inputs[0])
    return mid is None or mid == g.quant.tensors.get(act.outputs[0])


def fuse_activations(g: Graph) -> Graph:
    """Relu / Clip / LeakyRelu directly after a MAC, element-wise or pooling op whose only
    consumer they are run in the producer's output stage (the vector unit's requantizer)."""
    producers = g.producers()
    replaced: dict[str, Node] = {}
    removed: set[str] = set()
    for node in g.nodes:
        if node.op_type not in ACTIVATION_OPS:
            continue
        src = producers.get(node.inputs[0])
        act = activation_of(g, node)
        if src is None or act is None or src.op_type not in _ACT_HOSTS:
            continue
        src = replaced.get(src.name, src)
        if "fused_act" in src.attrs or _single_consumer(g, node.inputs[0]) is not node:
            continue
        if g.quant is not None and not _fusable_quantized(g, src, node):
            continue
        replaced[src.name] = src.with_(outputs=node.outputs, attrs={**src.attrs, "fused_act": act})
        removed.add(node.name)
    nodes = tuple(replaced.get(n.name, n) for n in g.nodes if n.name not in removed)
    return g.with_(nodes=nodes)


# The pipeline, in order: each entry is Graph -> Graph.
PASSES = (
    casts_to_identity,  # float -> float Casts of activations are wires
    decompose_recurrent,  # LSTM / GRU -> the recurrence unrolled over the sequence
    split_batched_matmul,  # MatMul with a batched constant B -> one MatMul per batch
    decompose_ops,  # LayerNormalization -> means, a power, element-wise ops; Div -> Mul
    decompose_normalization,  # LRN -> Mul, channel AveragePool, power; Pow 2 / 0.5 -> Mul / Sqrt
    remove_identities,  # Identity / Dropout are wires at inference
    fold_batchnorm,  # BN into the preceding conv's weights, else a Mul + Add
    fuse_activations,  # activations into their producer's output stage
)


def run_passes(g: Graph) -> Graph:
    for p in PASSES:
        g = p(g)
    return g
