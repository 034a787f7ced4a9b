"""MatMul of two activations (both operands computed at run time: attention's Q·Kᵀ and A·V)
on the vector unit. Neither operand is a weight the macros could hold resident, so the
product runs as MATMUL instructions on the layer's vector unit, one MAC per lane per cycle
(docs/machine_model.md, "The product of two activations"). ONNX semantics: batch dims
broadcast, a 1-D operand is promoted to a matrix and its added dim dropped from the output."""

from __future__ import annotations

import numpy as np

from ndpsim.errors import UnsupportedOpError
from ndpsim.isa import Opcode
from ndpsim.lower.activations import act_fields
from ndpsim.lower.bindings import Binding, MatmulBinding
from ndpsim.lower.context import NodeContext
from ndpsim.lower.vector import broadcast_strides, row_major


def _nbytes(n: int, bits: int) -> int:
    return (n * bits + 7) // 8


def _batch_view(batch: tuple[int, ...], *strides: tuple[int, ...], what: str):
    """The batch dims as exactly two (d0, d1), with each operand's element strides: size-1
    dims dropped, dims contiguous in every operand merged, leading 1s added."""
    dims = [(d, [s[i] for s in strides]) for i, d in enumerate(batch) if d != 1]
    merged: list[tuple[int, list[int]]] = []
    for d, ss in dims:
        if merged and all(ps == s * d for ps, s in zip(merged[-1][1], ss, strict=True)):
            merged[-1] = (merged[-1][0] * d, ss)
        else:
            merged.append((d, ss))
    if len(merged) > 2:
        raise UnsupportedOpError(f"{what}: more than 2 batch dims after merging ({batch})")
    merged = [(1, [0] * len(strides))] * (2 - len(merged)) + merged
    return tuple(d for d, _ in merged), *(tuple(ss[k] for _, ss in merged) for k in range(3))


def emit_matmul(ctx: NodeContext) -> list[Binding]:
    """MATMUL instructions over whole output rows, at most VECTOR_CHUNK MACs each (one row
    at least) and never across two batch matrices; the last one signals the layer's output.
    Each instruction reads its rows of A and all of its batch's B once (bytes_in) and writes
    its rows of y (bytes_out)."""
    node, (a, bb), y = ctx.node, ctx.ins[:2], ctx.y
    what = f"MatMul {node.name!r}"
    ashape = (1, *a.shape) if len(a.shape) == 1 else tuple(a.shape)
    bshape = (*bb.shape, 1) if len(bb.shape) == 1 else tuple(bb.shape)
    (m, k), (k_b, n) = ashape[-2:], bshape[-2:]
    if k != k_b:
        raise UnsupportedOpError(f"{what}: inner dims {k} and {k_b} differ")
    batch = tuple(int(d) for d in np.broadcast_shapes(ashape[:-2], bshape[:-2]))
    a_s = broadcast_strides(ashape[:-2], batch) if batch else ()
    b_s = broadcast_strides(bshape[:-2], batch) if batch else ()
    # the operands' batch strides in elements of the whole operand (row-major)
    a_s = tuple(s * m * k for s in a_s)
    b_s = tuple(s * k * n for s in b_s)
    y_s = tuple(s * m * n for s in row_major(batch))
    (d0, d1), sa, sb, sy = _batch_view(batch, a_s, b_s, y_s, what=what)
    slot = ctx.vec.b.fslots(1)
    desc = ctx.vec.b.descriptor(
        "matmul", a_base=a.addr, b_base=bb.addr, y_base=y.addr, d0=d0, d1=d1, m=m, k=k, n=n,
        a_s0=sa[0], a_s1=sa[1], a_sm=k, a_sk=1, b_s0=sb[0], b_s1=sb[1], b_sk=n, b_sn=1,
        y_s0=sy[0], y_s1=sy[1], y_sm=n, y_sn=1, r=slot, **act_fields(ctx.vec.b, ctx.act),
    )  # fmt: skip
    rows = max(1, min(m, ctx.vec.chunk // (k * n)))
    b_bytes = _nbytes(k * n, bb.bits)
    starts = [(base + i, min(rows, m - i)) for base in range(0, d0 * d1 * m, m)
              for i in range(0, m, rows)]  # fmt: skip
    done = ctx.vec.b.token()
    for j, (t, nr) in enumerate(starts):
        ctx.vec.b.emit(
            Opcode.MATMUL, ctx.vec.vector_unit, ctx.vec.layer, desc=desc, a1=t, a2=nr,
            a_bits=ctx.vec.a_bits, work=nr * n * k,
            bytes_in=_nbytes(nr * k, a.bits) + b_bytes, bytes_out=_nbytes(nr * n, y.bits),
            wait0=a.token, wait1=bb.token, signal=done if j == len(starts) - 1 else -1,
        )  # fmt: skip
    y.token = done
    ctx.layer.macs = d0 * d1 * m * n * k
    return [MatmulBinding(desc, node.name, tuple(ctx.in_names[:2]), node.outputs[0],
                          {"r": slot}, act=ctx.act)]  # fmt: skip
