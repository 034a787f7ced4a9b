"""The kernels the machine executes as one unit, as the lowering decided them.

A kernel is one report row of the Program (a `Layer`): a MAC op with the activation and
requantization fused into its output stage, a vector op with its fused activation, or a
host transfer. The lowering fuses activations into their producer (lower/passes.py) and
nothing larger: an inverted-bottleneck (IBN) block runs as its expansion, depthwise and
projection kernels (plus the residual Add), and a fused-IBN block as its full expansion
conv and its projection. The estimator (ndpsim/estimator) reports its accuracy per kernel type
and fits its residual regressors per kernel type, so its units are the simulator's own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ndpsim.ir import Graph, Node
from ndpsim.lower.tiling import ConvGeom

# Kernel types: the estimator reports accuracy and fits its residual regressors per type.
MAC_TYPES = ("conv", "conv1x1", "dwconv", "gconv", "fc")
VECTOR_TYPES = ("add", "mul", "pool", "gap", "softmax", "copy", "matmul")
IO_TYPES = ("input", "output")
KERNEL_TYPES = MAC_TYPES + VECTOR_TYPES + IO_TYPES
ACTIVATIONS = ("none", "Relu", "Clip", "LeakyRelu")


@dataclass(frozen=True)
class Kernel:
    """Geometry of one executed unit. Spatial fields are 1 where they do not apply; a
    tensor of rank 2 is (C=features), rank 3 is (C, 1, L)."""

    kernel_type: str
    ops: tuple[str, ...]
    layer_index: int  # position in Program.layers (the vector unit is layer_index % cores)
    c_in: int
    h_in: int
    w_in: int
    c_out: int
    h_out: int
    w_out: int
    kh: int = 1
    kw: int = 1
    stride_h: int = 1
    stride_w: int = 1
    dil_h: int = 1
    dil_w: int = 1
    pad_h: int = 0
    pad_w: int = 0
    groups: int = 1
    act: str = "none"
    n_inputs: int = 1
    w_bits: int = 0
    a_bits: int = 8

    def as_row(self) -> dict:
        row = asdict(self)
        row["ops"] = "+".join(self.ops)
        return row


def chw(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) of an activation shape with a leading batch of 1."""
    dims = tuple(int(d) for d in shape[1:]) if len(shape) > 1 else tuple(int(d) for d in shape)
    if len(dims) >= 3:
        c, h = dims[0], dims[1]
        w = 1
        for d in dims[2:]:
            w *= d
        return c, h, w
    if len(dims) == 2:
        return dims[0], 1, dims[1]
    return (dims[0] if dims else 1), 1, 1


def mac_kernel(node: Node, geom: ConvGeom, act: tuple | None, li: int, w_bits: int, a_bits: int):
    """The kernel of a MAC layer: the op, its fused activation, and its requantization."""
    if node.op_type != "Conv":
        kind = "fc"
    elif geom.groups == 1:
        kind = "conv1x1" if geom.kh * geom.kw == 1 else "conv"
    elif geom.groups == geom.cin == geom.cout:
        kind = "dwconv"
    else:
        kind = "gconv"
    return Kernel(
        kind,
        (node.op_type, *((act[0],) if act else ())),
        li,
        geom.cin,
        geom.h,
        geom.w,
        geom.cout,
        geom.oh,
        geom.ow,
        geom.kh,
        geom.kw,
        geom.stride[0],
        geom.stride[1],
        geom.dilation[0],
        geom.dilation[1],
        geom.pad[0],
        geom.pad[1],
        geom.groups,
        act[0] if act else "none",
        1,
        w_bits,
        a_bits,
    )


def vector_kernel(
    g: Graph, node: Node, inputs: list[str], act: tuple | None, li: int, a_bits: int, kind: str
):
    """The kernel of a vector layer of type `kind` (the op registry's kernel_type)."""
    op = node.op_type
    c, h, w = chw(g.tensors[inputs[0]].shape)
    co, ho, wo = chw(g.tensors[node.outputs[0]].shape)
    k, s = (1, 1), (1, 1)
    if op in ("MaxPool", "AveragePool"):
        k = tuple(node.attrs.get("kernel_shape", (1, 1)))[-2:]
        s = tuple(node.attrs.get("strides") or k)[-2:]
    elif op == "GlobalAveragePool":
        k = (h, w)
    k, s = ((1, *k) if len(k) == 1 else k), ((1, *s) if len(s) == 1 else s)
    return Kernel(
        kind,
        (op, *((act[0],) if act else ())),
        li,
        c,
        h,
        w,
        co,
        ho,
        wo,
        int(k[0]),
        int(k[1]),
        int(s[0]),
        int(s[1]),
        act=act[0] if act else "none",
        n_inputs=len(inputs),
        a_bits=a_bits,
    )


def io_kernel(kind: str, shape: tuple[int, ...], li: int, a_bits: int) -> Kernel:
    """A host transfer of a graph input or output."""
    c, h, w = chw(shape)
    return Kernel(kind, ("Host",), li, c, h, w, c, h, w, a_bits=a_bits)
