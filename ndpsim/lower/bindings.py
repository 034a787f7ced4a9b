"""Binding specs: what `bind` (quant/bind.py) must fill for a descriptor, one type per kind of
parameters, carrying what the lowering already worked out (a MAC layer's geometry, a
function's constants, a fused activation), so binding never re-derives it from the graph.

Every spec names its descriptor row (`desc`, -1 for none), the graph node it serves, the
values it reads (`inputs`) and writes (`output`), and the float / weight slots the lowering
reserved for it (`slots`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ndpsim.lower.tiling import ConvGeom


@dataclass
class Binding:
    desc: int
    node: str
    inputs: tuple[str, ...]
    output: str
    slots: dict[str, int] = field(default_factory=dict)


@dataclass
class ConvBinding(Binding):
    """A MAC layer: weights and bias into the weight arena (slots w_base, bias_base), a
    requantization scale per output channel (scale_base), the fused activation."""

    geom: ConvGeom | None = None
    act: tuple | None = None


@dataclass
class EltwiseBinding(Binding):
    """A two-operand element-wise op (slots ra, rb): `op` is "add", "sub", "mul", "max",
    "min", "div", or (vector_logic.py) "compare", "logic", "select"."""

    op: str = "add"
    act: tuple | None = None


@dataclass
class MatmulBinding(Binding):
    """The product of two activations: one rescale (slot r), the fused activation."""

    act: tuple | None = None


@dataclass
class PoolBinding(Binding):
    """A max, average or sum window (pooling, ReduceMean / ReduceSum / ReduceMax): one rescale
    (slot r)."""

    act: tuple | None = None


@dataclass
class CopyBinding(Binding):
    """A strided copy with requantization (slot r) and an optional activation."""

    act: tuple | None = None


@dataclass
class FuncBinding(Binding):
    """The function unit: input scale (sx), output reciprocal scale (ry), the function's
    constants p0, p1, p2 (HardSigmoid's alpha, beta; a power's scale, offset, exponent)."""

    params: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass
class SoftmaxBinding(Binding):
    """Input and output scales (slots sx, sy)."""


@dataclass
class TableBinding(Binding):
    """A function-unit look-up table (lower/funcs.py `Table`) from slot `base`: its float32
    samples (`values`, evenly spaced over [lo, hi]), then lo and 1/step."""

    values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    lo: float = 0.0
    hi: float = 0.0


@dataclass
class ConstBinding(Binding):
    """A constant read as an activation, stored in the arena at its own scale."""


@dataclass
class FillBinding(Binding):
    """Pad's fill value (`value`), stored at the scale of the padded output."""

    value: float = 0.0
