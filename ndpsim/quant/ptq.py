"""Post-training quantization of float models: from each stored value's calibrated range
(sim/calibrate.py runs the float datapath to measure them) choose its scale and zero point
at the bits the lowering gave it (docs/quantization.md, "Post-training quantization"), and
the output rules of the op registry (a softmax's [0, 1]). Weight scales are chosen in
`bind`, per channel or per tensor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ndpsim.lower.bindings import FillBinding
from ndpsim.lower.program import Program
from ndpsim.lower.registry import entry
from ndpsim.quant.params import QParams, QuantPlan, asymmetric, symmetric


class PTQOptions(BaseModel):
    """How a float model is quantized (the bits themselves come from the precision spec)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["minmax", "percentile"] = "minmax"
    percentile: float = Field(99.99, gt=50, le=100, description="with method=percentile")
    weights: Literal["per-channel", "per-tensor"] = "per-channel"
    activations: Literal["symmetric", "asymmetric"] = "symmetric"


@dataclass
class Ranges:
    """Per stored value: (lo, hi) of its calibrated range (percentile-clipped when asked)."""

    values: dict[str, tuple[float, float]]
    opts: PTQOptions


def plan_from_ranges(program: Program, ranges: Ranges, preactivation_bits: int = 0) -> QuantPlan:
    """Scales and zero points of every stored value at its own bits (program.placements);
    `preactivation_bits` as the machine's (HardwareConfig.preactivation_bits)."""
    opts = ranges.opts

    def qparams(lo: float, hi: float, bits: int) -> QParams:
        if opts.activations == "asymmetric":
            return asymmetric(lo, hi, bits)
        return symmetric(max(abs(lo), abs(hi)), bits)

    tensors = {}
    for name, p in program.placements.items():
        lo, hi = ranges.values.get(name, (0.0, 0.0))
        tensors[name] = qparams(lo, hi, p.bits)
    g = program.graph
    for name in g.constants:
        if name in program.placements:
            c = np.asarray(g.constants[name], np.float64)
            tensors[name] = qparams(float(c.min()), float(c.max()), program.placements[name].bits)
    for bd in program.bindings:  # a pad's fill value is stored at its output's scale
        if isinstance(bd, FillBinding):
            tensors[bd.inputs[0]] = tensors[bd.output]
    for node in g.nodes:
        rule = entry(node, g).output_range
        if rule == "unit":  # probabilities: the range is [0, 1]
            out = node.outputs[0]
            tensors[out] = qparams(0.0, 1.0, program.placements[out].bits)
        elif rule == "bool":  # 0 / 1 stored as they are
            bits = program.placements[node.outputs[0]].bits
            tensors[node.outputs[0]] = QParams(1.0, 0, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return QuantPlan(
        tensors,
        per_channel_weights=opts.weights == "per-channel",
        preactivation_bits=preactivation_bits,
    )
