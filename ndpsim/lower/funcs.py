"""Emit the function unit (FUNC): y = F(x) element by element, dequantized, evaluated in
float32 and requantized.

What F is comes from the op's registry entry as a `Func`: an ISA function kind (isa/isa.toml,
`func_kind`), its work per element and its constants p0, p1, p2. One kind, TABLE, is generic:
its `Table` (the float64 function it samples, the range, the number of entries, the slopes
it continues with beyond the range and the work per element) is data, so a new smooth unary
function is one registry entry (docs/architecture.md, "How to add an ONNX op")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ndpsim.errors import UnsupportedOpError
from ndpsim.ir import Graph, Node
from ndpsim.isa import FuncKind, Opcode
from ndpsim.lower.bindings import Binding, FuncBinding, TableBinding
from ndpsim.lower.context import NodeContext
from ndpsim.lower.program import Placement
from ndpsim.lower.vector import VecContext, _chunks

Params = Callable[[Graph, Node], tuple[float, float, float]]


@dataclass(frozen=True)
class Table:
    """A function-unit look-up table: `entries` float32 samples of `f` (float64 in, float64
    out) evenly spaced over [lo, hi], linearly interpolated. Beyond the range the function
    continues from the end sample with slope `slopes[0]` below lo and `slopes[1]` above hi
    (0: held constant, as a saturating function is; 1: y = x, as GELU's upper tail is).
    Interpolation error: at most h^2/8 * max|f''| with h = (hi - lo) / (entries - 1), plus
    float32 rounding of the samples."""

    f: Callable[[np.ndarray], np.ndarray]
    lo: float
    hi: float
    entries: int
    slopes: tuple[float, float] = (0.0, 0.0)
    work: int = 2  # vector element operations per element: scale, interpolate

    def values(self) -> np.ndarray:
        """The float32 samples."""
        x = np.linspace(self.lo, self.hi, self.entries, dtype=np.float64)
        return np.asarray(self.f(x), np.float64).astype(np.float32)


@dataclass(frozen=True)
class Func:
    """The function unit's job for one op: an ISA kind, the vector element operations per
    element (docs/machine_model.md, "Function unit"), the constants p0, p1, p2 of the node
    (`params`), and for the TABLE kind its table, chosen by the value of attribute `attr`
    (`tables[value]`; `tables[""]` when the op has one)."""

    kind: FuncKind
    work: int = 2
    params: Params | None = None
    tables: tuple[tuple[str, Table], ...] = ()
    attr: str = ""

    def table(self, node: Node) -> Table:
        """The table a node of this op samples."""
        value = str(node.attrs.get(self.attr) or "") if self.attr else ""
        tables = dict(self.tables)
        if value not in tables:
            choices = ", ".join(repr(k) for k in tables)
            raise UnsupportedOpError(f"{node.op_type} {node.name!r}: {self.attr}={value!r} "
                                     f"(supported: {choices})")  # fmt: skip
        return tables[value]


def table_func(table: Table | None = None, attr: str = "", **by_value: Table) -> Func:
    """A TABLE function: one `table`, or one table per value of attribute `attr`."""
    tables = tuple(by_value.items()) if attr else (("", table),)
    work = max(t.work for _, t in tables)
    return Func(FuncKind.TABLE, work, tables=tables, attr=attr)


def _table_slots(ctx: VecContext, node: Node, table: Table, out: list[Binding]) -> dict:
    """The descriptor's table fields; one copy of a table per program, shared by nodes."""
    cache = ctx.b.luts
    if table not in cache:
        base = ctx.b.fslots(table.entries + 2)  # samples, first sample, 1/step
        cache[table] = base
        out.append(TableBinding(-1, node.op_type, (), "", {"base": base}, values=table.values(),
                                lo=table.lo, hi=table.hi))  # fmt: skip
    base = cache[table]
    return {
        "lut_base": base,
        "lut_size": table.entries,
        "lut_lo": base + table.entries,
        "lut_inv_step": base + table.entries + 1,
    }


def emit_func(ctx: NodeContext, func: Func) -> list[Binding]:
    """The node's FUNC instructions and bindings (its input x, its output y)."""
    g, node, x, y = ctx.g, ctx.node, ctx.x, ctx.y
    out: list[Binding] = []
    fields = {"lut_base": 0, "lut_size": 0, "lut_lo": 0, "lut_inv_step": 0}
    params = func.params(g, node) if func.params else (0.0, 0.0, 0.0)
    work = func.work
    if func.kind == FuncKind.TABLE:
        table = func.table(node)
        fields = _table_slots(ctx.vec, node, table, out)
        params = (table.slopes[0], table.slopes[1], table.hi)
        work = table.work
    return [*out, _emit(ctx.vec, node, func.kind, work, params, fields, x, y)]


def _emit(ctx: VecContext, node: Node, kind: FuncKind, work: int, params: tuple, fields: dict,
          x: Placement, y: Placement) -> FuncBinding:  # fmt: skip
    slot = ctx.b.fslots(5)
    desc = ctx.b.descriptor("func", kind=int(kind), x_base=x.addr, y_base=y.addr, sx=slot,
                            ry=slot + 1, p0=slot + 2, p1=slot + 3, p2=slot + 4,
                            **fields)  # fmt: skip
    done = ctx.b.token()
    _chunks(ctx, Opcode.FUNC, desc, y.size, work, x.nbytes, y.nbytes, [x.token], done)
    y.token = done
    slots = {"sx": slot, "ry": slot + 1, "p0": slot + 2, "p1": slot + 3, "p2": slot + 4}
    return FuncBinding(desc, node.name, (node.inputs[0],), node.outputs[0], slots,
                       params=tuple(float(p) for p in params))  # fmt: skip


def hard_sigmoid_params(g: Graph, node: Node) -> tuple[float, float, float]:
    """HardSigmoid's alpha, beta (p0, p1)."""
    return float(node.attrs.get("alpha", 0.2)), float(node.attrs.get("beta", 0.5)), 0.0


def hard_swish_params(g: Graph, node: Node) -> tuple[float, float, float]:
    """HardSwish is x * HardSigmoid(x) with alpha = 1/6, beta = 0.5 (ONNX definition)."""
    return 1.0 / 6.0, 0.5, 0.0


def pow_params(g: Graph, node: Node) -> tuple[float, float, float]:
    """Pow is (p1 + p0 x)^exponent: the LRN rewrite sets p0, p1 (attributes pow_scale,
    pow_offset), plain Pow has 1, 0; the exponent must be a scalar constant."""
    name = node.inputs[1]
    if name not in g.constants or np.asarray(g.constants[name]).size != 1:
        raise UnsupportedOpError(f"Pow {node.name!r}: the exponent must be a scalar constant")
    e = float(np.asarray(g.constants[name]).reshape(-1)[0])
    return float(node.attrs.get("pow_scale", 1.0)), float(node.attrs.get("pow_offset", 0.0)), e
