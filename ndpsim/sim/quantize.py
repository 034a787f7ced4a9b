"""Post-training quantization of float models: run the program on the float datapath over
calibration inputs, record each stored value's range (min-max, or percentiles), then choose
each value's scale and zero point at the bits the lowering gave it (docs/quantization.md,
"Post-training quantization"). Weight scales are chosen in `bind`, per channel or per tensor.

Ranges do not depend on bits, so one `collect_ranges` serves every precision assignment of a
model (`ndpsim precision` reuses it across all its rows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ndpsim.config import HardwareConfig
from ndpsim.lower.program import Program
from ndpsim.sim.bind import QParams, QuantPlan, bind
from ndpsim.sim.run import run

_SAMPLE_CAP = 1 << 16  # values kept per tensor and calibration input for percentiles


class PTQOptions(BaseModel):
    """How a float model is quantized (the bits themselves come from the precision spec)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["minmax", "percentile"] = "minmax"
    percentile: float = Field(99.99, gt=50, le=100, description="with method=percentile")
    weights: Literal["per-channel", "per-tensor"] = "per-channel"
    activations: Literal["symmetric", "asymmetric"] = "symmetric"


def symmetric(amax: float, bits: int) -> QParams:
    """Symmetric signed quantization (zero point 0), as NDP120 runs activations."""
    qmax = (1 << (bits - 1)) - 1
    scale = amax / qmax if amax > 0 else 1.0 / qmax
    return QParams(float(scale), 0, -qmax - 1, qmax)


def asymmetric(lo: float, hi: float, bits: int) -> QParams:
    """Affine signed quantization of [lo, hi] (widened to hold 0 exactly): all 2^bits levels
    cover the range, the zero point shifts it."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    scale = (hi - lo) / (qmax - qmin) if hi > lo else 1.0 / qmax
    zp = int(np.clip(np.rint(qmin - lo / scale), qmin, qmax))
    return QParams(float(scale), zp, qmin, qmax)


@dataclass
class Ranges:
    """Per stored value: (lo, hi) of its calibrated range (percentile-clipped when asked)."""

    values: dict[str, tuple[float, float]]
    opts: PTQOptions


def collect_ranges(
    program: Program,
    hw: HardwareConfig,
    samples: list[dict[str, np.ndarray]],
    opts: PTQOptions | None = None,
) -> Ranges:
    """Run the float datapath on every calibration sample and record each stored value's
    range: min and max, or the `percentile` of |x| (symmetric) / of each tail (asymmetric)."""
    opts = opts or PTQOptions()
    fparams = bind(program, None)
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    kept: dict[str, list[np.ndarray]] = {}
    rng = np.random.default_rng(0)
    for inputs in samples:
        res = run(program, hw, fparams, inputs)
        for name, p in program.placements.items():
            vals = res.mem[p.addr : p.addr + p.size]  # float32: min and max are exact in it
            if not vals.size:
                continue
            lo[name] = min(lo.get(name, 0.0), float(vals.min()))
            hi[name] = max(hi.get(name, 0.0), float(vals.max()))
            if opts.method == "percentile":
                vals = vals.astype(np.float64)
                if vals.size > _SAMPLE_CAP:
                    vals = rng.choice(vals, _SAMPLE_CAP, replace=False)
                kept.setdefault(name, []).append(vals)
    out = {name: (lo[name], hi[name]) for name in lo}
    if opts.method == "percentile":
        q = opts.percentile
        for name, parts in kept.items():
            v = np.concatenate(parts)
            if opts.activations == "symmetric":
                a = float(np.percentile(np.abs(v), q))
                out[name] = (-a, a)
            else:
                out[name] = (float(np.percentile(v, 100 - q)), float(np.percentile(v, q)))
    return Ranges(out, opts)


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
        if bd.kind == "pad_value":
            tensors[bd.inputs[0]] = tensors[bd.output]
    for node in g.nodes:
        if node.op_type == "Softmax":  # probabilities: the full range is [0, 1]
            out = node.outputs[0]
            tensors[out] = qparams(0.0, 1.0, program.placements[out].bits)
    return QuantPlan(
        tensors,
        per_channel_weights=opts.weights == "per-channel",
        preactivation_bits=preactivation_bits,
    )


def calibrate(
    program: Program,
    hw: HardwareConfig,
    samples: list[dict[str, np.ndarray]],
    opts: PTQOptions | None = None,
) -> QuantPlan:
    """The QuantPlan of a float model calibrated on `samples`."""
    ranges = collect_ranges(program, hw, samples, opts)
    return plan_from_ranges(program, ranges, hw.preactivation_bits)
