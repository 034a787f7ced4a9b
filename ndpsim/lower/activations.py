"""Activations the vector unit applies in an output stage (Relu, Clip, LeakyRelu): the record
a fused activation carries (`("Clip", lo, hi)`), and its descriptor fields."""

from __future__ import annotations

import numpy as np

from ndpsim.ir import Graph, Node
from ndpsim.isa import Act
from ndpsim.lower.program import Builder

ACTIVATION_OPS = frozenset({"Relu", "Clip", "LeakyRelu"})


def activation_of(g: Graph, node: Node) -> tuple | None:
    """The fused-activation record of an activation node, or None if it cannot be fused."""
    if node.op_type == "Relu":
        return ("Relu",)
    if node.op_type == "LeakyRelu":
        return ("LeakyRelu", float(node.attrs.get("alpha", 0.01)))
    if node.op_type == "Clip":
        if g.opset < 11:
            lo, hi = node.attrs.get("min"), node.attrs.get("max")
        else:
            names = list(node.inputs[1:3]) + ["", ""]
            if any(n and n not in g.constants for n in names[:2]):
                return None
            lo = float(g.constants[names[0]]) if names[0] else None
            hi = float(g.constants[names[1]]) if names[1] else None
        lo = -np.inf if lo is None else float(lo)
        hi = np.inf if hi is None else float(hi)
        return ("Clip", lo, hi)
    return None


def act_fields(b: Builder, act: tuple | None) -> dict[str, int]:
    """Descriptor fields of a fused activation; CLIP / LEAKY params live in float slots that
    `bind` fills (in the output's quantized domain)."""
    if act is None:
        return {"act": int(Act.NONE), "act_p0": 0, "act_p1": 0}
    kind = {"Relu": Act.RELU, "Clip": Act.CLIP, "LeakyRelu": Act.LEAKY_RELU}[act[0]]
    slot = b.fslots(2)
    return {"act": int(kind), "act_p0": slot, "act_p1": slot + 1}
