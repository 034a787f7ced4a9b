"""MAC-op geometry and tiling onto macros: the equations that make the parallelism-factor steps.

Every Conv / Gemm / MatMul becomes a grouped 2-D convolution over strided views
(Gemm/MatMul: 1x1 kernels, the rows of A as pixels). A group's weights form a
K_g = cin_g*kh*kw by cout_g matrix; groups small enough to share a macro are packed
block-diagonally (depthwise: kh*kw rows and 1 column per channel), larger ones fold into
ceil(K_g/rows) x ceil(cout_g/cols) tiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ndpsim.errors import UnsupportedOpError
from ndpsim.ir import Graph, Node


@dataclass(frozen=True)
class ConvGeom:
    """A MAC op as a grouped conv: input (cin, h, w) and output (cout, oh, ow) as strided
    views of row-major tensors, the kernel window, and how to read the weight matrix."""

    cin: int
    h: int
    w: int
    cout: int
    oh: int
    ow: int
    kh: int
    kw: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad: tuple[int, int]  # top, left
    groups: int
    in_strides: tuple[int, int, int]  # element strides of (c, y, x) in the input tensor
    out_strides: tuple[int, int, int]
    weight: str  # constant holding the weights
    bias: str  # constant holding the bias, or ""
    layout: str  # "conv" ([cout, cin_g, kh, kw]), "kn" (B[K, N]) or "nk" (B^T)

    @property
    def cin_g(self) -> int:
        return self.cin // self.groups

    @property
    def cout_g(self) -> int:
        return self.cout // self.groups

    @property
    def k_g(self) -> int:
        return self.cin_g * self.kh * self.kw

    @property
    def pixels(self) -> int:
        return self.oh * self.ow

    @property
    def macs(self) -> int:
        return self.pixels * self.cout * self.k_g


def begin_pads(
    node: Node,
    in_hw: tuple[int, ...],
    out_hw: tuple[int, ...],
    k: tuple[int, ...],
    s: tuple[int, ...],
    d: tuple[int, ...],
) -> tuple[int, ...]:
    """Begin pads per spatial axis, from `pads` or `auto_pad` (ONNX semantics)."""
    auto = node.attrs.get("auto_pad", "NOTSET") or "NOTSET"
    n = len(in_hw)
    if auto in ("NOTSET", "VALID"):
        pads = node.attrs.get("pads") or (0,) * (2 * n)
        return tuple(int(p) for p in pads[:n]) if auto == "NOTSET" else (0,) * n
    begins = []
    for i in range(n):
        total = max(0, (out_hw[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in_hw[i])
        begins.append(total // 2 if auto == "SAME_UPPER" else total - total // 2)
    return tuple(begins)


def _spatial(node: Node, rank: int, name: str, default: int) -> tuple[int, ...]:
    v = node.attrs.get(name)
    return tuple(int(x) for x in v) if v else (default,) * rank


def conv_geometry(g: Graph, node: Node) -> ConvGeom:
    x, wname = node.inputs[0], node.inputs[1]
    bias = node.inputs[2] if len(node.inputs) > 2 else ""
    if wname not in g.constants or (bias and bias not in g.constants):
        raise UnsupportedOpError(f"Conv {node.name!r}: weights and bias must be constants")
    xs, ys = g.tensors[x].shape, g.tensors[node.outputs[0]].shape
    w = g.constants[wname]
    if len(xs) not in (3, 4) or xs[0] != 1:
        raise UnsupportedOpError(
            f"Conv {node.name!r}: only 1-D and 2-D convolutions with batch 1 (input {xs})"
        )
    if len(xs) == 3:  # Conv1d: a 2-D conv of height 1
        xs, ys, ks = (xs[0], xs[1], 1, xs[2]), (ys[0], ys[1], 1, ys[2]), (1, w.shape[2])
        s = (1, *_spatial(node, 1, "strides", 1))
        d = (1, *_spatial(node, 1, "dilations", 1))
        p = (0, *begin_pads(node, xs[3:], ys[3:], ks[1:], s[1:], d[1:]))
    else:
        ks = (w.shape[2], w.shape[3])
        s, d = _spatial(node, 2, "strides", 1), _spatial(node, 2, "dilations", 1)
        p = begin_pads(node, xs[2:], ys[2:], ks, s, d)
    cin, h, wd = xs[1], xs[2], xs[3]
    cout, oh, ow = ys[1], ys[2], ys[3]
    return ConvGeom(
        cin,
        h,
        wd,
        cout,
        oh,
        ow,
        ks[0],
        ks[1],
        tuple(s),
        tuple(d),
        tuple(p),
        int(node.attrs.get("group", 1)),
        (h * wd, wd, 1),
        (oh * ow, ow, 1),
        wname,
        bias,
        "conv",
    )


def matmul_geometry(g: Graph, node: Node) -> ConvGeom:
    """Gemm / MatMul with a constant right-hand side: rows of A are pixels, K the input
    channels, N the output channels."""
    a, b = node.inputs[0], node.inputs[1]
    if b not in g.constants:
        raise UnsupportedOpError(
            f"{node.op_type} {node.name!r}: the right-hand operand must be a constant "
            "(activation x activation products are not mapped onto the macros)"
        )
    ashape = g.tensors[a].shape
    bshape = g.constants[b].shape
    if len(bshape) > 2 and all(d == 1 for d in bshape[:-2]):
        bshape = bshape[-2:]
    if len(bshape) != 2:
        raise UnsupportedOpError(f"{node.op_type} {node.name!r}: weights must be 2-D")
    if len(ashape) > 2:  # batched A times a 2-D B: every row of every batch is a pixel
        ashape = (int(np.prod(ashape[:-1])), ashape[-1])
    trans_a = node.op_type == "Gemm" and int(node.attrs.get("transA", 0)) == 1
    trans_b = node.op_type == "Gemm" and int(node.attrs.get("transB", 0)) == 1
    m, k = (
        (ashape[-1], ashape[-2])
        if trans_a
        else ((ashape[-2] if len(ashape) > 1 else 1), ashape[-1])
    )
    n = bshape[0] if trans_b else bshape[1]
    in_strides = (m, 1, 1) if trans_a else (1, k, 1)
    bias = node.inputs[2] if node.op_type == "Gemm" and len(node.inputs) > 2 else ""
    if bias and bias not in g.constants:
        raise UnsupportedOpError(f"Gemm {node.name!r}: C must be a constant")
    if bias and g.constants[bias].size not in (1, n):
        raise UnsupportedOpError(f"Gemm {node.name!r}: C must broadcast along N only")
    return ConvGeom(
        k,
        m,
        1,
        n,
        m,
        1,
        1,
        1,
        (1, 1),
        (1, 1),
        (0, 0),
        1,
        in_strides,
        (1, n, 1),
        b,
        bias,
        "nk" if trans_b else "kn",
    )


def geometry(g: Graph, node: Node) -> ConvGeom:
    return conv_geometry(g, node) if node.op_type == "Conv" else matmul_geometry(g, node)


def weight_matrix(g: Graph, node: Node, geom: ConvGeom, dtype: Any = np.float64) -> np.ndarray:
    """The weights as [cout, K_g] (row co holds the K_g weights of output channel co), in
    `dtype` (None: the constant's own float type, with no copy where the layout allows it;
    a Gemm's alpha other than 1 makes it float64)."""
    w = np.asarray(g.constants[geom.weight], dtype=dtype)
    if geom.layout == "conv":
        m = w.reshape(geom.cout, geom.k_g)
    else:
        w = w.reshape(w.shape[-2:])  # a [1, .., K, N] MatMul operand is 2-D
        m = (w if geom.layout == "nk" else w.T).reshape(geom.cout, geom.k_g)
    alpha = float(node.attrs.get("alpha", 1.0)) if node.op_type == "Gemm" else 1.0
    return m * alpha if alpha != 1.0 else m


def bias_vector(g: Graph, node: Node, geom: ConvGeom) -> np.ndarray | None:
    if not geom.bias:
        return None
    b = np.broadcast_to(np.asarray(g.constants[geom.bias], np.float64).reshape(-1), (geom.cout,))
    if node.op_type == "Gemm":
        b = b * float(node.attrs.get("beta", 1.0))
    return np.array(b)


@dataclass(frozen=True)
class Tile:
    g0: int
    g1: int
    k0: int
    k1: int
    c0: int
    c1: int

    @property
    def rows(self) -> int:
        return (self.g1 - self.g0) * (self.k1 - self.k0)

    @property
    def cols(self) -> int:
        return (self.g1 - self.g0) * (self.c1 - self.c0)

    @property
    def macs_per_vector(self) -> int:
        return (self.g1 - self.g0) * (self.k1 - self.k0) * (self.c1 - self.c0)


def groups_per_tile(geom: ConvGeom, rows: int, cols: int) -> int:
    """Groups one tile holds when a group fits a macro (block-diagonal packing), else 0: each
    group then folds into ceil(K_g/rows) x ceil(cout_g/cols) tiles."""
    return groups_per_tile_of(geom.k_g, geom.cout_g, geom.groups, rows, cols)


# The scalar forms below are the equations themselves, on plain integers, so that the
# estimator can compile them (numba) into its planning kernel: one definition for both.
def groups_per_tile_of(k_g: int, cout_g: int, groups: int, rows: int, cols: int) -> int:
    """groups_per_tile of a geometry given as integers."""
    if k_g <= rows and cout_g <= cols:
        return max(1, min(rows // k_g, cols // cout_g, groups))
    return 0


def tiles_for(geom: ConvGeom, rows: int, cols: int) -> list[list[Tile]]:
    """Tiles grouped by output-column tile: each inner list holds the K-folds that sum into
    the same outputs. Groups that fit share a macro block-diagonally."""
    k_g, c_g, groups = geom.k_g, geom.cout_g, geom.groups
    per = groups_per_tile(geom, rows, cols)
    if per:
        return [[Tile(g, min(g + per, groups), 0, k_g, 0, c_g)] for g in range(0, groups, per)]
    out = []
    for g in range(groups):
        for c0 in range(0, c_g, cols):
            out.append(
                [
                    Tile(g, g + 1, k0, min(k0 + rows, k_g), c0, min(c0 + cols, c_g))
                    for k0 in range(0, k_g, rows)
                ]
            )
    return out


def pixel_block(geom: ConvGeom, cols_used: int, accumulator_entries: int) -> int:
    """Output pixels per MVM: the partial-sum buffer holds two blocks (double buffering) of
    cols_used words each; blocks are whole output rows when a row fits."""
    return pixel_block_of(geom.ow, geom.pixels, cols_used, accumulator_entries)


def pixel_block_of(ow: int, pixels: int, cols_used: int, accumulator_entries: int) -> int:
    """pixel_block of a geometry given as its output row width and pixel count."""
    px = max(1, accumulator_entries // (2 * max(1, cols_used)))
    if px >= ow:
        px = (px // ow) * ow
    return min(px, pixels)


def input_bytes_for_block(geom: ConvGeom, tile: Tile, p0: int, n: int, a_bits: int) -> int:
    """SRAM bytes an MVM reads: the distinct input elements its pixel block touches in the
    tile's input channels (a line buffer reuses overlapping windows)."""
    return input_bytes_of(geom.h, geom.w, geom.ow, geom.stride[0], geom.stride[1], geom.kh,
                          geom.kw, geom.dilation[0], geom.dilation[1], tile.g1 - tile.g0,
                          tile.k0, tile.k1, p0, n, a_bits)  # fmt: skip


def input_bytes_of(h: int, w: int, ow: int, stride_h: int, stride_w: int, kh: int, kw: int,
                   dilation_h: int, dilation_w: int, groups: int, k0: int, k1: int, p0: int,
                   n: int, a_bits: int) -> int:  # fmt: skip
    """input_bytes_for_block of a geometry and a tile (`groups` groups, K-range k0..k1)
    given as integers."""
    oy0, oy1 = p0 // ow, (p0 + n - 1) // ow
    span_h = min(h, (oy1 - oy0) * stride_h + (kh - 1) * dilation_h + 1)
    if oy0 == oy1:
        span_w = min(w, (n - 1) * stride_w + (kw - 1) * dilation_w + 1)
    else:
        span_w = w
    khw = kh * kw
    ch = groups * (-(-k1 // khw) - k0 // khw)  # ceil(k1 / khw) - floor(k0 / khw)
    return (ch * span_h * span_w * a_bits + 7) // 8
