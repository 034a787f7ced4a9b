"""Emit the vector unit's data-selection ops: Slice, Split, Gather (constant indices), Resize
(nearest) and mirror Pad as strided copies (COPY), and ReduceMean / ReduceSum / ReduceMax as
pooling windows (POOL).
The function unit's ops are in lower/funcs.py."""

from __future__ import annotations

import itertools
import math

import numpy as np

from ndpsim.errors import UnsupportedOpError
from ndpsim.ir import Graph, Node
from ndpsim.isa import Opcode, PoolKind
from ndpsim.lower.activations import act_fields
from ndpsim.lower.bindings import Binding, PoolBinding
from ndpsim.lower.program import Placement
from ndpsim.lower.vector import VecContext, _chunks, _nbytes, emit_copy, emit_unary, row_major


def _offset(p: Placement, elements: int) -> Placement:
    return Placement(p.addr + elements, p.shape, p.bits, p.on_chip, p.token)


def copy_nd(
    ctx: VecContext,
    node: Node,
    x: Placement,
    y: Placement,
    x_name: str,
    dims: list[int],
    xs: list[int],
    ys: list[int],
    x_off: int,
    y_off: int,
    done: int,
    last: bool,
    y_name: str = "",
) -> list[Binding]:
    """Copy a strided view of any rank (dims with element strides of x and y, from element
    offsets x_off / y_off): one COPY descriptor when it merges to 4 dims, else one per index
    of the leading dims."""
    keep = [i for i, d in enumerate(dims) if d != 1]
    dims, xs, ys = [dims[i] for i in keep], [xs[i] for i in keep], [ys[i] for i in keep]
    merged: list[list[int]] = []
    for d, a, b in zip(dims, xs, ys, strict=True):
        if merged and merged[-1][1] == a * d and merged[-1][2] == b * d:
            merged[-1] = [merged[-1][0] * d, a, b]
        else:
            merged.append([d, a, b])
    lead, rest = merged[: max(0, len(merged) - 4)], merged[max(0, len(merged) - 4) :]
    out: list[Binding] = []
    combos = list(itertools.product(*[range(m[0]) for m in lead]))
    for j, idx in enumerate(combos):
        xo = x_off + sum(i * m[1] for i, m in zip(idx, lead, strict=True))
        yo = y_off + sum(i * m[2] for i, m in zip(idx, lead, strict=True))
        shape = tuple(m[0] for m in rest) or (1,)
        sx = tuple(m[1] for m in rest) or (0,)
        sy = tuple(m[2] for m in rest) or (0,)
        out.append(
            emit_copy(
                ctx,
                node,
                _offset(x, xo),
                y,
                shape,
                sx,
                sy,
                yo,
                x_name,
                None,
                [x.token],
                done,
                last=last and j == len(combos) - 1,
            )
        )
        out[-1].output = y_name or node.outputs[0]  # the value whose scale y is stored at
    return out


def _axis(node: Node, axis: int, rank: int) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        raise UnsupportedOpError(f"{node.op_type} {node.name!r}: axis {axis} out of range")
    return a


def _const_ints(g: Graph, node: Node, i: int) -> list[int] | None:
    if len(node.inputs) <= i or not node.inputs[i]:
        return None
    name = node.inputs[i]
    if name not in g.constants:
        raise UnsupportedOpError(
            f"{node.op_type} {node.name!r}: input {i} ({name!r}) must be a constant"
        )
    return [int(v) for v in np.asarray(g.constants[name]).reshape(-1)]


