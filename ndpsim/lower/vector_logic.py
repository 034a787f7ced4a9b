"""Emit the vector unit's comparisons, logic and selection: Greater, Less, Equal,
GreaterOrEqual, LessOrEqual, And, Or, Not and Where, as ELTWISE instructions of the
comparison, logic and select kinds (isa/isa.toml) over broadcasting 4-D views.

A comparison compares its operands' real values (each at its own scale) and stores a bool
as 0 / 1; Where copies its else operand into the output (requantized, broadcast), then a
SELECT writes the then operand where the condition holds."""

from __future__ import annotations

from ndpsim.isa import EltwiseKind, Opcode
from ndpsim.lower.bindings import Binding, EltwiseBinding
from ndpsim.lower.context import NodeContext
from ndpsim.lower.program import Placement
from ndpsim.lower.vector import _chunks, broadcast_strides, emit_copy, row_major, view4

KINDS = {
    "Greater": EltwiseKind.GREATER,
    "Less": EltwiseKind.LESS,
    "Equal": EltwiseKind.EQUAL,
    "GreaterOrEqual": EltwiseKind.GREATER_EQUAL,
    "LessOrEqual": EltwiseKind.LESS_EQUAL,
    "And": EltwiseKind.AND,
    "Or": EltwiseKind.OR,
    "Not": EltwiseKind.NOT,
}
COMPARISONS = frozenset(("Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual"))


def _eltwise(ctx: NodeContext, kind: EltwiseKind, a: Placement, b: Placement, names: tuple,
             waits: list[int], op: str) -> Binding:  # fmt: skip
    """One ELTWISE of `kind`: y = a (kind) b over the output's shape, broadcasting."""
    y, node = ctx.y, ctx.node
    dims, sa, sb, sy = view4(y.shape, broadcast_strides(a.shape, y.shape),
                             broadcast_strides(b.shape, y.shape), row_major(y.shape),
                             what=f"{node.op_type} {node.name!r}")  # fmt: skip
    slot = ctx.vec.b.fslots(2)
    desc = ctx.vec.b.descriptor("eltwise", kind=int(kind), a_base=a.addr, b_base=b.addr,
                            y_base=y.addr, **{f"d{i}": dims[i] for i in range(4)},
                            **{f"a_s{i}": sa[i] for i in range(4)},
                            **{f"b_s{i}": sb[i] for i in range(4)},
                            **{f"y_s{i}": sy[i] for i in range(4)},
                            ra=slot, rb=slot + 1)  # fmt: skip
    done = ctx.vec.b.token()
    in_bytes = a.nbytes + (b.nbytes if b is not a else 0)
    _chunks(ctx.vec, Opcode.ELTWISE, desc, y.size, 1, in_bytes, y.nbytes, waits, done)
    y.token = done
    return EltwiseBinding(desc, node.name, names, node.outputs[0], {"ra": slot, "rb": slot + 1},
                          op=op)  # fmt: skip


def emit_logic(ctx: NodeContext) -> list[Binding]:
    """A comparison, And, Or (two operands) or Not (one: read as both)."""
    op = ctx.node.op_type
    a, names = ctx.ins[0], tuple(ctx.in_names)
    b = ctx.ins[1] if len(ctx.ins) > 1 else a
    names = names if len(names) > 1 else (names[0], names[0])
    waits = list(dict.fromkeys([a.token, b.token]))
    return [_eltwise(ctx, KINDS[op], a, b, names, waits,
                     "compare" if op in COMPARISONS else "logic")]  # fmt: skip


def emit_where(ctx: NodeContext) -> list[Binding]:
    """Where(cond, x, y): the else operand copied into the output, then SELECT of x."""
    cond, then, other = ctx.ins
    names = ctx.in_names
    y = ctx.y
    copied = ctx.vec.b.token()
    fill = emit_copy(ctx.vec, ctx.node, other, y, y.shape, broadcast_strides(other.shape, y.shape),
                     row_major(y.shape), 0, names[2], None, [other.token], copied)  # fmt: skip
    waits = list(dict.fromkeys([cond.token, then.token, copied]))
    sel = _eltwise(ctx, EltwiseKind.SELECT, cond, then, (names[0], names[1]), waits, "select")
    return [fill, sel]
