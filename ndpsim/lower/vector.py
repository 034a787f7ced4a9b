"""Emit vector-unit layers: element-wise Add / Sub / Mul / Sum / Max / Min / Div, pooling,
softmax, and data movement (Transpose, Concat, Pad, standalone activations) as strided 4-D
copies with requantization."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ndpsim.errors import UnsupportedOpError
from ndpsim.ir import Graph, Node
from ndpsim.isa import EltwiseKind, Opcode, PoolKind
from ndpsim.lower.activations import act_fields
from ndpsim.lower.bindings import (
    Binding,
    CopyBinding,
    EltwiseBinding,
    PoolBinding,
    SoftmaxBinding,
)
from ndpsim.lower.program import Builder, Placement
from ndpsim.lower.tiling import begin_pads  # pooling follows Conv's auto_pad rules


@dataclass
class VecContext:
    b: Builder
    vector_unit: int
    dma_unit: int
    layer: int
    chunk: int  # elements per vector instruction
    a_bits: int


def row_major(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return tuple(reversed(strides))


def view4(shape: tuple[int, ...], *strides: tuple[int, ...], what: str) -> tuple[tuple, ...]:
    """Reduce a shape and the operands' element strides to exactly 4 dims: drop size-1 dims,
    merge dims that are contiguous in every operand, pad with leading 1s."""
    dims = [(d, [s[i] for s in strides]) for i, d in enumerate(shape) if d != 1]
    merged: list[tuple[int, list[int]]] = []
    for d, ss in dims:
        if merged and all(ps == s * d for ps, s in zip(merged[-1][1], ss, strict=True)):
            pd, _ = merged[-1]
            merged[-1] = (pd * d, ss)
        else:
            merged.append((d, ss))
    if len(merged) > 4:
        raise UnsupportedOpError(f"{what}: more than 4 non-trivial dims after merging ({shape})")
    merged = [(1, [0] * len(strides))] * (4 - len(merged)) + merged
    return (
        tuple(d for d, _ in merged),
        *(tuple(ss[k] for _, ss in merged) for k in range(len(strides))),
    )


def broadcast_strides(in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = (1,) * (len(out_shape) - len(in_shape)) + tuple(in_shape)
    rm = row_major(shape)
    return tuple(
        0 if d == 1 and o != 1 else s for d, s, o in zip(shape, rm, out_shape, strict=True)
    )


def _nbytes(n: int, bits: int) -> int:
    return (n * bits + 7) // 8


def _chunks(
    ctx: VecContext,
    op: Opcode,
    desc: int,
    total: int,
    per_item_work: int,
    in_bytes_total: int,
    out_bytes_total: int,
    waits: list[int],
    done: int,
    n_items: int | None = None,
) -> None:
    """Split `total` work items into instructions; the last one signals `done` (the unit
    runs in order, so it finishes last)."""
    step = max(1, ctx.chunk // max(1, per_item_work))
    w = (waits + [-1, -1, -1])[:3]
    starts = list(range(0, total, step)) or [0]
    for j, s in enumerate(starts):
        n = min(step, total - s)
        last = j == len(starts) - 1
        ctx.b.emit(
            op,
            ctx.vector_unit,
            ctx.layer,
            desc=desc,
            a1=s,
            a2=n,
            a_bits=ctx.a_bits,
            work=n * per_item_work,
            bytes_in=in_bytes_total * n // max(1, total),
            bytes_out=out_bytes_total * n // max(1, total),
            wait0=w[0],
            wait1=w[1],
            wait2=w[2],
            signal=done if last else -1,
        )


# ELTWISE kind of each two-operand op (Add, Sub, Sum: ADD, Sub with a negative rb)
ELTWISE_KINDS = {"Mul": EltwiseKind.MUL, "Max": EltwiseKind.MAX, "Min": EltwiseKind.MIN,
                 "Div": EltwiseKind.DIV}  # fmt: skip


def emit_eltwise(
    ctx: VecContext,
    node: Node,
    a: Placement,
    bb: Placement,
    y: Placement,
    a_name: str,
    b_name: str,
    act: tuple | None,
) -> Binding:
    kind = ELTWISE_KINDS.get(node.op_type, EltwiseKind.ADD)  # Add, Sub, Sum: ADD
    dims, sa, sb, sy = view4(
        y.shape,
        broadcast_strides(a.shape, y.shape),
        broadcast_strides(bb.shape, y.shape),
        row_major(y.shape),
        what=f"{node.op_type} {node.name!r}",
    )
    slot = ctx.b.fslots(2)
    desc = ctx.b.descriptor(
        "eltwise",
        kind=int(kind),
        a_base=a.addr,
        b_base=bb.addr,
        y_base=y.addr,
        **{f"d{i}": dims[i] for i in range(4)},
        **{f"a_s{i}": sa[i] for i in range(4)},
        **{f"b_s{i}": sb[i] for i in range(4)},
        **{f"y_s{i}": sy[i] for i in range(4)},
        ra=slot,
        rb=slot + 1,
        **act_fields(ctx.b, act),
    )
    done = ctx.b.token()
    _chunks(
        ctx,
        Opcode.ELTWISE,
        desc,
        y.size,
        1,
        a.nbytes + bb.nbytes,
        y.nbytes,
        [a.token, bb.token],
        done,
    )
    y.token = done
    op = "sub" if node.op_type == "Sub" else kind.name.lower()
    return EltwiseBinding(desc, node.name, (a_name, b_name), node.outputs[0],
                          {"ra": slot, "rb": slot + 1}, op=op, act=act)  # fmt: skip


def emit_pool(
    ctx: VecContext, g: Graph, node: Node, x: Placement, y: Placement, act: tuple | None
) -> Binding:
    xs, ys = x.shape, y.shape
    if len(xs) != 4 or xs[0] != 1:
        raise UnsupportedOpError(f"{node.op_type} {node.name!r}: only 2-D pooling, batch 1")
    if node.op_type == "GlobalAveragePool":
        k, s, d, p = (xs[2], xs[3]), (1, 1), (1, 1), (0, 0)
        include_pad = 0
    else:
        if int(node.attrs.get("storage_order", 0) or 0) != 0:
            raise UnsupportedOpError(f"MaxPool {node.name!r}: storage_order=1")
        if len(node.outputs) > 1 and node.outputs[1]:
            raise UnsupportedOpError(f"MaxPool {node.name!r}: the Indices output")
        k = tuple(int(v) for v in node.attrs["kernel_shape"])
        s = tuple(int(v) for v in (node.attrs.get("strides") or (1, 1)))
        d = tuple(int(v) for v in (node.attrs.get("dilations") or (1, 1)))
        p = begin_pads(node, xs[2:], ys[2:], k, s, d)
        include_pad = int(node.attrs.get("count_include_pad", 0) or 0)
    kind = PoolKind.MAX if node.op_type == "MaxPool" else PoolKind.AVG
    slot = ctx.b.fslots(1)
    desc = ctx.b.descriptor(
        "pool",
        kind=int(kind),
        in_base=x.addr,
        in_sc=xs[2] * xs[3],
        in_sy=xs[3],
        in_sx=1,
        c=xs[1],
        h=xs[2],
        w=xs[3],
        out_base=y.addr,
        out_sc=ys[2] * ys[3],
        out_sy=ys[3],
        out_sx=1,
        oh=ys[2],
        ow=ys[3],
        kh=k[0],
        kw=k[1],
        stride_h=s[0],
        stride_w=s[1],
        dil_h=d[0],
        dil_w=d[1],
        pad_top=p[0],
        pad_left=p[1],
        count_include_pad=include_pad,
        r=slot,
        **act_fields(ctx.b, act),
    )
    done = ctx.b.token()
    _chunks(ctx, Opcode.POOL, desc, y.size, k[0] * k[1], x.nbytes, y.nbytes, [x.token], done)
    y.token = done
    return PoolBinding(desc, node.name, (node.inputs[0],), node.outputs[0], {"r": slot}, act=act)


def emit_softmax(ctx: VecContext, g: Graph, node: Node, x: Placement, y: Placement) -> Binding:
    shape = x.shape
    axis = int(node.attrs.get("axis", -1 if g.opset >= 13 else 1))
    axis = axis + len(shape) if axis < 0 else axis
    if g.opset < 13:  # coerced to 2-D at `axis`: softmax over everything from axis on
        outer, length, inner = int(np.prod(shape[:axis])), int(np.prod(shape[axis:])), 1
    else:
        outer, length = int(np.prod(shape[:axis])), shape[axis]
        inner = int(np.prod(shape[axis + 1 :]))
    slot = ctx.b.fslots(2)
    desc = ctx.b.descriptor(
        "softmax",
        x_base=x.addr,
        y_base=y.addr,
        outer=outer,
        length=length,
        inner=inner,
        sx=slot,
        sy=slot + 1,
    )
    done = ctx.b.token()
    _chunks(ctx, Opcode.SOFTMAX, desc, outer * inner, length, x.nbytes, y.nbytes, [x.token], done)
    y.token = done
    return SoftmaxBinding(
        desc, node.name, (node.inputs[0],), node.outputs[0], {"sx": slot, "sy": slot + 1}
    )


def emit_copy(
    ctx: VecContext,
    node: Node,
    x: Placement,
    y: Placement,
    dims_shape: tuple,
    x_strides: tuple,
    y_strides: tuple,
    y_offset: int,
    x_name: str,
    act: tuple | None,
    waits: list[int],
    done: int,
    last: bool = True,
) -> Binding:
    """One strided copy x -> y (+ requantization and activation)."""
    dims, sx, sy = view4(dims_shape, x_strides, y_strides, what=f"{node.op_type} {node.name!r}")
    slot = ctx.b.fslots(1)
    desc = ctx.b.descriptor(
        "copy",
        x_base=x.addr,
        y_base=y.addr + y_offset,
        **{f"d{i}": dims[i] for i in range(4)},
        **{f"x_s{i}": sx[i] for i in range(4)},
        **{f"y_s{i}": sy[i] for i in range(4)},
        r=slot,
        **act_fields(ctx.b, act),
    )
    n = int(np.prod(dims_shape)) if dims_shape else 1
    _chunks(
        ctx,
        Opcode.COPY,
        desc,
        n,
        1,
        _nbytes(n, x.bits) if x.size > 1 else 1,
        _nbytes(n, y.bits),
        waits,
        done if last else -1,
    )
    return CopyBinding(desc, node.name, (x_name,), node.outputs[0], {"r": slot}, act=act)


def emit_unary(
    ctx: VecContext, node: Node, x: Placement, y: Placement, x_name: str, act: tuple | None
) -> Binding:
    """y = act(x), element by element (a standalone activation, a Sum of one input)."""
    done = ctx.b.token()
    rm = row_major(y.shape)
    bnd = emit_copy(ctx, node, x, y, y.shape, rm, rm, 0, x_name, act, [x.token], done)
    y.token = done
    return bnd


def emit_transpose(
    ctx: VecContext, node: Node, x: Placement, y: Placement, act: tuple | None
) -> list[Binding]:
    perm = node.attrs.get("perm") or tuple(reversed(range(len(x.shape))))
    xs = row_major(x.shape)
    done = ctx.b.token()
    bnd = emit_copy(
        ctx,
        node,
        x,
        y,
        y.shape,
        tuple(xs[p] for p in perm),
        row_major(y.shape),
        0,
        node.inputs[0],
        act,
        [x.token],
        done,
    )
    y.token = done
    return [bnd]


def emit_concat(
    ctx: VecContext, node: Node, xs: list[tuple[str, Placement]], y: Placement
) -> list[Binding]:
    axis = int(node.attrs["axis"])
    axis = axis + len(y.shape) if axis < 0 else axis
    ys = row_major(y.shape)
    done = ctx.b.token()
    out, offset = [], 0
    for i, (name, x) in enumerate(xs):
        out.append(
            emit_copy(
                ctx,
                node,
                x,
                y,
                x.shape,
                row_major(x.shape),
                ys,
                offset * ys[axis],
                name,
                None,
                [x.token],
                done,
                last=i == len(xs) - 1,
            )
        )
        offset += x.shape[axis]
    y.token = done
    return out


def emit_pad(
    ctx: VecContext, g: Graph, node: Node, x: Placement, y: Placement, fill: tuple[str, Placement]
) -> list[Binding]:
    mode = node.attrs.get("mode", "constant")
    if mode != "constant":
        raise UnsupportedOpError(f"Pad {node.name!r}: mode {mode!r} (only 'constant')")
    if g.opset >= 11:
        pads = [int(v) for v in g.constants[node.inputs[1]].reshape(-1)]
        if len(node.inputs) > 3 and node.inputs[3]:
            raise UnsupportedOpError(f"Pad {node.name!r}: the axes input")
    else:
        pads = [int(v) for v in node.attrs["pads"]]
    if any(p < 0 for p in pads):
        raise UnsupportedOpError(f"Pad {node.name!r}: negative pads (cropping)")
    rank = len(x.shape)
    ys = row_major(y.shape)
    offset = sum(pads[i] * ys[i] for i in range(rank))
    done = ctx.b.token()
    fname, fp = fill
    b1 = emit_copy(ctx, node, fp, y, y.shape, (0,) * rank, ys, 0, fname, None, [], done, False)
    b2 = emit_copy(
        ctx,
        node,
        x,
        y,
        x.shape,
        row_major(x.shape),
        ys,
        offset,
        node.inputs[0],
        None,
        [x.token],
        done,
    )
    y.token = done
    return [b1, b2]
