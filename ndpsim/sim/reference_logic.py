"""The reference semantics of the ELTWISE comparison, logic and select kinds (isa/isa.toml):
part of the specification in ndpsim/sim/reference.py, which calls it for those kinds.

Comparisons compare the operands' real values, f32(q - zero point) * scale, so two operands
at different scales (an int8 score against its threshold) compare as the float model does,
up to each operand's quantization. Bools are stored as 0 and 1 on both datapaths.
"""

from __future__ import annotations

import operator

import numpy as np

from ndpsim.isa import DESC_FIELDS, EltwiseKind

_F32 = np.float32
EW = DESC_FIELDS["eltwise"]
_COMPARE = {
    EltwiseKind.GREATER: operator.gt,
    EltwiseKind.LESS: operator.lt,
    EltwiseKind.EQUAL: operator.eq,
    EltwiseKind.GREATER_EQUAL: operator.ge,
    EltwiseKind.LESS_EQUAL: operator.le,
}
LOGIC_KINDS = frozenset(
    [*_COMPARE, EltwiseKind.AND, EltwiseKind.OR, EltwiseKind.NOT, EltwiseKind.SELECT]
)


def _addr(d, base: str, prefix: str, idx) -> int:
    return int(d[EW[base]]) + sum(i * int(d[EW[f"{prefix}{k}"]]) for k, i in enumerate(idx))


def eltwise_logic(d, e0: int, n: int, mem, fparams, float_mode: bool) -> None:
    """Elements e0..e0+n of a comparison, logic or select ELTWISE (module docstring)."""
    kind = EltwiseKind(int(d[EW["kind"]]))
    dims = [int(d[EW[f"d{k}"]]) for k in range(4)]
    za, zb = int(d[EW["za"]]), int(d[EW["zb"]])
    ra, rb = fparams[d[EW["ra"]]], fparams[d[EW["rb"]]]
    for e in range(e0, e0 + n):
        i3, t = e % dims[3], e // dims[3]
        i2, t = t % dims[2], t // dims[2]
        idx = (t // dims[1], t % dims[1], i2, i3)
        a = mem[_addr(d, "a_base", "a_s", idx)] - za
        b = mem[_addr(d, "b_base", "b_s", idx)] - zb
        y = _addr(d, "y_base", "y_s", idx)
        if kind == EltwiseKind.SELECT:
            if a != 0:
                f = _F32(b) * rb
                if float_mode:
                    mem[y] = f
                else:  # saturate, round half to even, add the zero point
                    zy, lo, hi = int(d[EW["zy"]]), int(d[EW["qmin"]]), int(d[EW["qmax"]])
                    mem[y] = lo if f < lo - zy else hi if f > hi - zy else int(np.rint(f)) + zy
            continue
        if kind in _COMPARE:
            v = _COMPARE[kind](_F32(a) * ra, _F32(b) * rb)
        elif kind == EltwiseKind.AND:
            v = a != 0 and b != 0
        elif kind == EltwiseKind.OR:
            v = a != 0 or b != 0
        else:  # NOT
            v = a == 0
        mem[y] = 1 if v else 0