def slice_ranges(g: Graph, node: Node, shape: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Per axis (first index, step, count) of a Slice, ONNX clamping rules (numpy's)."""
    rank = len(shape)
    if g.opset < 10:
        starts, ends = list(node.attrs["starts"]), list(node.attrs["ends"])
        axes = list(node.attrs.get("axes") or range(len(starts)))
        steps = [1] * len(starts)
    else:
        starts, ends = _const_ints(g, node, 1), _const_ints(g, node, 2)
        axes = _const_ints(g, node, 3) or list(range(len(starts)))
        steps = _const_ints(g, node, 4) or [1] * len(starts)
    ranges = [(0, 1, d) for d in shape]
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        a = _axis(node, a, rank)
        if st == 0:
            raise UnsupportedOpError(f"Slice {node.name!r}: step 0")
        idx = range(shape[a])[slice(s, e, st)]
        ranges[a] = (idx.start if len(idx) else 0, st, len(idx))
    return ranges


def emit_slice(ctx: VecContext, g: Graph, node: Node, x: Placement, y: Placement) -> list[Binding]:
    ranges = slice_ranges(g, node, x.shape)
    rm = row_major(x.shape)
    off = sum(first * s for (first, _, _), s in zip(ranges, rm, strict=True))
    xs = [st * s for (_, st, _), s in zip(ranges, rm, strict=True)]
    done = ctx.b.token()
    dims = [c for _, _, c in ranges]
    out = copy_nd(ctx, node, x, y, node.inputs[0], dims, xs, list(row_major(y.shape)), off, 0,
                  done, True)  # fmt: skip
    y.token = done
    return out


def emit_split(
    ctx: VecContext, node: Node, x: Placement, ys: list[tuple[str, Placement]]
) -> list[Binding]:
    axis = _axis(node, int(node.attrs.get("axis", 0) or 0), len(x.shape))
    rm = row_major(x.shape)
    done = ctx.b.token()
    out, offset = [], 0
    for j, (y_name, y) in enumerate(ys):
        out += copy_nd(ctx, node, x, y, node.inputs[0], list(y.shape), list(rm),
                       list(row_major(y.shape)), offset * rm[axis], 0, done,
                       j == len(ys) - 1, y_name)  # fmt: skip
        offset += y.shape[axis]
    for _, y in ys:
        y.token = done
    return out


def emit_gather(ctx: VecContext, g: Graph, node: Node, x: Placement, y: Placement) -> list[Binding]:
    """Gather with constant indices: one strided copy when the indices step evenly, else one
    copy per index (each moves a slab of the data)."""
    name = node.inputs[1]
    if name not in g.constants:
        raise UnsupportedOpError(
            f"Gather {node.name!r}: indices {name!r} are not constant (only constant indices are "
            "lowered: data-dependent addressing has no instruction)"
        )
    shape = x.shape
    axis = _axis(node, int(node.attrs.get("axis", 0) or 0), len(shape))
    idx = np.asarray(g.constants[name]).astype(np.int64).reshape(-1)
    if ((idx < -shape[axis]) | (idx >= shape[axis])).any():
        raise UnsupportedOpError(f"Gather {node.name!r}: index out of range for axis {axis}")
    idx = np.where(idx < 0, idx + shape[axis], idx)
    rm = row_major(shape)
    outer, inner = shape[:axis], shape[axis + 1 :]
    # y as (outer, len(idx), inner) row-major
    ys = row_major((*outer, max(1, idx.size), *inner))
    done = ctx.b.token()
    step = int(idx[1] - idx[0]) if idx.size > 1 else 1
    if idx.size == 0:
        raise UnsupportedOpError(f"Gather {node.name!r}: no indices")
    if np.array_equal(idx, idx[0] + step * np.arange(idx.size)):
        dims = [*outer, idx.size, *inner]
        xs = [*rm[:axis], step * rm[axis], *rm[axis + 1 :]]
        out = copy_nd(ctx, node, x, y, node.inputs[0], dims, xs, list(ys), int(idx[0]) * rm[axis],
                      0, done, True)  # fmt: skip
    else:
        out = []
        dims = [*outer, *inner]
        xs = [*rm[:axis], *rm[axis + 1 :]]
        yss = [*ys[:axis], *ys[axis + 1 :]]
        for j, v in enumerate(idx):
            out += copy_nd(ctx, node, x, y, node.inputs[0], dims, xs, yss, int(v) * rm[axis],
                           j * ys[axis], done, j == idx.size - 1)  # fmt: skip
    y.token = done
    return out


def _merge(groups: list[tuple[int, int, int]]) -> list[list[int]]:
    """Merge adjacent (dim, x stride, y stride) entries contiguous in both operands."""
    merged: list[list[int]] = []
    for d, a, b in groups:
        if merged and merged[-1][1] == a * d and merged[-1][2] == b * d:
            merged[-1] = [merged[-1][0] * d, a, b]
        else:
            merged.append([d, a, b])
    return merged


# POOL kind of each reduction; ReduceSum takes its axes as an input from opset 13, the
# others from opset 18 (attribute before)
REDUCE_KINDS = {"ReduceMean": PoolKind.AVG, "ReduceSum": PoolKind.SUM, "ReduceMax": PoolKind.MAX}
_AXES_INPUT_OPSET = {"ReduceSum": 13}


def emit_reduce(ctx: VecContext, g: Graph, node: Node, x: Placement, y: Placement) -> list[Binding]:
    """ReduceMean / ReduceSum / ReduceMax as POOL windows: the reduced axes are a kh x kw
    window (after merging adjacent axes), the kept axes index the outputs (one descriptor per
    leading kept index when they do not merge into one). No axes: every axis, or with
    noop_with_empty_axes a copy."""
    shape = x.shape
    rank = len(shape)
    from_input = g.opset >= _AXES_INPUT_OPSET.get(node.op_type, 18)
    axes = _const_ints(g, node, 1) if from_input else node.attrs.get("axes")
    if not axes:
        if int(node.attrs.get("noop_with_empty_axes") or 0):
            return [emit_unary(ctx, node, x, y, node.inputs[0], None)]
        axes = list(range(rank))
    red = sorted({_axis(node, int(a), rank) for a in axes})
    rm = row_major(shape)
    kept_shape = [d for i, d in enumerate(shape) if i not in red]
    yrm = row_major(tuple(kept_shape))
    kept = _merge([(d, rm[i], yrm[j]) for j, (i, d) in
                   enumerate((i, d) for i, d in enumerate(shape) if i not in red)])  # fmt: skip
    reduced = _merge([(shape[i], rm[i], 0) for i in red])
    reduced = [m for m in reduced if m[0] != 1] or [[1, 1, 0]]
    if len(reduced) > 2:
        raise UnsupportedOpError(
            f"{node.op_type} {node.name!r}: reduced axes {red} of {shape} form more than 2 strided "
            "groups (a pooling window is 2-D)"
        )
    kh, sy = reduced[0][0], reduced[0][1]
    kw, sxx = (reduced[1][0], reduced[1][1]) if len(reduced) == 2 else (1, 1)
    kept = [m for m in kept if m[0] != 1] or [[1, 1, 1]]
    lead, (c, sc, osc) = kept[:-1], kept[-1]
    done = ctx.b.token()
    out = []
    combos = list(itertools.product(*[range(m[0]) for m in lead]))
    for j, ix in enumerate(combos):
        xo = sum(i * m[1] for i, m in zip(ix, lead, strict=True))
        yo = sum(i * m[2] for i, m in zip(ix, lead, strict=True))
        slot = ctx.b.fslots(1)
        desc = ctx.b.descriptor(
            "pool",
            kind=int(REDUCE_KINDS[node.op_type]),
            in_base=x.addr + xo,
            in_sc=sc,
            in_sy=sy,
            in_sx=sxx,
            c=c,
            h=kh,
            w=kw,
            out_base=y.addr + yo,
            out_sc=osc,
            out_sy=0,
            out_sx=0,
            oh=1,
            ow=1,
            kh=kh,
            kw=kw,
            stride_h=1,
            stride_w=1,
            dil_h=1,
            dil_w=1,
            r=slot,
            **act_fields(ctx.b, None),
        )
        n_in = c * kh * kw
        _chunks(ctx, Opcode.POOL, desc, c, kh * kw, _nbytes(n_in, x.bits), _nbytes(c, y.bits),
                [x.token], done if j == len(combos) - 1 else -1)  # fmt: skip
        out.append(PoolBinding(desc, node.name, (node.inputs[0],), node.outputs[0],
                               {"r": slot}))  # fmt: skip
    y.token = done
    return out


def nearest_map(node: Node, n_in: int, n_out: int, scale: float) -> list[int]:
    """Source index of every output index along one axis (ONNX Resize, mode nearest)."""
    ctm = node.attrs.get("coordinate_transformation_mode") or "half_pixel"
    mode = node.attrs.get("nearest_mode") or "round_prefer_floor"
    out = []
    for o in range(n_out):
        if ctm == "half_pixel":
            v = (o + 0.5) / scale - 0.5
        elif ctm == "pytorch_half_pixel":
            v = (o + 0.5) / scale - 0.5 if n_out > 1 else 0.0
        elif ctm == "asymmetric":
            v = o / scale
        elif ctm == "align_corners":
            v = o * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        elif ctm == "tf_half_pixel_for_nearest":
            v = (o + 0.5) / scale
        else:
            raise UnsupportedOpError(
                f"Resize {node.name!r}: coordinate_transformation_mode {ctm!r}"
            )
        frac = v - math.floor(v)
        if mode == "floor":
            i = math.floor(v)
        elif mode == "ceil":
            i = math.ceil(v)
        elif mode == "round_prefer_ceil":
            i = math.floor(v) + 1 if frac >= 0.5 else math.floor(v)
        else:  # round_prefer_floor
            i = math.floor(v) + 1 if frac > 0.5 else math.floor(v)
        out.append(min(max(i, 0), n_in - 1))
    return out


def _repeat_form(m: list[int]) -> tuple[int, int, int] | None:
    """(offset b, step a, repeat r) with m[o] = b + a * (o // r), or None."""
    n = len(m)
    for r in range(1, n + 1):
        if n % r:
            continue
        b = m[0]
        a = m[r] - m[0] if n > r else 0
        if all(m[o] == b + a * (o // r) for o in range(n)):
            return b, a, r
    return None


def emit_resize(ctx: VecContext, g: Graph, node: Node, x: Placement, y: Placement) -> list[Binding]:
    mode = node.attrs.get("mode") or "nearest"
    if mode != "nearest":
        raise UnsupportedOpError(f"Resize {node.name!r}: mode {mode!r} (only 'nearest')")
    for attr in ("antialias", "exclude_outside"):
        if int(node.attrs.get(attr) or 0):
            raise UnsupportedOpError(f"Resize {node.name!r}: {attr}")
    if node.attrs.get("axes"):
        raise UnsupportedOpError(f"Resize {node.name!r}: the axes attribute")
    xs_shape, ys_shape = x.shape, y.shape
    scales = None
    s_in = 2 if g.opset >= 11 else 1
    if len(node.inputs) > s_in and node.inputs[s_in]:
        vals = np.asarray(g.constants.get(node.inputs[s_in], np.zeros(0))).reshape(-1)
        if node.inputs[s_in] not in g.constants:
            raise UnsupportedOpError(f"Resize {node.name!r}: scales must be a constant")
        scales = [float(v) for v in vals] if vals.size else None
    rm, yrm = row_major(xs_shape), row_major(ys_shape)
    dims, xst, yst, off = [], [], [], 0
    for ax, (n_in, n_out) in enumerate(zip(xs_shape, ys_shape, strict=True)):
        scale = scales[ax] if scales else n_out / n_in
        m = nearest_map(node, n_in, n_out, scale)
        form = _repeat_form(m)
        if form is None:
            raise UnsupportedOpError(
                f"Resize {node.name!r}: axis {ax} maps {n_in} -> {n_out} irregularly "
                f"(source indices {m[:8]}...); only maps of the form b + a*(i // r) are lowered"
            )
        b, a, r = form
        off += b * rm[ax]
        dims += [n_out // r, r]
        xst += [a * rm[ax], 0]
        yst += [r * yrm[ax], yrm[ax]]
    done = ctx.b.token()
    out = copy_nd(ctx, node, x, y, node.inputs[0], dims, xst, yst, off, 0, done, True)
    y.token = done
    return out


def emit_pad_mirror(
    ctx: VecContext, g: Graph, node: Node, x: Placement, y: Placement
) -> list[Binding]:
    """Pad in mode reflect or edge: x into the centre of y, then axis by axis every padded
    slice is a copy of the slice of y it mirrors (edge: the border slice). Later axes copy
    the full extent of the axes already padded."""
    mode = node.attrs.get("mode")
    pads = _const_ints(g, node, 1) if g.opset >= 11 else [int(v) for v in node.attrs["pads"]]
    if len(node.inputs) > 3 and node.inputs[3]:
        raise UnsupportedOpError(f"Pad {node.name!r}: the axes input")
    rank = len(x.shape)
    begin, end = pads[:rank], pads[rank:]
    if any(p < 0 for p in pads):
        raise UnsupportedOpError(f"Pad {node.name!r}: negative pads (cropping)")
    if mode == "reflect" and any(
        max(b, e) >= d for b, e, d in zip(begin, end, x.shape, strict=True)
    ):
        raise UnsupportedOpError(f"Pad {node.name!r}: reflect pads must be smaller than the dims")
    ys = list(row_major(y.shape))
    done = ctx.b.token()
    centre = sum(b * s for b, s in zip(begin, ys, strict=True))
    jobs = []
    for a in range(rank):
        n = x.shape[a]
        for j in range(begin[a]):  # before: index j mirrors begin + (begin - j) (edge: begin)
            jobs.append((a, j, begin[a] + (begin[a] - j if mode == "reflect" else 0)))
        for j in range(end[a]):  # after: index begin+n+j mirrors begin+n-2-j (edge: begin+n-1)
            jobs.append(
                (a, begin[a] + n + j, begin[a] + n - 1 - (j + 1 if mode == "reflect" else 0))
            )
    out = copy_nd(ctx, node, x, y, node.inputs[0], list(x.shape), list(row_major(x.shape)), ys,
                  0, centre, done, not jobs)  # fmt: skip
    src_view = Placement(y.addr, y.shape, y.bits, y.on_chip, x.token)
    for k, (a, dst, src) in enumerate(jobs):
        dims, off = [], 0
        for i in range(rank):
            if i == a:
                dims.append(1)
            elif i < a:
                dims.append(y.shape[i])
            else:
                dims.append(x.shape[i])
                off += begin[i] * ys[i]
        out += copy_nd(ctx, node, src_view, y, node.outputs[0], dims, ys, ys, off + src * ys[a],
                       off + dst * ys[a], done, k == len(jobs) - 1)  # fmt: skip
    y.token = done
    return out
